package fakeprovider_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

const testKey = "sk-test-0123456789"

// fixedClock is the Options.Clock of every test server.
func fixedClock() time.Time { return time.Unix(1_700_000_000, 0) }

// start runs a fake provider on loopback for the test's duration.
func start(t testing.TB, opts fakeprovider.Options) *fakeprovider.Server {
	t.Helper()
	if opts.Logger == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		opts.Logger = l
	}
	if opts.Clock == nil {
		opts.Clock = fixedClock
	}
	s, err := fakeprovider.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openAIClient(s *fakeprovider.Server, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL()), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name: "get_weather",
	Parameters: openai.FunctionParameters{
		"type": "object",
		"properties": map[string]any{
			"city":  map[string]any{"type": "string"},
			"unit":  map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
			"days":  map[string]any{"type": "integer"},
			"alert": map[string]any{"type": "boolean"},
		},
		"required": []string{"city"},
	},
})

func TestChatNonStreaming(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	c := openAIClient(s, testKey)
	got, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("What is the capital of France, please tell me now?")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantText := "Hello from fake gpt-4o-mini: you said What is the capital of France, please te"
	if len(got.Choices) != 1 || got.Choices[0].Message.Content != wantText {
		t.Fatalf("content = %q, want %q", got.Choices[0].Message.Content, wantText)
	}
	if got.Choices[0].FinishReason != "stop" {
		t.Errorf("finish_reason = %q, want stop", got.Choices[0].FinishReason)
	}
	// prompt: len("be brief")+len(user text) = 8+50 = 58 bytes -> 15 tokens; completion: 14 words.
	if got.Usage.PromptTokens != 15 || got.Usage.CompletionTokens != 14 || got.Usage.TotalTokens != 29 {
		t.Errorf("usage = %+v, want 15/14/29", got.Usage)
	}
	if got.Object != "chat.completion" || got.Created != fixedClock().Unix() || !strings.HasPrefix(got.ID, "chatcmpl-fake") {
		t.Errorf("envelope = %q %d %q", got.Object, got.Created, got.ID)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests, want 1", len(reqs))
	}
	if r := reqs[0]; r.Method != http.MethodPost || r.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+testKey || !strings.Contains(string(r.Body), `"gpt-4o-mini"`) {
		t.Errorf("recorded = %s %s auth=%q body=%s", r.Method, r.Path, r.Header.Get("Authorization"), r.Body)
	}
}

func TestChatStreamingUsage(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "anything")
	stream := c.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:         "gpt-4o",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("count [fake:chunks=50]")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	chunks, usageChunks := 0, 0
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Fatalf("accumulator refused chunk %d", chunks)
		}
		if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
			usageChunks++
			if len(ch.Choices) != 0 {
				t.Errorf("usage chunk has %d choices, want 0", len(ch.Choices))
			}
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// role + 50 content + finish + usage
	if chunks != 53 || usageChunks != 1 {
		t.Errorf("chunks = %d (usage %d), want 53 (1)", chunks, usageChunks)
	}
	words := strings.Fields(acc.Choices[0].Message.Content)
	if len(words) != 50 || words[0] != "lorem" {
		t.Errorf("content has %d words starting %q, want 50 starting lorem", len(words), words[0])
	}
	if acc.Usage.CompletionTokens != 50 || acc.Usage.PromptTokens != 6 {
		t.Errorf("usage = %d/%d, want 6/50", acc.Usage.PromptTokens, acc.Usage.CompletionTokens)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish = %q", acc.Choices[0].FinishReason)
	}
}

