package fakeprovider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// fuzzServer answers fuzzed requests; one per process is enough.
var fuzzServer = func() *Server {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return New(Options{Logger: l, RecordLimit: -1, Clock: func() time.Time { return time.Unix(0, 0) }})
}()

// serveFuzz runs one request through the handler with a short deadline, so
// [fake:slow] cannot stall the fuzzer, and checks the answer's shape.
func serveFuzz(t *testing.T, path string, header http.Header, body []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if r := recover(); r != nil && r != http.ErrAbortHandler {
				panic(r)
			}
		}()
		fuzzServer.ServeHTTP(rec, req)
	}()
	res := rec.Result()
	out, _ := io.ReadAll(res.Body)
	if ctx.Err() != nil {
		return // abandoned half way, by design
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if ok && data != "[DONE]" && !json.Valid([]byte(data)) {
				t.Fatalf("invalid JSON event %q for %s", data, body)
			}
		}
		return
	}
	if !json.Valid(out) {
		t.Fatalf("status %d, invalid JSON %q for %s", res.StatusCode, out, body)
	}
	if res.StatusCode >= 400 && !bytes.Contains(out, []byte(`"error":{`)) {
		t.Fatalf("status %d without an error object: %s", res.StatusCode, out)
	}
}

func FuzzChatCompletions(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"[fake:chunks=3]"}]}]}`,
		`{"model":"gpt-4o","max_tokens":2,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":["integer","null"]}}}}}],"tool_choice":"required","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"gpt-4o","stream":true,"tools":[{"type":"function","function":{"name":"f"}},{"type":"custom","custom":{"name":"g"}}],"messages":[{"role":"user","content":"[fake:tool=*] [fake:cut]"}]}`,
		`{"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":"c","content":"é"}]} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if c, err := parseChat(body); err == nil {
			r, aerr := answer(c.convo, c.sc, func(int) string { return "id" })
			if aerr == nil && c.convo.maxTokens > 0 && len(r.calls) == 0 && r.completionTokens > c.convo.maxTokens {
				t.Fatalf("%d completion tokens over max_tokens %d", r.completionTokens, c.convo.maxTokens)
			}
		}
		serveFuzz(t, "/v1/chat/completions", nil, body)
	})
}

func FuzzMessages(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":99,"stream":true,"system":[{"type":"text","text":"s"}],"tools":[{"name":"t","input_schema":{"type":"object","properties":{"e":{"enum":["a"]}}}}],"messages":[{"role":"user","content":[{"type":"text","text":"[fake:tool]"}]}]}`,
		`{"model":"claude-haiku-4-5","max_tokens":5,"tool_choice":{"type":"tool","name":"t"},"tools":[{"name":"t","input_schema":{}}],"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"text","text":"r"}]}]}]}`,
	} {
		f.Add([]byte(s))
	}
	h := http.Header{"Anthropic-Version": {"2023-06-01"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseMessages(body)
		serveFuzz(t, "/v1/messages", h, body)
	})
}

func FuzzCountTokens(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"claude-sonnet-4-5","system":"s","thinking":{"type":"enabled","budget_tokens":1024},"tools":[{"name":"t","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":[{"type":"text","text":"[fake:slow=1]"}]}]}`,
		`{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`,
	} {
		f.Add([]byte(s))
	}
	h := http.Header{"Anthropic-Version": {"2023-06-01"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		if c, err := parseCountTokens(body); err == nil {
			if c.model == "" || c.stream || c.convo.maxTokens != 0 {
				t.Fatalf("accepted %+v", c)
			}
		}
		serveFuzz(t, "/v1/messages/count_tokens", h, body)
	})
}

func FuzzResponses(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","input":"hi"}`,
		`{"model":"gpt-4o","stream":true,"max_output_tokens":16,"input":[{"role":"user","content":[{"type":"input_text","text":"[fake:chunks=30]"}]}]}`,
		`{"model":"gpt-4o","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f"},"input":[{"type":"function_call_output","call_id":"c","output":"o"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseResponses(body)
		serveFuzz(t, "/v1/responses", nil, body)
	})
}

func FuzzEmbeddings(f *testing.F) {
	for _, s := range []string{
		`{"model":"text-embedding-3-small","input":"hi"}`,
		`{"model":"text-embedding-3-large","input":[[1,2],[3]],"encoding_format":"base64","dimensions":8}`,
		`{"model":"text-embedding-3-small","input":[1,2,3]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if c, err := parseEmbeddings(body); err == nil && (c.dims < 1 || len(c.inputs) == 0) {
			t.Fatalf("accepted %d dims, %d inputs", c.dims, len(c.inputs))
		}
		serveFuzz(t, "/v1/embeddings", nil, body)
	})
}

func FuzzParseScenario(f *testing.F) {
	for _, s := range []string{"", "[fake:error=429]", "[fake:chunks=50][fake:slow=1]", "[fake:tool=*] [fake:cut]", "[fake:nope]", "[fake:slow=99999999999]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sc, err := parseScenario(text)
		if err != nil {
			var ie inputError
			if errors.As(err, &ie) {
				t.Fatalf("scenario errors are plain errors, got %T", err)
			}
			return
		}
		if sc.errStatus != 0 && (sc.errStatus < 400 || sc.errStatus > 599) || sc.chunks < 0 || sc.chunks > maxScenarioChunks || sc.slow < 0 || sc.slow > maxScenarioSlow {
			t.Fatalf("out of bounds: %+v", sc)
		}
		if strings.Contains(stripDirectives(text), "[fake:") && directiveRE.MatchString(stripDirectives(text)) {
			t.Fatalf("stripDirectives left a directive in %q", text)
		}
	})
}
