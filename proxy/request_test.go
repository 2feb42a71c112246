package proxy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestParseChatRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    LLMRequest // Digest is checked separately
		wantErr error
	}{
		{
			name: "minimal",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
			want: LLMRequest{API: APIChatCompletions, Model: "gpt-4o-mini", Messages: 1, PromptBytes: 4},
		},
		{
			name: "stream with usage and max_completion_tokens wins",
			body: `{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"max_completion_tokens":20,"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}`,
			want: LLMRequest{API: APIChatCompletions, Model: "m", Stream: true, IncludeUsage: true, MaxTokens: 20, Messages: 2, PromptBytes: 6},
		},
		{
			name: "tools offered and a tool result named through the assistant's call",
			body: `{"model":"m","tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"search"}}],
				"messages":[{"role":"user","content":"w?"},
				{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
				{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}`,
			want: LLMRequest{API: APIChatCompletions, Model: "m", Messages: 3, PromptBytes: 4 + 4 + 7,
				Tools: []string{"get_weather", "search"}, ToolResults: []string{"get_weather"}},
		},
		{
			name: "tool result without a matching call is named unknown",
			body: `{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"r"}]}`,
			want: LLMRequest{API: APIChatCompletions, Model: "m", Messages: 1, PromptBytes: 3, ToolResults: []string{"unknown:x"}},
		},
		{name: "empty", body: "  ", wantErr: errEmptyBody},
		{name: "array", body: `[1]`, wantErr: errNotAnObject},
		{name: "no model", body: `{"messages":[{"role":"user","content":"x"}]}`, wantErr: errNoModel},
		{name: "no messages", body: `{"model":"m","messages":[]}`, wantErr: errNoMessages},
		{name: "negative max tokens", body: `{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}`, wantErr: errBadMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChatRequest([]byte(tt.body), testKey)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got.Digest) != 64 {
				t.Errorf("digest %q is not 32 hex bytes", got.Digest)
			}
			got.Digest = ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseChatRequestBadJSON(t *testing.T) {
	_, err := ParseChatRequest([]byte(`{"model":`), testKey)
	if err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("err = %v, want an invalid JSON error", err)
	}
}

func TestPromptDigestIsKeyedAndContentBound(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"secret plan"}]}`)
	a, _ := ParseChatRequest(body, testKey)
	b, _ := ParseChatRequest(body, []byte("another key of sixteen+ bytes"))
	c, _ := ParseChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"secret plan!"}]}`), testKey)
	if a.Digest == b.Digest {
		t.Error("digest does not depend on the key")
	}
	if a.Digest == c.Digest {
		t.Error("digest does not depend on the content")
	}
	if strings.Contains(a.Digest, "secret") {
		t.Error("digest leaks prompt text")
	}
}

func TestPatchBody(t *testing.T) {
	got, err := patchBody([]byte(`{"model":"a","messages":[],"max_tokens":5}`), map[string]any{"model": "b", "max_tokens": nil})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"max_tokens":null,"messages":[],"model":"b"}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func FuzzParseChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","stream":true,"tools":[{"function":{"name":"t"}}],"messages":[{"role":"tool","tool_call_id":"1","content":"x"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":-3,"messages":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseChatRequest(body, testKey)
		if err != nil {
			return
		}
		if req.Model == "" || req.Messages == 0 || req.MaxTokens < 0 || len(req.Digest) != 64 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		if req.PromptBytes > len(body) {
			t.Fatalf("prompt bytes %d exceed body length %d", req.PromptBytes, len(body))
		}
	})
}
