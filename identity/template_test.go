package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var testTemplates = []Template{
	{Pattern: "spiffe://example.org/tenant/{tenant}/app/{name}", Kind: KindApplication},
	{Pattern: "spiffe://example.org/tenant/{tenant}/agent/{name}", Kind: KindAgent},
	{Pattern: "spiffe://example.org/human/{name}", Kind: KindHuman, Tenant: "internal"},
	{Pattern: "spiffe://example.org/ns/{tenant}/sa/gateway", Kind: KindApplication},
	{Pattern: "spiffe://example.org/{name}/of/{tenant}", Kind: KindAgent},
	{Pattern: "spiffe://partner.example/batch", Kind: KindApplication, Tenant: "partner"},
	{Pattern: "spiffe://partner.example/tenant/{tenant}/agent/{name}", Kind: KindAgent},
}

func TestResolve(t *testing.T) {
	r, err := NewResolver(testTemplates)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want Principal // ID is filled in from id
		err  bool
	}{
		{id: "spiffe://example.org/tenant/acme/app/billing", want: Principal{Kind: KindApplication, Tenant: "acme", Name: "billing"}},
		{id: "spiffe://example.org/tenant/acme/agent/support-bot", want: Principal{Kind: KindAgent, Tenant: "acme", Name: "support-bot"}},
		{id: "spiffe://example.org/human/alice", want: Principal{Kind: KindHuman, Tenant: "internal", Name: "alice"}},
		// Name defaults to the last segment, even a literal one.
		{id: "spiffe://example.org/ns/payments/sa/gateway", want: Principal{Kind: KindApplication, Tenant: "payments", Name: "gateway"}},
		// Placeholders in any order.
		{id: "spiffe://example.org/bot/of/acme", want: Principal{Kind: KindAgent, Tenant: "acme", Name: "bot"}},
		{id: "spiffe://partner.example/batch", want: Principal{Kind: KindApplication, Tenant: "partner", Name: "batch"}},
		{id: "spiffe://partner.example/tenant/p1/agent/x", want: Principal{Kind: KindAgent, Tenant: "p1", Name: "x"}},

		// Wrong trust domain for an otherwise matching path.
		{id: "spiffe://evil.example/tenant/acme/app/billing", err: true},
		{id: "spiffe://example.org.evil/human/alice", err: true},
		{id: "spiffe://partner.example/human/alice", err: true},
		// Missing and extra segments.
		{id: "spiffe://example.org/tenant/acme/app", err: true},
		{id: "spiffe://example.org/tenant/acme/app/billing/extra", err: true},
		{id: "spiffe://example.org/human", err: true},
		{id: "spiffe://example.org/human/alice/admin", err: true},
		{id: "spiffe://example.org/tenant/acme", err: true},
		{id: "spiffe://example.org", err: true},
		{id: "spiffe://example.org" + strings.Repeat("/a", MaxTemplateSegments+1), err: true},
		// Literal mismatch, including case and prefixes.
		{id: "spiffe://example.org/tenant/acme/robot/billing", err: true},
		{id: "spiffe://example.org/Tenant/acme/app/billing", err: true},
		{id: "spiffe://example.org/tenants/acme/app/billing", err: true},
		{id: "spiffe://example.org/ns/payments/sa/gateway2", err: true},
		{id: "spiffe://partner.example/batch2", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			id := spiffeid.RequireFromString(tt.id)
			got, err := r.Resolve(id)
			if tt.err {
				if !errors.Is(err, ErrUnknownID) {
					t.Fatalf("Resolve(%s) = %+v, %v; want error wrapping ErrUnknownID", tt.id, got, err)
				}
				if !strings.Contains(err.Error(), tt.id) {
					t.Errorf("error %q does not name the ID", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%s): %v", tt.id, err)
			}
			want := tt.want
			want.ID = id
			if got != want {
				t.Errorf("Resolve(%s) = %+v, want %+v", tt.id, got, want)
			}
			if got.TrustDomain() != id.TrustDomain() {
				t.Errorf("TrustDomain() = %v, want %v", got.TrustDomain(), id.TrustDomain())
			}
		})
	}
}

func TestResolveLongest(t *testing.T) {
	long := "spiffe://example.org/{tenant}" + strings.Repeat("/x", MaxTemplateSegments-2) + "/{name}"
	r, err := NewResolver([]Template{{Pattern: long, Kind: KindAgent}})
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://example.org/t" + strings.Repeat("/x", MaxTemplateSegments-2) + "/n")
	if p, err := r.Resolve(id); err != nil || p.Tenant != "t" || p.Name != "n" {
		t.Errorf("Resolve(%s) = %+v, %v", id, p, err)
	}
}

