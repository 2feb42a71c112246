package fakeprovider_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

func anthropicClient(s *fakeprovider.Server, key string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(strings.TrimSuffix(s.URL(), "/v1")), aoption.WithAPIKey(key), aoption.WithMaxRetries(0))
}

var antWeatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name: "get_weather",
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties: map[string]any{
			"city": map[string]any{"type": "string"},
			"unit": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		},
		Required: []string{"city"},
	},
}}

func TestMessagesNonStreaming(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	c := anthropicClient(s, testKey)
	msg, err := c.Messages.New(ctx(t), anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		System:    []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != "Hello from fake claude-sonnet-4-5: you said hello there" {
		t.Fatalf("content = %+v", msg.Content)
	}
	// prompt 8+11 = 19 bytes -> 5 tokens; output 8 words.
	if msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens != 5 || msg.Usage.OutputTokens != 8 {
		t.Errorf("stop=%q usage=%d/%d, want end_turn 5/8", msg.StopReason, msg.Usage.InputTokens, msg.Usage.OutputTokens)
	}
	if !strings.HasPrefix(msg.ID, "msg_fake") || msg.Role != "assistant" {
		t.Errorf("id=%q role=%q", msg.ID, msg.Role)
	}
	r := s.Requests()[0]
	if r.Path != "/v1/messages" || r.Header.Get("Authorization") != "Bearer "+testKey || r.Header.Get("anthropic-version") == "" {
		t.Errorf("recorded %s auth=%q version=%q", r.Path, r.Header.Get("Authorization"), r.Header.Get("anthropic-version"))
	}
}

func TestMessagesStreaming(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := anthropicClient(s, "k")
	stream := c.Messages.NewStreaming(ctx(t), anthropic.MessageNewParams{
		Model:     "claude-haiku-4-5",
		MaxTokens: 100,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("[fake:chunks=20]"))},
	})
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
		if len(types) == 0 || types[len(types)-1] != ev.Type {
			types = append(types, ev.Type)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := "message_start,content_block_start,content_block_delta,content_block_stop,message_delta,message_stop"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("event order = %s\nwant %s", got, want)
	}
	if n := len(strings.Fields(msg.Content[0].Text)); n != 20 {
		t.Errorf("text has %d words, want 20", n)
	}
	if msg.Usage.OutputTokens != 20 || msg.Usage.InputTokens != 4 || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Errorf("usage %d/%d stop %q, want 4/20 end_turn", msg.Usage.InputTokens, msg.Usage.OutputTokens, msg.StopReason)
	}
}

func TestMessagesToolUse(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := anthropicClient(s, "k")
	params := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 256,
		Tools:     []anthropic.ToolUnionParam{antWeatherTool},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather? [fake:tool=get_weather]"))},
	}
	const wantInput = `{"city":"fake","unit":"celsius"}`
	for _, streaming := range []bool{false, true} {
		var msg anthropic.Message
		if streaming {
			stream := c.Messages.NewStreaming(ctx(t), params)
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
		} else {
			m, err := c.Messages.New(ctx(t), params)
			if err != nil {
				t.Fatal(err)
			}
			msg = *m
		}
		if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 1 {
			t.Fatalf("streaming=%v: stop=%q blocks=%d", streaming, msg.StopReason, len(msg.Content))
		}
		b := msg.Content[0]
		if b.Type != "tool_use" || b.Name != "get_weather" || string(b.Input) != wantInput || !strings.HasPrefix(b.ID, "toolu_") {
			t.Errorf("streaming=%v: block = %s %s %s %s, want tool_use get_weather %s", streaming, b.Type, b.ID, b.Name, b.Input, wantInput)
		}
		if msg.Usage.OutputTokens == 0 {
			t.Errorf("streaming=%v: no output tokens", streaming)
		}
		if streaming {
			params.Messages = append(params.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(b.ID, "sunny", false)))
		}
	}
	msg, err := c.Messages.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn || msg.Content[0].Text != "Tool result received: sunny" {
		t.Errorf("after tool result: %q %q", msg.StopReason, msg.Content[0].Text)
	}
}

