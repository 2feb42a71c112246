package proxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// multiRoutes serves OpenAI models from the fake as an OpenAI provider and
// claude-sonnet-4-5 from the same fake as an Anthropic provider.
func multiRoutes(base *url.URL) []proxy.Route {
	oai := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: base}
	oai.SetKey(providerKey)
	ant := &proxy.Provider{Name: "fake-anthropic", Format: proxy.FormatAnthropic, BaseURL: base}
	ant.SetKey(providerKey)
	return []proxy.Route{
		{Model: "gpt-4o-mini", Provider: oai},
		{Model: "text-embedding-3-small", Provider: oai},
		{Model: "claude-sonnet-4-5", Provider: ant},
	}
}

// anthropic returns the official Anthropic SDK client as a workload: mTLS,
// and a key of its own that the gateway must never forward.
func (e *gatewayEnv) anthropic(id string) anthropic.Client {
	return anthropic.NewClient(
		aoption.WithBaseURL("https://"+e.addr),
		aoption.WithHTTPClient(e.httpClient(e.svid(id))),
		aoption.WithAPIKey("client-anthropic-key"),
		aoption.WithMaxRetries(0),
	)
}

func TestEmbeddings(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	var resp *http.Response
	got, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"alpha", "beta"}},
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 2 || len(got.Data[0].Embedding) == 0 {
		t.Fatalf("got %d embeddings", len(got.Data))
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	if get(recs[0], "request", "api") != "embeddings" || get(recs[0], "request", "prompt", "messages") != float64(2) {
		t.Errorf("decision request = %v", recs[0]["request"])
	}
	if get(recs[1], "usage", "prompt_tokens") != float64(got.Usage.PromptTokens) || got.Usage.PromptTokens == 0 {
		t.Errorf("completion usage = %v, response %+v", recs[1]["usage"], got.Usage)
	}
}

func responsesParams(model, text string) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}}
}

func TestResponsesAPI(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	var resp *http.Response
	got, err := c.Responses.New(context.Background(), responsesParams("gpt-4o-mini", "good morning"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello from fake gpt-4o-mini: you said good morning"; got.OutputText() != want {
		t.Errorf("output %q, want %q", got.OutputText(), want)
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 || get(recs[0], "request", "api") != "responses" {
		t.Fatalf("records = %v", recs)
	}
	if get(recs[1], "usage", "total_tokens") != float64(got.Usage.TotalTokens) {
		t.Errorf("completion usage = %v, want total %d", recs[1]["usage"], got.Usage.TotalTokens)
	}

	stream := c.Responses.NewStreaming(context.Background(), responsesParams("gpt-4o-mini", "[fake:chunks=12]"), option.WithResponseInto(&resp))
	var text strings.Builder
	var final responses.Response
	for stream.Next() {
		switch ev := stream.Current(); ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			final = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(strings.Fields(text.String())) != 12 || final.Usage.TotalTokens == 0 {
		t.Fatalf("streamed %q, usage %+v", text.String(), final.Usage)
	}
	recs = env.settled(requestID(t, resp))
	if get(recs[1], "usage", "total_tokens") != float64(final.Usage.TotalTokens) || recs[1]["error"] != nil {
		t.Errorf("stream completion record = %v", recs[1])
	}
}

func TestResponsesToolCallRecorded(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.openai(identity.DevAppID)
	p := responsesParams("gpt-4o-mini", "[fake:tool]")
	p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("lookup", map[string]any{
		"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}},
	}, false)}
	for _, stream := range []bool{false, true} {
		var resp *http.Response
		if stream {
			s := c.Responses.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Responses.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		recs := env.settled(requestID(t, resp))
		calls, _ := recs[len(recs)-1]["tool_calls"].([]any)
		if len(calls) != 1 || get(calls[0].(map[string]any), "name") != "lookup" {
			t.Errorf("stream=%v: completion tool_calls = %v", stream, recs[len(recs)-1]["tool_calls"])
		}
		if d, _ := get(calls[0].(map[string]any), "arguments_digest").(string); d != argsDigestFor("acme", `{"q":"fake"}`) {
			t.Errorf("stream=%v: arguments digest = %s", stream, d)
		}
	}
}

var antWeather = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
}}

func TestAnthropicMessages(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAppID)
	var resp *http.Response
	msg, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there"))},
	}, aoption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "Hello from fake claude-sonnet-4-5: you said hello there" {
		t.Errorf("content = %+v", msg.Content)
	}
	r := env.fake.Requests()[0]
	if r.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != providerKey || r.Header.Get("Authorization") != "" || r.Header.Get("Anthropic-Version") == "" {
		t.Errorf("provider got %s x-api-key=%q authorization=%q version=%q", r.Path, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"), r.Header.Get("Anthropic-Version"))
	}
	recs := env.recordsFor(resp.Header.Get("X-Request-Id"))
	if len(recs) != 2 || get(recs[0], "request", "api") != "anthropic.messages" {
		t.Fatalf("records = %v", recs)
	}
	if want := float64(msg.Usage.InputTokens + msg.Usage.OutputTokens); get(recs[1], "usage", "total_tokens") != want {
		t.Errorf("completion usage = %v, want total %v", recs[1]["usage"], want)
	}
}

func TestAnthropicMessagesStreamWithTool(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAppID)
	var resp *http.Response
	stream := c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100, Tools: []anthropic.ToolUnionParam{antWeather},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather? [fake:tool]"))},
	}, aoption.WithResponseInto(&resp))
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" {
		t.Fatalf("content = %+v", msg.Content)
	}
	recs := env.settled(resp.Header.Get("X-Request-Id"))
	if len(recs) != 3 || recs[1]["action"] != "tool.call" || get(recs[1], "detail", "tool", "name") != "get_weather" {
		t.Fatalf("want decision, tool.call decision, completion: %v", recs)
	}
	recs = append(recs[:1], recs[2])
	calls, _ := recs[1]["tool_calls"].([]any)
	if len(calls) != 1 || get(calls[0].(map[string]any), "name") != "get_weather" {
		t.Fatalf("completion tool_calls = %v", recs[1]["tool_calls"])
	}
	if d := get(calls[0].(map[string]any), "arguments_digest"); d != argsDigestFor("acme", string(msg.Content[0].Input)) {
		t.Errorf("arguments digest %v, want digest of %s", d, msg.Content[0].Input)
	}
	if get(recs[1], "usage", "completion_tokens") != float64(msg.Usage.OutputTokens) || msg.Usage.InputTokens == 0 {
		t.Errorf("completion usage = %v, stream said %+v", recs[1]["usage"], msg.Usage)
	}
}

func TestAnthropicErrorShape(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	hc := env.httpClient(env.svid(identity.DevAppID))
	for _, tc := range []struct {
		name, body, errType string
		status              int
	}{
		{"no max_tokens", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`, "invalid_request_error", 400},
		{"unknown model", `{"model":"claude-9","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "not_found_error", 404},
		{"served by an OpenAI provider", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "invalid_request_error", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Post("https://"+env.addr+"/v1/messages", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.HasPrefix(string(b), `{"type":"error","error":{"type":"`+tc.errType+`"`) {
				t.Errorf("got %d %s, want %d %s in Anthropic's shape", resp.StatusCode, b, tc.status, tc.errType)
			}
		})
	}
	// The SDK recognises it.
	ac := env.anthropic(identity.DevAgentID) // agents may not use claude-sonnet-4-5
	_, err := ac.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 5, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(apiErr.RawJSON(), "permission_error") {
		t.Fatalf("err = %v, want a 403 permission_error", err)
	}
}
