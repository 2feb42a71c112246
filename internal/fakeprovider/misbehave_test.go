package fakeprovider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

// TestMisbehaviourDirectives checks the opt-in misbehaviours a gateway's
// tests use: a 2xx answer labelled with another Content-Type (or none),
// and a JSON answer cut in half.
func TestMisbehaviourDirectives(t *testing.T) {
	s := start(t, fakeprovider.Options{})
	tests := []struct {
		name, path, body string
		wantType         []string // Content-Type values sent
		wantStream       bool     // the body is SSE
		wantJSON         bool     // the body is valid JSON
	}{
		{"chat stream relabelled", "/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi [fake:content_type=application/octet-stream]"}]}`,
			[]string{"application/octet-stream"}, true, false},
		{"chat stream unlabelled", "/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi [fake:content_type=none]"}]}`,
			nil, true, false},
		{"responses stream in another case", "/responses",
			`{"model":"gpt-4o-mini","stream":true,"input":"hi [fake:content_type=Text/Event-Stream; charset=utf-8]"}`,
			[]string{"Text/Event-Stream; charset=utf-8"}, true, false},
		{"chat JSON labelled as a stream", "/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi [fake:content_type=text/event-stream]"}]}`,
			[]string{"text/event-stream"}, false, true},
		{"chat JSON truncated", "/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi [fake:truncate]"}]}`,
			[]string{"application/json"}, false, false},
		{"errors keep their type", "/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi [fake:error=429][fake:content_type=none]"}]}`,
			[]string{"application/json"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(s.URL()+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Values("Content-Type"); strings.Join(got, ",") != strings.Join(tt.wantType, ",") {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := strings.HasPrefix(string(raw), "data: ") || strings.HasPrefix(string(raw), "event: "); got != tt.wantStream {
				t.Errorf("body is SSE = %v, want %v: %.80s", got, tt.wantStream, raw)
			}
			if got := json.Valid(raw); got != tt.wantJSON {
				t.Errorf("body is valid JSON = %v, want %v: %.80s", got, tt.wantJSON, raw)
			}
		})
	}
}
