package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// A provider's response headers that describe the gateway's account with it
// (organization, rate-limit counters), its cookies, redirections and request
// ids stay with the gateway; those that describe the body or when to retry
// reach the client, and the provider's request id comes as
// X-Upstream-Request-Id.
func TestProviderResponseHeadersAreFiltered(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("Retry-After", "3")
		h.Set("Anthropic-Organization-Id", "org-secret")
		h.Set("Openai-Organization", "org-secret")
		h.Set("Anthropic-Ratelimit-Input-Tokens-Remaining", "123")
		h.Set("Request-Id", "req_upstream_1")
		h.Set("Set-Cookie", "session=secret")
		h.Set("Location", "https://elsewhere.example/")
		h.Set("X-Echo-Key", r.Header.Get("X-Api-Key"))
		_, _ = io.WriteString(w, `{"input_tokens":3}`)
	}))
	defer upstream.Close()
	base, _ := url.Parse(upstream.URL + "/v1")
	env := startGateway(t, envOptions{routes: func(*url.URL) []proxy.Route {
		p := &proxy.Provider{Name: "raw", Format: proxy.FormatAnthropic, BaseURL: base}
		p.SetKey("sk-provider-key")
		return []proxy.Route{{Model: "claude-sonnet-4-5", Provider: p}}
	}})
	hc := env.httpClient(env.svid(identity.DevAppID))
	resp, err := hc.Post("https://"+env.addr+"/v1/messages/count_tokens", "application/json",
		strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"input_tokens":3}` {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
	for _, k := range []string{"Cache-Control", "Retry-After", "Content-Type", "X-Portcullis-Provider", "X-Portcullis-Audit-Seq", "X-Request-Id"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("%s is missing", k)
		}
	}
	if got := resp.Header.Get("X-Upstream-Request-Id"); got != "req_upstream_1" {
		t.Errorf("X-Upstream-Request-Id = %q", got)
	}
	for _, k := range []string{"Anthropic-Organization-Id", "Openai-Organization", "Anthropic-Ratelimit-Input-Tokens-Remaining",
		"Request-Id", "Set-Cookie", "Location", "X-Echo-Key"} {
		if v := resp.Header.Values(k); len(v) != 0 {
			t.Errorf("%s reached the client: %q", k, v)
		}
	}
}