func TestMessagesMaxTokens(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := anthropicClient(s, "k")
	msg, err := c.Messages.New(ctx(t), anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 2,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonMaxTokens || msg.Content[0].Text != "Hello from" {
		t.Errorf("got %q %q, want max_tokens \"Hello from\"", msg.StopReason, msg.Content[0].Text)
	}
}

func TestMessagesErrors(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	tests := []struct {
		name, key, model, msg string
		wantStatus            int
		wantType              string
	}{
		{"scenario 401", testKey, "claude-sonnet-4-5", "[fake:error=401]", 401, "authentication_error"},
		{"scenario 429", testKey, "claude-sonnet-4-5", "[fake:error=429]", 429, "rate_limit_error"},
		{"scenario 500", testKey, "claude-sonnet-4-5", "[fake:error=500]", 500, "api_error"},
		{"scenario 529", testKey, "claude-sonnet-4-5", "[fake:error=529]", 529, "overloaded_error"},
		{"wrong key", "nope", "claude-sonnet-4-5", "hi", 401, "authentication_error"},
		{"openai model", testKey, "gpt-4o", "hi", 404, "not_found_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := anthropicClient(s, tt.key)
			_, err := c.Messages.New(ctx(t), anthropic.MessageNewParams{
				Model:     tt.model,
				MaxTokens: 10,
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(tt.msg))},
			})
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *anthropic.Error", err)
			}
			if apiErr.StatusCode != tt.wantStatus || string(apiErr.Type()) != tt.wantType || apiErr.Message == "" || apiErr.RequestID == "" {
				t.Errorf("got %d %q %q req=%q, want %d %q", apiErr.StatusCode, apiErr.Type(), apiErr.Message, apiErr.RequestID, tt.wantStatus, tt.wantType)
			}
		})
	}
}

func TestMessagesMissingVersion(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"type":"invalid_request_error"`) || !strings.Contains(string(body), "anthropic-version") {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestMessagesStreamCutAndError(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := anthropicClient(s, "k")
	tests := []struct {
		directive string
		wantErr   string
	}{
		{"[fake:cut]", ""},
		{"[fake:stream_error]", "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.directive, func(t *testing.T) {
			stream := c.Messages.NewStreaming(ctx(t), anthropic.MessageNewParams{
				Model:     "claude-sonnet-4-5",
				MaxTokens: 100,
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("[fake:chunks=6] " + tt.directive))},
			})
			var msg anthropic.Message
			for stream.Next() {
				_ = msg.Accumulate(stream.Current())
			}
			err := stream.Err()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("stream.Err() = %v, want an error containing %q", err, tt.wantErr)
			}
			if n := len(strings.Fields(msg.Content[0].Text)); n != 3 {
				t.Errorf("received %d words before the interruption, want 3", n)
			}
		})
	}
}

func TestAnthropicModels(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	c := anthropicClient(s, "k")
	page, err := c.Models.List(ctx(t), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.ID+"="+m.DisplayName)
	}
	if want := "claude-sonnet-4-5=Claude Sonnet 4.5,claude-sonnet-5-5=Claude Sonnet 5.5,claude-haiku-4-5=Claude Haiku 4.5,claude-opus-4-1=Claude Opus 4.1"; strings.Join(got, ",") != want {
		t.Errorf("models = %s\nwant %s", strings.Join(got, ","), want)
	}
}

// TestMessagesWireFormat pins the raw SSE of a streamed tool call.
func TestMessagesWireFormat(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	body := `{"model":"claude-sonnet-4-5","max_tokens":50,"stream":true,"tools":[{"name":"lookup","input_schema":{"type":"object","properties":{"q":{"type":"string"}}}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"find it"}]}`
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/messages", strings.NewReader(body))
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "messages-tool-stream.golden", raw)
}

func TestAnthropicAuthHeaders(t *testing.T) {
	s := start(t, fakeprovider.Options{APIKey: testKey})
	body := `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, header, value string
		wantStatus          int
		wantBody            string
	}{
		{"x-api-key", "x-api-key", testKey, 200, `"type":"message"`},
		{"bearer", "Authorization", "Bearer " + testKey, 200, `"type":"message"`},
		{"wrong x-api-key", "x-api-key", "bad", 401, "invalid x-api-key"},
		{"none", "X-Other", "1", 401, "x-api-key header is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL()+"/messages", strings.NewReader(body))
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set(tt.header, tt.value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(got), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, got, tt.wantStatus, tt.wantBody)
			}
		})
	}
}