func TestResolveFirstMatchWins(t *testing.T) {
	r, err := NewResolver([]Template{
		{Pattern: "spiffe://example.org/tenant/{tenant}/agent/root", Kind: KindHuman},
		{Pattern: "spiffe://example.org/tenant/{tenant}/agent/{name}", Kind: KindAgent},
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]Kind{
		"spiffe://example.org/tenant/a/agent/root": KindHuman,
		"spiffe://example.org/tenant/a/agent/bot":  KindAgent,
	} {
		p, err := r.Resolve(spiffeid.RequireFromString(id))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != want {
			t.Errorf("Resolve(%s).Kind = %s, want %s", id, p.Kind, want)
		}
	}
}

func TestResolveZeroAndNil(t *testing.T) {
	r, err := NewResolver(testTemplates)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(spiffeid.ID{}); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Resolve(zero ID) error = %v, want ErrUnknownID", err)
	}
	var nilR *Resolver
	if _, err := nilR.Resolve(spiffeid.RequireFromString("spiffe://example.org/human/alice")); !errors.Is(err, ErrUnknownID) {
		t.Errorf("nil Resolver error = %v, want ErrUnknownID", err)
	}
	empty, err := NewResolver(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Resolve(spiffeid.RequireFromString("spiffe://example.org/human/alice")); !errors.Is(err, ErrUnknownID) {
		t.Errorf("empty Resolver error = %v, want ErrUnknownID", err)
	}
}

func TestNewResolverInvalid(t *testing.T) {
	good := Template{Pattern: "spiffe://example.org/tenant/{tenant}/app/{name}", Kind: KindApplication}
	tests := []struct {
		name string
		t    Template
		want string // substring of the error
	}{
		{"no scheme", Template{Pattern: "example.org/tenant/{tenant}/app/{name}", Kind: KindAgent}, `must start with "spiffe://"`},
		{"wrong scheme", Template{Pattern: "https://example.org/tenant/{tenant}/x", Kind: KindAgent}, `must start with "spiffe://"`},
		{"empty", Template{Pattern: "", Kind: KindAgent}, `must start with`},
		{"bad trust domain", Template{Pattern: "spiffe://Example.org/tenant/{tenant}/x", Kind: KindAgent}, `trust domain "Example.org"`},
		{"empty trust domain", Template{Pattern: "spiffe:///tenant/{tenant}/x", Kind: KindAgent}, `trust domain ""`},
		{"placeholder in trust domain", Template{Pattern: "spiffe://{td}/tenant/{tenant}/x", Kind: KindAgent}, "not allowed in the trust domain"},
		{"no path", Template{Pattern: "spiffe://example.org", Kind: KindAgent, Tenant: "t"}, "no path"},
		{"root path", Template{Pattern: "spiffe://example.org/", Kind: KindAgent, Tenant: "t"}, "no path"},
		{"trailing slash", Template{Pattern: "spiffe://example.org/tenant/{tenant}/", Kind: KindAgent}, `segment ""`},
		{"empty segment", Template{Pattern: "spiffe://example.org/tenant//{tenant}", Kind: KindAgent}, `segment ""`},
		{"dot segment", Template{Pattern: "spiffe://example.org/../{tenant}", Kind: KindAgent}, `segment ".."`},
		{"bad char", Template{Pattern: "spiffe://example.org/a b/{tenant}", Kind: KindAgent}, `segment "a b"`},
		{"unknown placeholder", Template{Pattern: "spiffe://example.org/{team}/{name}", Kind: KindAgent, Tenant: "t"}, `malformed placeholder in segment "{team}"`},
		{"partial placeholder", Template{Pattern: "spiffe://example.org/{tenant}/agent-{name}", Kind: KindAgent}, `"agent-{name}"`},
		{"unclosed placeholder", Template{Pattern: "spiffe://example.org/{tenant}/{name", Kind: KindAgent}, `"{name"`},
		{"case placeholder", Template{Pattern: "spiffe://example.org/{Tenant}/x", Kind: KindAgent}, `"{Tenant}"`},
		{"duplicate tenant", Template{Pattern: "spiffe://example.org/{tenant}/{tenant}", Kind: KindAgent}, "{tenant} appears more than once"},
		{"duplicate name", Template{Pattern: "spiffe://example.org/{tenant}/{name}/{name}", Kind: KindAgent}, "{name} appears more than once"},
		{"no kind", Template{Pattern: "spiffe://example.org/{tenant}/{name}"}, `unknown kind ""`},
		{"bad kind", Template{Pattern: "spiffe://example.org/{tenant}/{name}", Kind: "robot"}, `unknown kind "robot"`},
		{"no tenant", Template{Pattern: "spiffe://example.org/human/{name}", Kind: KindHuman}, "no tenant"},
		{"tenant twice", Template{Pattern: "spiffe://example.org/{tenant}/{name}", Kind: KindHuman, Tenant: "acme"}, `fixed tenant "acme" conflicts`},
		{"too many segments", Template{Pattern: "spiffe://example.org/{tenant}" + strings.Repeat("/a", MaxTemplateSegments), Kind: KindAgent}, "more than 16"},
		{"bad fixed tenant", Template{Pattern: "spiffe://example.org/human/{name}", Kind: KindHuman, Tenant: "ac/me"}, `fixed tenant "ac/me"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewResolver([]Template{good, tt.t})
			if err == nil {
				t.Fatalf("NewResolver(%+v) succeeded, want error containing %q", tt.t, tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "identity: template 1 ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to name template 1 and contain %q", msg, tt.want)
			}
		})
	}
}

func TestNewResolverShadowed(t *testing.T) {
	_, err := NewResolver([]Template{
		{Pattern: "spiffe://example.org/tenant/{tenant}/agent/{name}", Kind: KindAgent},
		{Pattern: "spiffe://example.org/other/{name}", Kind: KindHuman, Tenant: "x"},
		{Pattern: "spiffe://example.org/tenant/{name}/agent/{tenant}", Kind: KindHuman},
	})
	if err == nil || !strings.Contains(err.Error(), "template 2") || !strings.Contains(err.Error(), "template 0") {
		t.Fatalf("error = %v, want template 2 reported as shadowed by template 0", err)
	}
	// The same path in different trust domains is not a duplicate.
	if _, err := NewResolver([]Template{
		{Pattern: "spiffe://a.example/{tenant}/{name}", Kind: KindAgent},
		{Pattern: "spiffe://b.example/{tenant}/{name}", Kind: KindAgent},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestParseKind(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Kind
		err  bool
	}{
		{"human", KindHuman, false},
		{"application", KindApplication, false},
		{"agent", KindAgent, false},
		{"Agent", "", true},
		{"app", "", true},
		{"", "", true},
		{" agent", "", true},
	} {
		got, err := ParseKind(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestDevTemplates(t *testing.T) {
	r, err := NewResolver(DevTemplates())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want Principal
	}{
		{DevAppID, Principal{Kind: KindApplication, Tenant: "acme", Name: "demo-app"}},
		{DevAgentID, Principal{Kind: KindAgent, Tenant: "acme", Name: "demo-agent"}},
		{DevHumanID, Principal{Kind: KindHuman, Tenant: "acme", Name: "alice"}},
		{"spiffe://dev.portcullis.local/tenant/globex/human/bob", Principal{Kind: KindHuman, Tenant: "globex", Name: "bob"}},
	} {
		id := spiffeid.RequireFromString(tt.id)
		got, err := r.Resolve(id)
		tt.want.ID = id
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%s) = %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
	if _, err := r.Resolve(spiffeid.RequireFromString(DevGatewayID)); !errors.Is(err, ErrUnknownID) {
		t.Errorf("the gateway's own ID resolved: %v", err)
	}
}

func TestResolveAllocs(t *testing.T) {
	r, err := NewResolver(testTemplates)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://partner.example/tenant/p1/agent/x")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Resolve(id); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Resolve allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkResolve(b *testing.B) {
	var tmpls []Template
	for _, td := range []string{"a.example", "b.example", "example.org"} {
		for _, p := range []string{"/tenant/{tenant}/app/{name}", "/tenant/{tenant}/agent/{name}", "/tenant/{tenant}/human/{name}"} {
			tmpls = append(tmpls, Template{Pattern: "spiffe://" + td + p, Kind: KindAgent})
		}
	}
	r, err := NewResolver(tmpls)
	if err != nil {
		b.Fatal(err)
	}
	hit := spiffeid.RequireFromString("spiffe://example.org/tenant/acme/human/alice") // third template of its TD
	miss := spiffeid.RequireFromString("spiffe://example.org/tenant/acme/robot/alice")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(hit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(miss); err == nil {
				b.Fatal("resolved")
			}
		}
	})
}
