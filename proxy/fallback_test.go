package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// failing is an upstream that answers every request with status, in
// OpenAI's error shape, and counts them.
func failing(t *testing.T, status int) (*url.URL, *int) {
	n := new(int)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*n++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"message":"down","type":"server_error","code":null,"param":null}}`))
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL + "/v1")
	return u, n
}

// refusing is a base URL where nothing listens.
func refusing(t *testing.T) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u, _ := url.Parse("http://" + addr + "/v1")
	return u
}

// fallbackRoutes routes gpt-4o-mini to primary, falling back to the fake
// (OpenAI format), and gpt-4o to primary, falling back to the fake speaking
// Anthropic (a cross-format fallback).
func fallbackRoutes(primary *url.URL, timeout time.Duration) func(*url.URL) []proxy.Route {
	return func(base *url.URL) []proxy.Route {
		p := &proxy.Provider{Name: "primary", Format: proxy.FormatOpenAI, BaseURL: primary, Timeout: timeout}
		backup := &proxy.Provider{Name: "backup", Format: proxy.FormatOpenAI, BaseURL: base}
		backup.SetKey(providerKey)
		ant := &proxy.Provider{Name: "backup-anthropic", Format: proxy.FormatAnthropic, BaseURL: base}
		ant.SetKey(providerKey)
		return []proxy.Route{
			{Model: "gpt-4o-mini", Provider: p, Fallback: []proxy.Upstream{{Provider: backup, Model: "gpt-4o-mini"}}},
			{Model: "gpt-4o", Provider: p, Fallback: []proxy.Upstream{{Provider: ant, Model: "claude-sonnet-4-5"}}},
		}
	}
}

func attempts(t *testing.T, rec map[string]any) []string {
	t.Helper()
	list, _ := get(rec, "detail", "attempts").([]any)
	var out []string
	for _, a := range list {
		m := a.(map[string]any)
		s := m["provider"].(string) + ":"
		if st, ok := m["status"].(float64); ok {
			s += http.StatusText(int(st))
		} else {
			s += "error"
		}
		out = append(out, s)
	}
	return out
}

func TestFallback(t *testing.T) {
	down, _ := failing(t, http.StatusServiceUnavailable)
	limited, _ := failing(t, http.StatusTooManyRequests)
	for _, tc := range []struct {
		name    string
		primary *url.URL
		model   string
		want    string // the provider that answered
		first   string // the recorded first attempt
	}{
		{"5xx", down, "gpt-4o-mini", "backup", "primary:Service Unavailable"},
		{"429", limited, "gpt-4o-mini", "backup", "primary:Too Many Requests"},
		{"connection refused", refusing(t), "gpt-4o-mini", "backup", "primary:error"},
		{"to an Anthropic provider", down, "gpt-4o", "backup-anthropic", "primary:Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startGateway(t, envOptions{routes: fallbackRoutes(tc.primary, 0)})
			for _, stream := range []bool{false, true} {
				var resp *http.Response
				c := env.chat(identity.DevAppID)
				if stream {
					s := c.NewStreaming(context.Background(), chatParams(tc.model, "hi"), option.WithResponseInto(&resp))
					for s.Next() {
					}
					if err := s.Err(); err != nil {
						t.Fatalf("stream: %v", err)
					}
				} else if got, err := c.New(context.Background(), chatParams(tc.model, "hi"), option.WithResponseInto(&resp)); err != nil {
					t.Fatal(err)
				} else if !strings.HasPrefix(got.Choices[0].Message.Content, "Hello from fake") {
					t.Fatalf("content %q", got.Choices[0].Message.Content)
				}
				if p := resp.Header.Get("X-Portcullis-Provider"); p != tc.want {
					t.Errorf("stream=%v: answered by %q, want %q", stream, p, tc.want)
				}
				recs := env.settled(requestID(t, resp))
				comp := recs[len(recs)-1]
				if got := strings.Join(attempts(t, comp), ","); got != tc.first+","+tc.want+":OK" {
					t.Errorf("stream=%v: attempts %s", stream, got)
				}
				if get(comp, "request", "provider") != tc.want || get(recs[0], "request", "provider") != "primary" {
					t.Errorf("stream=%v: decision provider %v, completion provider %v", stream, get(recs[0], "request", "provider"), get(comp, "request", "provider"))
				}
			}
		})
	}
}

// A stream that breaks after its first bytes went out is never retried.
func TestNoFallbackAfterFirstStreamedByte(t *testing.T) {
	env := startGateway(t, envOptions{routes: func(base *url.URL) []proxy.Route {
		p := &proxy.Provider{Name: "primary", Format: proxy.FormatOpenAI, BaseURL: base}
		p.SetKey(providerKey)
		backup, _ := failing(t, http.StatusOK)
		return []proxy.Route{{Model: "gpt-4o-mini", Provider: p, Fallback: []proxy.Upstream{{Provider: &proxy.Provider{Name: "backup", Format: proxy.FormatOpenAI, BaseURL: backup}, Model: "gpt-4o-mini"}}}}
	}})
	var resp *http.Response
	s := env.chat(identity.DevAppID).NewStreaming(context.Background(), chatParams("gpt-4o-mini", "[fake:chunks=20] [fake:cut]"), option.WithResponseInto(&resp))
	n := 0
	for s.Next() {
		n++
	}
	if s.Err() == nil || n == 0 {
		t.Fatalf("chunks %d err %v; want some chunks then an error", n, s.Err())
	}
	recs := env.settled(requestID(t, resp))
	comp := recs[len(recs)-1]
	if got := attempts(t, comp); len(got) != 1 || comp["error"] == nil {
		t.Errorf("attempts %v error %v; want one attempt and the failure", got, comp["error"])
	}
}

func TestProviderTimeout(t *testing.T) {
	env := startGateway(t, envOptions{routes: func(base *url.URL) []proxy.Route {
		p := &proxy.Provider{Name: "slow", Format: proxy.FormatOpenAI, BaseURL: base, Timeout: 150 * time.Millisecond}
		p.SetKey(providerKey)
		return []proxy.Route{{Model: "gpt-4o-mini", Provider: p}}
	}})
	c := env.chat(identity.DevAppID)
	_, err := c.New(context.Background(), chatParams("gpt-4o-mini", "[fake:slow=2000]"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("err = %v, want 504", err)
	}
	// A stream's timeout is the wait for its headers: a slow stream that
	// has started runs to its end.
	s := c.NewStreaming(context.Background(), chatParams("gpt-4o-mini", "[fake:chunks=6] [fake:slow=40]"))
	n := 0
	for s.Next() {
		n++
	}
	if err := s.Err(); err != nil || n < 6 {
		t.Fatalf("slow stream: %d chunks, err %v", n, err)
	}
}

// Closing a stream mid-way cancels the provider's request.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	env := startGateway(t, envOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var resp *http.Response
	s := env.chat(identity.DevAppID).NewStreaming(ctx, chatParams("gpt-4o-mini", "[fake:chunks=500] [fake:slow=10]"), option.WithResponseInto(&resp))
	for i := 0; i < 3 && s.Next(); i++ {
	}
	cancel()
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for env.fake.Cancelled() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if env.fake.Cancelled() != 1 {
		t.Fatalf("provider saw %d cancelled answers, want 1", env.fake.Cancelled())
	}
	for time.Now().Before(deadline) && len(env.recordsFor(resp.Header.Get("X-Request-Id"))) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	recs := env.recordsFor(resp.Header.Get("X-Request-Id"))
	if len(recs) != 2 || recs[1]["error"] == nil {
		t.Fatalf("completion record of the abandoned stream = %v", recs)
	}
}

// settled returns the records of a request once its completion record is
// written: a client that stops at a stream's end marker may get there
// before the gateway has read the upstream's end.
func (e *gatewayEnv) settled(reqID string) []map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := e.recordsFor(reqID)
		if n := len(recs); n > 0 && recs[n-1]["type"] == "completion" || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}
