package proxy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCountTokensRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    LLMRequest // Digest is checked separately
		wantErr error
		errText string // for errors that are not sentinels
	}{
		{
			name: "minimal",
			body: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`,
			want: LLMRequest{API: APICountTokens, Model: "claude-sonnet-4-5", Messages: 1, PromptBytes: 4},
		},
		{
			name: "system, tools, tool_choice, thinking, and a tool result named through its tool_use",
			body: `{"model":"m","system":"be brief","tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":2048},
				"tools":[{"name":"get_weather","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}],
				"messages":[{"role":"user","content":"w?"},
				{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}`,
			want: LLMRequest{API: APICountTokens, Model: "m", Messages: 3,
				PromptBytes: len(`"be brief"`) + len(`"w?"`) + len(`[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]`) +
					len(`[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]`),
				Tools: []string{"get_weather", "web_search"}, ToolResults: []string{"get_weather"}},
		},
		{name: "empty", body: " ", wantErr: errEmptyBody},
		{name: "array", body: `[{"model":"m"}]`, wantErr: errNotAnObject},
		{name: "no model", body: `{"messages":[{"role":"user","content":"x"}]}`, wantErr: errNoModel},
		{name: "no messages", body: `{"model":"m","messages":[]}`, wantErr: errNoMessages},
		{name: "max_tokens", body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, wantErr: errCountMaxTokens},
		{name: "max_tokens null", body: `{"model":"m","max_tokens":null,"messages":[{"role":"user","content":"x"}]}`, wantErr: errCountMaxTokens},
		{name: "stream false", body: `{"model":"m","stream":false,"messages":[{"role":"user","content":"x"}]}`, wantErr: errCountStream},
		{name: "not JSON", body: `{"model":"m",`, errText: "invalid JSON body"},
		{name: "messages not an array", body: `{"model":"m","messages":"x"}`, errText: "invalid JSON body"},
		{name: "bad content blocks", body: `{"model":"m","messages":[{"role":"user","content":[1]}]}`, errText: "messages[0].content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCountTokensRequest([]byte(tt.body), testKey)
			switch {
			case tt.wantErr != nil || tt.errText != "":
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %v %q", err, tt.wantErr, tt.errText)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got.Digest) != 64 {
				t.Errorf("digest %q, want 64 hex digits", got.Digest)
			}
			got.Digest = ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// A count and the Messages call it precedes carry the same prompt metadata
// and digest, so the audit log can tie them together without the text.
func TestCountTokensPromptMatchesMessages(t *testing.T) {
	prompt := `"system":[{"type":"text","text":"s"}],"tools":[{"name":"f","input_schema":{}}],"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"},{"role":"user","content":"more"}]`
	count, err := ParseCountTokensRequest([]byte(`{"model":"m",`+prompt+`}`), testKey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ParseMessagesRequest([]byte(`{"model":"m","max_tokens":100,"stream":true,`+prompt+`}`), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if count.Digest != msg.Digest || count.PromptBytes != msg.PromptBytes || count.Messages != msg.Messages || !reflect.DeepEqual(count.Tools, msg.Tools) {
		t.Errorf("count %+v, messages %+v: want the same prompt metadata", count, msg)
	}
	other, _ := ParseCountTokensRequest([]byte(`{"model":"m",`+strings.Replace(prompt, "more", "less", 1)+`}`), testKey)
	if other.Digest == count.Digest {
		t.Error("another prompt has the same digest")
	}
}

func TestReadTokenCount(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    int64
		wantErr string
	}{
		{name: "count", body: `{"input_tokens":42}`, want: 42},
		{name: "zero", body: `{"input_tokens":0}`, want: 0},
		{name: "other members relayed", body: `{"input_tokens":7,"context_management":{"original_input_tokens":9}}`, want: 7},
		{name: "missing", body: `{"tokens":42}`, wantErr: "input_tokens is missing"},
		{name: "null", body: `{"input_tokens":null}`, wantErr: "input_tokens is missing"},
		{name: "in another case", body: `{"Input_tokens":3}`, wantErr: "input_tokens is missing"},
		{name: "negative", body: `{"input_tokens":-1}`, wantErr: "negative"},
		{name: "fraction", body: `{"input_tokens":1.5}`, wantErr: "cannot unmarshal"},
		{name: "string", body: `{"input_tokens":"42"}`, wantErr: "cannot unmarshal"},
		{name: "truncated", body: `{"input_tokens":4`, wantErr: "malformed JSON"},
		{name: "repeated key", body: `{"input_tokens":1,"input_tokens":900}`, wantErr: "duplicate keys"},
		{name: "key in two cases", body: `{"input_tokens":1,"Input_Tokens":900}`, wantErr: "duplicate keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readTokenCount([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %d, err %v, want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, err %v, want %d", got, err, tt.want)
			}
		})
	}
}
