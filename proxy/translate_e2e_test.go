package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/portcullis-dev/portcullis/identity"
)

func weatherTool() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})}
}

// An OpenAI SDK client calls a model that an Anthropic provider serves.
func TestChatServedByAnthropic(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	p := chatParams("claude-sonnet-4-5", "hello there")
	p.Messages = append([]openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief")}, p.Messages...)
	p.Stop = openai.ChatCompletionNewParamsStopUnion{OfString: openai.String("END")}
	var resp *http.Response
	got, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello from fake claude-sonnet-4-5: you said hello there"; got.Choices[0].Message.Content != want {
		t.Errorf("content = %q, want %q", got.Choices[0].Message.Content, want)
	}
	if got.Choices[0].FinishReason != "stop" || got.Object != "chat.completion" || got.Usage.TotalTokens != got.Usage.PromptTokens+got.Usage.CompletionTokens || got.Usage.CompletionTokens != 8 {
		t.Errorf("finish %q object %q usage %+v", got.Choices[0].FinishReason, got.Object, got.Usage)
	}
	r := env.fake.Requests()[0]
	if r.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != providerKey || r.Header.Get("Authorization") != "" || r.Header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("provider got %s with x-api-key=%q authorization=%q version=%q", r.Path, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"), r.Header.Get("Anthropic-Version"))
	}
	var sent map[string]any
	if err := json.Unmarshal(r.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent["max_tokens"] != float64(4096) || get(sent, "system") == nil || sent["stop_sequences"].([]any)[0] != "END" {
		t.Errorf("translated request = %s", r.Body)
	}
	recs := env.recordsFor(requestID(t, resp))
	if get(recs[0], "request", "api") != "chat.completions" || get(recs[1], "request", "provider") != "fake-anthropic" {
		t.Errorf("records = %v", recs)
	}
	if get(recs[1], "usage", "total_tokens") != float64(got.Usage.TotalTokens) {
		t.Errorf("completion usage = %v", recs[1]["usage"])
	}
}

func TestChatStreamServedByAnthropic(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	p := chatParams("claude-sonnet-4-5", "[fake:chunks=25]")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var resp *http.Response
	stream := c.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	n := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if words := len(strings.Fields(acc.Choices[0].Message.Content)); words != 25 || n < 25 {
		t.Errorf("%d chunks, %d words; want 25 words relayed one by one", n, words)
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.CompletionTokens != 25 || acc.Usage.PromptTokens == 0 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	recs := env.settled(requestID(t, resp))
	if get(recs[1], "usage", "total_tokens") != float64(acc.Usage.TotalTokens) || recs[1]["error"] != nil {
		t.Errorf("completion record = %v", recs[1])
	}
}

// A two-step tool chain in chat format against an Anthropic model, streamed
// and not: the tool call comes back as tool_calls, the result goes up as a
// tool_result.
func TestChatToolsServedByAnthropic(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	p := chatParams("claude-sonnet-4-5", "weather in Paris? [fake:tool]")
	p.Tools = weatherTool()
	got, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	msg := got.Choices[0].Message
	if got.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" || msg.ToolCalls[0].Function.Arguments != `{"city":"fake"}` {
		t.Fatalf("finish %q message %+v", got.Choices[0].FinishReason, msg)
	}

	stream := c.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	sc := acc.Choices[0].Message.ToolCalls
	if len(sc) != 1 || sc[0].Function.Name != "get_weather" || sc[0].Function.Arguments != `{"city":"fake"}` || !strings.HasPrefix(sc[0].ID, "toolu_") {
		t.Fatalf("streamed tool calls = %+v", sc)
	}

	p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("sunny, 21C", msg.ToolCalls[0].ID))
	final, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(final.Choices[0].Message.Content, "Tool result received: sunny") {
		t.Errorf("final answer %q", final.Choices[0].Message.Content)
	}
	last := env.fake.Requests()[len(env.fake.Requests())-1]
	if !strings.Contains(string(last.Body), `"type":"tool_result","tool_use_id":"`+msg.ToolCalls[0].ID) || !strings.Contains(string(last.Body), `"type":"tool_use"`) {
		t.Errorf("tool result not translated: %s", last.Body)
	}
}

func TestChatErrorsServedByAnthropic(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	for _, tc := range []struct{ directive, status int }{{429, 429}, {529, 503}, {500, 500}} {
		_, err := c.Chat.Completions.New(context.Background(), chatParams("claude-sonnet-4-5", "[fake:error="+strconv.Itoa(tc.directive)+"]"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Message == "" || apiErr.Type == "" {
			t.Errorf("provider %d: err = %v, want %d in OpenAI's shape", tc.directive, err, tc.status)
		}
	}
	// A cut stream is a failure in the client's format.
	stream := c.Chat.Completions.NewStreaming(context.Background(), chatParams("claude-sonnet-4-5", "[fake:chunks=10] [fake:cut]"))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Error("a cut Anthropic stream ended cleanly for the chat client")
	}
}

func TestUntranslatableRefused(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	hc := env.httpClient(env.svid(identity.DevAppID))
	for _, tc := range []struct{ name, path, body, want string }{
		{"n", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","n":2,"messages":[{"role":"user","content":"x"}]}`, "n=2"},
		{"logprobs", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","logprobs":true,"messages":[{"role":"user","content":"x"}]}`, "logprobs"},
		{"audio", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","audio":{"voice":"x"},"messages":[{"role":"user","content":"x"}]}`, `field \"audio\" is not supported`},
		{"responses api", "/v1/responses", `{"model":"claude-sonnet-4-5","input":"x"}`, "cannot serve the responses API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Post("https://"+env.addr+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"code":"invalid_request"`) {
				t.Errorf("got %d %s; want 400 naming %s", resp.StatusCode, b, tc.want)
			}
		})
	}
	if n := env.fake.RequestCount(); n != 0 {
		t.Errorf("%d untranslatable requests reached the provider", n)
	}
}
