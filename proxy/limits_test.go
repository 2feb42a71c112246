package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

func TestInFlightLimitPerPrincipal(t *testing.T) {
	env := startGateway(t, envOptions{limits: proxy.Limits{MaxInFlightPerPrincipal: 2}})
	// Two slow streams hold the app's two slots.
	first, _ := startStream(t, env, "[fake:chunks=40] [fake:slow=50]")
	second, _ := startStream(t, env, "[fake:chunks=40] [fake:slow=50]")

	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "one more"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "too_many_requests_in_flight" {
		t.Fatalf("third request in flight: err = %v, want 429 too_many_requests_in_flight", err)
	}
	reqID := apiErr.Response.Header.Get("X-Request-Id")
	if got := apiErr.Response.Header.Get("Retry-After"); got == "" {
		t.Error("429 without Retry-After")
	}
	recs := env.recordsFor(reqID)
	if len(recs) != 1 || recs[0]["action"] != "request.admit" || recs[0]["decision"].(map[string]any)["allow"] != false {
		t.Fatalf("refusal records = %v, want one request.admit deny", recs)
	}

	// Another principal is not held back by the app's streams.
	human, err := env.chat(identity.DevHumanID).New(context.Background(), chatParams("gpt-4o-mini", "hello"))
	if err != nil && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("another principal was limited: %v", err)
	}
	_ = human

	// Slots come back when the streams end.
	for _, done := range []chan error{first, second} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "after")); err != nil {
		t.Fatalf("request after the streams ended: %v", err)
	}
}

func TestRequestTimeoutCutsStream(t *testing.T) {
	env := startGateway(t, envOptions{limits: proxy.Limits{RequestTimeout: 400 * time.Millisecond}})
	start := time.Now()
	done, resp := startStream(t, env, "[fake:chunks=100] [fake:slow=50]")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stream past the request timeout ended cleanly")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still running 10s after a 400ms request timeout")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stream cut after %s, want about 400ms", d)
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 {
		t.Fatalf("want decision and completion records, got %v", recs)
	}
	if msg, _ := recs[1]["error"].(string); !strings.Contains(msg, "request timeout") {
		t.Errorf("completion record error = %q; want the request timeout", msg)
	}
}

// TestBodyReadTimeout sends headers and half a body, then stalls: the
// gateway gives up on the body, refuses and records it.
func TestBodyReadTimeout(t *testing.T) {
	env := startGateway(t, envOptions{limits: proxy.Limits{BodyReadTimeout: 300 * time.Millisecond}})
	body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write(body[:len(body)/2]) }() // and never the rest
	req, _ := http.NewRequest(http.MethodPost, "https://"+env.addr+"/v1/chat/completions", pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	start := time.Now()
	resp, err := env.httpClient(env.svid(identity.DevAppID)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(msg, []byte(`"code":"request_timeout"`)) {
		t.Fatalf("stalled body: status %d %s, want 408 request_timeout", resp.StatusCode, msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refused after %s, want about 300ms", d)
	}
	recs := env.recordsFor(resp.Header.Get("X-Request-Id"))
	if len(recs) != 1 || recs[0]["decision"].(map[string]any)["allow"] != false {
		t.Fatalf("records = %v, want one refusal", recs)
	}
	if !bytes.Contains(msg, []byte("body")) {
		t.Errorf("refusal %s does not say the body was the problem", msg)
	}
}

// TestRequestTimeoutCutsSlowAnswer: a JSON answer that would come after
// the request timeout is not waited for.
func TestRequestTimeoutCutsSlowAnswer(t *testing.T) {
	env := startGateway(t, envOptions{limits: proxy.Limits{RequestTimeout: 300 * time.Millisecond}})
	start := time.Now()
	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "[fake:slow=3000] hello"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode < 500 {
		t.Fatalf("answer past the request timeout: err = %v, want a 5xx", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("refused after %s, want about 300ms", d)
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 2 {
		t.Fatalf("want decision and completion records, got %v", recs)
	}
	if msg, _ := recs[1]["error"].(string); !strings.Contains(msg, "request timeout") {
		t.Errorf("completion record error = %q; want the request timeout", msg)
	}
}
