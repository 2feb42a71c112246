package fakeprovider_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

// The official SDK's CountTokens gets the input tokens that Messages
// reports as usage for the same system, messages and tools.
func TestCountTokensMatchesMessagesUsage(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	c := anthropicClient(s, testKey)
	system := []anthropic.TextBlockParam{{Text: "be brief"}}
	msgs := []anthropic.MessageParam{
		anthropic.NewUserMessage(anthropic.NewTextBlock("what is the weather in Paris today?")),
	}
	for _, tc := range []struct {
		name  string
		tools []anthropic.ToolUnionParam
	}{
		{"text only", nil},
		{"with a tool", []anthropic.ToolUnionParam{antWeatherTool}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := anthropic.MessageCountTokensParams{Model: "claude-sonnet-4-5", System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: system}, Messages: msgs}
			for _, tl := range tc.tools {
				p.Tools = append(p.Tools, anthropic.MessageCountTokensToolUnionParam{OfTool: tl.OfTool})
			}
			got, err := c.Messages.CountTokens(ctx(t), p)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := c.Messages.New(ctx(t), anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 64, System: system, Messages: msgs, Tools: tc.tools})
			if err != nil {
				t.Fatal(err)
			}
			if got.InputTokens != msg.Usage.InputTokens || got.InputTokens < 1 {
				t.Errorf("count = %d, want the Messages usage %d", got.InputTokens, msg.Usage.InputTokens)
			}
		})
	}
	r := s.Requests()[0]
	if r.Path != "/v1/messages/count_tokens" || r.Header.Get("anthropic-version") == "" {
		t.Errorf("recorded %s version=%q", r.Path, r.Header.Get("anthropic-version"))
	}
}

// The wire format: exactly {"input_tokens":N}, as JSON.
func TestCountTokensWire(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/messages/count_tokens",
		strings.NewReader(`{"model":"claude-sonnet-4-5","system":"be brief","messages":[{"role":"user","content":"what is the weather in Paris today?"}]}`))
	req.Header.Set("anthropic-version", "2023-06-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	// 8 bytes of system and 35 of text: 43 bytes, 11 tokens.
	if got, want := string(b), "{\"input_tokens\":11}\n"; res.StatusCode != 200 || got != want || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q (%s), want 200 %q", res.StatusCode, got, res.Header.Get("Content-Type"), want)
	}
	if res.Header.Get("request-id") == "" {
		t.Error("no request-id header")
	}
}

func TestCountTokensErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	for _, tc := range []struct {
		name, body, version string
		status              int
		errType, message    string
	}{
		{"max_tokens", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "2023-06-01", 400, "invalid_request_error", "max_tokens: Extra inputs are not permitted"},
		{"stream", `{"model":"claude-sonnet-4-5","stream":false,"messages":[{"role":"user","content":"x"}]}`, "2023-06-01", 400, "invalid_request_error", "stream: Extra inputs are not permitted"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "2023-06-01", 400, "invalid_request_error", "model: Field required"},
		{"no messages", `{"model":"claude-sonnet-4-5","messages":[]}`, "2023-06-01", 400, "invalid_request_error", "messages: at least one message is required"},
		{"bad role", `{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"x"}]}`, "2023-06-01", 400, "invalid_request_error", "messages.0.role"},
		{"not JSON", `{"model":`, "2023-06-01", 400, "invalid_request_error", "error parsing the body"},
		{"no version", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`, "", 400, "invalid_request_error", "anthropic-version"},
		{"OpenAI model", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`, "2023-06-01", 404, "not_found_error", "model: gpt-4o-mini"},
		{"scenario error", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"[fake:error=529]"}]}`, "2023-06-01", 529, "overloaded_error", "Overloaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL()+"/messages/count_tokens", strings.NewReader(tc.body))
			if tc.version != "" {
				req.Header.Set("anthropic-version", tc.version)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || !strings.Contains(string(b), `"type":"`+tc.errType+`"`) || !strings.Contains(string(b), tc.message) {
				t.Errorf("got %d %s, want %d %s %q", res.StatusCode, b, tc.status, tc.errType, tc.message)
			}
		})
	}
	// The SDK reads the error as an API error.
	c := anthropicClient(s, "")
	_, err := c.Messages.CountTokens(ctx(t), anthropic.MessageCountTokensParams{Model: "gpt-4o"})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Errorf("err = %v, want a 400 API error", err)
	}
}
