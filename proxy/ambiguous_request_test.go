package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/identity"
)

// A body whose keys a reader could take as one — a repeat, or keys equal
// but for case — is refused on every model API before any decision: the
// gateway reads such keys as encoding/json does (the last one, any case),
// a provider may read the first or only the exact spelling, so the request
// decided and the request served could differ (here: the model, the tools,
// the prompt). Nothing is forwarded, and the refusal is recorded.
func TestAmbiguousRequestBodiesAreRefused(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	hc := env.httpClient(env.svid(identity.DevAppID))
	msg := `[{"role":"user","content":"SECRET"}]`
	for _, tc := range []struct{ name, path, body string }{
		{"chat, case-variant model", "/v1/chat/completions",
			`{"model":"gpt-4o","Model":"gpt-4o-mini","messages":` + msg + `}`},
		{"chat, repeated model", "/v1/chat/completions",
			`{"model":"gpt-4o","messages":` + msg + `,"model":"gpt-4o-mini"}`},
		{"chat, case-variant content in a message", "/v1/chat/completions",
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a","Content":"b"}]}`},
		{"responses, escaped repeat", "/v1/responses",
			`{"model":"gpt-4o","mod\u0065l":"gpt-4o-mini","input":"SECRET"}`},
		{"embeddings, repeated input", "/v1/embeddings",
			`{"model":"text-embedding-3-small","input":"SECRET","input":"hi"}`},
		{"messages, case-variant tools", "/v1/messages",
			`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":` + msg + `,"tools":[{"name":"issue_refund","input_schema":{"type":"object"}}],"Tools":[]}`},
		{"count_tokens, case-variant messages", "/v1/messages/count_tokens",
			`{"model":"claude-sonnet-4-5","messages":` + msg + `,"Messages":[{"role":"user","content":"hi"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Post("https://"+env.addr+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "ambiguous request body") {
				t.Fatalf("got %d %s, want 400 ambiguous request body", resp.StatusCode, b)
			}
			recs := env.recordsFor(requestID(t, resp))
			// One refusal, made before policy was asked (no bundle revision).
			if len(recs) != 1 || recs[0]["status"] != float64(http.StatusBadRequest) ||
				get(recs[0], "decision", "allow") != false || get(recs[0], "decision", "revision") != "" ||
				!strings.Contains(fmt.Sprint(get(recs[0], "decision", "reasons")), "ambiguous request body") {
				t.Errorf("records = %v, want one refusal before any policy decision", recs)
			}
		})
	}
	// The same bodies without the ambiguity are served.
	resp, err := hc.Post("https://"+env.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":`+msg+`}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unambiguous body: %d", resp.StatusCode)
	}
	if n := len(env.fake.Requests()); n != 1 {
		t.Errorf("the provider got %d requests, want only the unambiguous one", n)
	}
}
