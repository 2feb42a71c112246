package policy

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// newEngine makes an engine for a test. Unless the test sets a Timeout, it
// gets a generous one: the machine running tests may be shared and busy.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// llm is an llm.invoke input for a principal of kind in tenant.
func llm(kind, tenant, model string) *Input {
	return &Input{
		Action: "llm.invoke",
		Principal: Principal{
			SPIFFEID:    "spiffe://example.org/" + tenant + "/" + kind + "/w",
			TrustDomain: "example.org",
			Kind:        kind,
			Tenant:      tenant,
			Name:        "w",
		},
		Request: &Request{API: "chat.completions", Model: model, Prompt: Prompt{Bytes: 120, Messages: 2}},
	}
}

func withMaxTokens(in *Input, n int) *Input { in.Request.MaxTokens = n; return in }

func withGrant(in *Input, g Grant) *Input { in.Grant = &g; return in }

// agentLLM is an agent's call under a grant for just that model: agents act
// only under a task grant (bundle/grants.rego).
func agentLLM(model string) *Input {
	return withGrant(llm("agent", "acme", model), Grant{ID: "g1", Task: "t1", Purpose: "support", Tenant: "acme",
		Scopes: Scopes{Models: []string{model}}})
}

func TestDecideDefaultBundle(t *testing.T) {
	e := newEngine(t, Options{CacheSize: -1})
	acmeGrant := Grant{ID: "g1", Task: "t1", Purpose: "support", Tenant: "acme",
		Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search", "calc"}, MaxTokens: 512}, ExpiresAt: 1}
	tests := []struct {
		name      string
		in        *Input
		allow     bool
		reasons   []string
		maxTokens int
		tools     []string
	}{
		{"human acme gpt-4o", llm("human", "acme", "gpt-4o"), true,
			[]string{"model gpt-4o is allowed for humans of tenant acme"}, 0, nil},
		{"human acme o3-mini", llm("human", "acme", "o3-mini"), true,
			[]string{"model o3-mini is allowed for humans of tenant acme"}, 0, nil},
		{"human globex gpt-4o", llm("human", "globex", "gpt-4o"), false,
			[]string{"model gpt-4o is not allowed for humans of tenant globex"}, 0, nil},
		{"application acme gpt-4o", llm("application", "acme", "gpt-4o"), true,
			[]string{"model gpt-4o is allowed for applications of tenant acme"}, 0, nil},
		{"application acme o3-mini (human only)", llm("application", "acme", "o3-mini"), false,
			[]string{"model o3-mini is not allowed for applications of tenant acme"}, 0, nil},
		{"application globex gpt-4o-mini", llm("application", "globex", "gpt-4o-mini"), true,
			[]string{"model gpt-4o-mini is allowed for applications of tenant globex"}, 0, nil},
		{"agent acme gpt-4o-mini capped", agentLLM("gpt-4o-mini"), true,
			[]string{"model gpt-4o-mini is allowed for agents of tenant acme under grant g1"}, 1024, []string{}},
		{"agent acme over cap still allowed", withMaxTokens(agentLLM("gpt-4o-mini"), 8000), true,
			[]string{"model gpt-4o-mini is allowed for agents of tenant acme under grant g1"}, 1024, []string{}},
		{"agent acme gpt-4o", agentLLM("gpt-4o"), false,
			[]string{"model gpt-4o is not allowed for agents of tenant acme"}, 0, nil},
		{"agent without grant", llm("agent", "acme", "gpt-4o-mini"), false,
			[]string{"agents need a task grant: present one as Authorization: Bearer <grant>"}, 0, nil},
		{"agent with grant in scope", withGrant(llm("agent", "acme", "gpt-4o-mini"), acmeGrant), true,
			[]string{"model gpt-4o-mini is allowed for agents of tenant acme under grant g1"}, 512, []string{"calc", "search"}},
		{"human with grant, model out of scope", withGrant(llm("human", "acme", "gpt-4o"), acmeGrant), false,
			[]string{"model gpt-4o is not in the scopes of grant g1"}, 0, nil},
		{"grant of another tenant", withGrant(llm("human", "globex", "gpt-4o-mini"), acmeGrant), false,
			[]string{"grant tenant acme does not match principal tenant globex"}, 0, nil},
		{"unknown tenant", llm("human", "initech", "gpt-4o"), false,
			[]string{`unknown tenant "initech"`}, 0, nil},
		{"unknown kind", llm("robot", "acme", "gpt-4o"), false,
			[]string{`unknown principal kind "robot"`}, 0, nil},
		{"unknown model", llm("human", "acme", "gpt-9"), false,
			[]string{`unknown model "gpt-9"`}, 0, nil},
		{"unknown action", &Input{Action: "llm.summon", Principal: llm("human", "acme", "").Principal}, false,
			[]string{`unknown action "llm.summon"`}, 0, nil},
		{"tool.call of a tool not listed (tools.rego)", &Input{Action: "tool.call", Principal: llm("human", "acme", "").Principal,
			Tool: &Tool{Name: "drop_tables", Server: "docs"}}, false,
			[]string{"no rule allows action tool.call", "tool docs/drop_tables is not allowed for humans of tenant acme"}, 0, nil},
		{"llm.invoke without request", &Input{Action: "llm.invoke", Principal: llm("human", "acme", "").Principal}, false,
			[]string{"llm.invoke without a request"}, 0, nil},
		{"empty input", &Input{}, false,
			[]string{`unknown action ""`, `unknown principal kind ""`, `unknown tenant ""`}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Decide(context.Background(), tt.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.Allow != tt.allow || !slices.Equal(got.Reasons, tt.reasons) {
				t.Errorf("got allow=%v reasons=%q, want allow=%v reasons=%q", got.Allow, got.Reasons, tt.allow, tt.reasons)
			}
			if got.Obligations.MaxTokens != tt.maxTokens {
				t.Errorf("got max_tokens %d, want %d", got.Obligations.MaxTokens, tt.maxTokens)
			}
			if (got.Obligations.Tools == nil) != (tt.tools == nil) || !slices.Equal(got.Obligations.Tools, tt.tools) {
				t.Errorf("got tools %#v, want %#v", got.Obligations.Tools, tt.tools)
			}
			if got.Revision != e.Revision() || got.CacheHit {
				t.Errorf("got revision %q cache_hit %v, want %q false", got.Revision, got.CacheHit, e.Revision())
			}
		})
	}
}

func TestRevisionIsContentHash(t *testing.T) {
	e := newEngine(t, Options{})
	b, err := loadBundle(DefaultBundle())
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Revision(); len(got) != 12 || got != b.revision {
		t.Errorf("got revision %q, want 12 hex digits %q", got, b.revision)
	}
	dir := copyBundle(t, DefaultBundle())
	writeFile(t, dir, ".manifest", `{"revision": "2024-06-01.3"}`)
	if got := newEngine(t, Options{BundleDir: dir}).Revision(); got != "2024-06-01.3" {
		t.Errorf("got revision %q with a manifest, want %q", got, "2024-06-01.3")
	}
}

// TestFailClosed: every way evaluation can go wrong denies with an error.
func TestFailClosed(t *testing.T) {
	tests := []struct {
		bundle  string // under testdata/
		timeout time.Duration
		want    error
		reason  string
	}{
		{"conflicting-decision", 0, ErrEval, "denied: evaluation failed"},
		{"builtin-error", 0, ErrEval, "denied: evaluation failed"},
		{"undefined-decision", 0, ErrUndefined, "denied: decision undefined"},
		{"wrong-type-decision", 0, ErrMalformed, "denied: malformed decision"},
		{"false-decision", 0, ErrMalformed, "denied: malformed decision"},
		{"misspelt-obligation", 0, ErrMalformed, "denied: malformed decision"},
		{"reasons-not-strings", 0, ErrMalformed, "denied: malformed decision"},
		{"slow-decision", 5 * time.Millisecond, ErrTimeout, "denied: evaluation timed out or was canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.bundle, func(t *testing.T) {
			e := newEngine(t, Options{BundleDir: "testdata/" + tt.bundle, Timeout: tt.timeout})
			start := time.Now()
			got, err := e.Decide(context.Background(), llm("human", "acme", "gpt-4o"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if got.Allow || !slices.Equal(got.Reasons, []string{tt.reason}) {
				t.Errorf("got allow=%v reasons=%q, want a deny with %q", got.Allow, got.Reasons, tt.reason)
			}
			if tt.timeout > 0 && time.Since(start) > time.Second {
				t.Errorf("timeout of %v took %v", tt.timeout, time.Since(start))
			}
			// Errors are not cached: the next call evaluates again.
			if got, _ := e.Decide(context.Background(), llm("human", "acme", "gpt-4o")); got.CacheHit {
				t.Error("a failed decision was cached")
			}
		})
	}
}

func TestFailClosedInputs(t *testing.T) {
	e := newEngine(t, Options{})
	got, err := e.Decide(context.Background(), nil)
	if !errors.Is(err, ErrInput) || got.Allow {
		t.Errorf("nil input: got allow=%v err=%v, want deny with ErrInput", got.Allow, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err = e.Decide(ctx, llm("human", "acme", "gpt-4o"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) || got.Allow {
		t.Errorf("canceled context: got allow=%v err=%v, want deny with ErrTimeout", got.Allow, err)
	}
}

func TestNewRejectsBadBundles(t *testing.T) {
	for _, dir := range []string{"syntax-error", "no-decision-rule", "bad-data-json", "compile-error", "missing-dir"} {
		t.Run(dir, func(t *testing.T) {
			if _, err := New(context.Background(), Options{BundleDir: "testdata/" + dir}); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}