func TestChatStreamingWithoutUsage(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	stream := c.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if ch.JSON.Usage.Valid() {
			t.Errorf("chunk carries usage without include_usage: %s", ch.RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := acc.Choices[0].Message.Content, "Hello from fake gpt-4o-mini: you said hi"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
}

func TestChatToolCall(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather in Paris? [fake:tool]")},
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
	}
	const wantArgs = `{"alert":true,"city":"fake","days":1,"unit":"celsius"}`

	got, err := c.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := got.Choices[0].Message
	if got.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 {
		t.Fatalf("finish = %q, %d tool calls", got.Choices[0].FinishReason, len(msg.ToolCalls))
	}
	if tc := msg.ToolCalls[0]; tc.Function.Name != "get_weather" || tc.Function.Arguments != wantArgs || !strings.HasPrefix(tc.ID, "call_") {
		t.Errorf("tool call = %s %s %s, want get_weather %s", tc.ID, tc.Function.Name, tc.Function.Arguments, wantArgs)
	}

	params.StreamOptions.IncludeUsage = openai.Bool(true)
	stream := c.Chat.Completions.NewStreaming(ctx(t), params)
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		acc.AddChunk(stream.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != wantArgs {
		t.Fatalf("streamed tool calls = %+v", finished)
	}
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.CompletionTokens == 0 {
		t.Errorf("finish = %q usage = %+v", acc.Choices[0].FinishReason, acc.Usage)
	}

	// The tool result comes back: the model answers in text.
	params.Messages = append(params.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temp":21}`, finished[0].ID))
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	got, err = c.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if want := `Tool result received: {"temp":21}`; got.Choices[0].Message.Content != want || got.Choices[0].FinishReason != "stop" {
		t.Errorf("after tool result: %q %q, want %q stop", got.Choices[0].Message.Content, got.Choices[0].FinishReason, want)
	}
}

func TestChatMaxTokens(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	got, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:               "o3-mini",
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me a story")},
		MaxCompletionTokens: openai.Int(3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != "Hello from fake" || got.Choices[0].FinishReason != "length" || got.Usage.CompletionTokens != 3 {
		t.Errorf("got %q %q %d, want 3 words, length", got.Choices[0].Message.Content, got.Choices[0].FinishReason, got.Usage.CompletionTokens)
	}
}

func TestChatErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	tests := []struct {
		name       string
		key, model string
		msg        string
		wantStatus int
		wantCode   string
		wantType   string
	}{
		{"scenario 401", testKey, "gpt-4o-mini", "[fake:error=401]", 401, "invalid_api_key", "invalid_request_error"},
		{"scenario 429", testKey, "gpt-4o-mini", "x [fake:error=429]", 429, "rate_limit_exceeded", "requests"},
		{"scenario 500", testKey, "gpt-4o-mini", "[fake:error=500]", 500, "", "server_error"},
		{"wrong key", "sk-wrong-key-000", "gpt-4o-mini", "hi", 401, "invalid_api_key", "invalid_request_error"},
		{"unknown model", testKey, "gpt-9", "hi", 404, "model_not_found", "invalid_request_error"},
		{"anthropic model", testKey, "claude-sonnet-4-5", "hi", 404, "model_not_found", "invalid_request_error"},
		{"typo in directive", testKey, "gpt-4o", "[fake:eror=500]", 400, "", "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openAIClient(s, tt.key)
			_, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
				Model:    tt.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(tt.msg)},
			})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *openai.Error", err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.Code != tt.wantCode || apiErr.Type != tt.wantType || apiErr.Message == "" {
				t.Errorf("got %d code=%q type=%q msg=%q, want %d %q %q", apiErr.StatusCode, apiErr.Code, apiErr.Type, apiErr.Message, tt.wantStatus, tt.wantCode, tt.wantType)
			}
		})
	}
}

func TestChatStreamCut(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	stream := c.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[fake:chunks=10] [fake:cut]")},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if stream.Err() == nil {
		t.Fatal("stream.Err() = nil after a cut stream, want an error")
	}
	if got := len(strings.Fields(acc.Choices[0].Message.Content)); got != 5 {
		t.Errorf("received %d words before the cut, want 5", got)
	}
}

func TestChatStreamError(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	stream := c.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[fake:chunks=4] [fake:stream_error]")},
	})
	n := 0
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "server_error") {
		t.Fatalf("stream.Err() = %v, want the in-stream server_error", err)
	}
	if n != 3 { // role + 2 words
		t.Errorf("received %d chunks before the error, want 3", n)
	}
}

func TestChatCancel(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	cctx, cancel := context.WithCancel(ctx(t))
	stream := c.Chat.Completions.NewStreaming(cctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[fake:chunks=1000] [fake:slow=5]")},
	})
	for i := 0; i < 3 && stream.Next(); i++ {
	}
	cancel()
	for stream.Next() {
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Cancelled() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Cancelled() = %d, want 1", s.Cancelled())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestModelsList(t *testing.T) {
	s := start(t, fakeprovider.Options{Models: []string{"gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5"}})
	c := openAIClient(s, "k")
	page, err := c.Models.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.ID)
	}
	if want := "gpt-4o-mini,text-embedding-3-small"; strings.Join(got, ",") != want {
		t.Errorf("models = %v, want %s", got, want)
	}
	m, err := c.Models.Get(ctx(t), "gpt-4o-mini")
	if err != nil || m.ID != "gpt-4o-mini" || m.Object != "model" {
		t.Errorf("Get = %+v, %v", m, err)
	}
	_, err = c.Models.Get(ctx(t), "nope")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("Get(nope) err = %v, want 404", err)
	}
}

func TestEmbeddings(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := openAIClient(s, "k")
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run(string(format), func(t *testing.T) {
			got, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
				Model:          "text-embedding-3-small",
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"alpha", "beta", "alpha"}},
				EncodingFormat: format,
				Dimensions:     openai.Int(64),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Data) != 3 || len(got.Data[0].Embedding) != 64 {
				t.Fatalf("got %d vectors", len(got.Data))
			}
			var norm float64
			for i, v := range got.Data[0].Embedding {
				norm += v * v
				if float32(v) != float32(got.Data[2].Embedding[i]) {
					t.Fatalf("same input, different vectors at %d", i)
				}
			}
			if norm < 0.999 || norm > 1.001 {
				t.Errorf("|v|² = %v, want 1", norm)
			}
			if got.Data[0].Embedding[0] == got.Data[1].Embedding[0] {
				t.Errorf("different inputs gave the same first component")
			}
			if got.Usage.PromptTokens != 5 || got.Data[1].Index != 1 {
				t.Errorf("usage = %+v index = %d", got.Usage, got.Data[1].Index)
			}
		})
	}
	_, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{Model: "gpt-4o", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("chat model for embeddings: err = %v, want 404", err)
	}
}

// TestChatWireFormat pins the raw SSE bytes of a small stream.
func TestChatWireFormat(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	events := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	checkGolden(t, "chat-stream.golden", raw)
	if last := events[len(events)-1]; last != "data: [DONE]" {
		t.Errorf("last event = %q, want data: [DONE]", last)
	}
}
