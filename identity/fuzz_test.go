package identity

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// oracle matches id against a template the slow, obvious way (a regexp built
// from the pattern) so that FuzzResolve can compare the two.
func oracle(t Template, id string) (tenant, name string, ok bool) {
	rest := strings.TrimPrefix(t.Pattern, "spiffe://")
	td, path, _ := strings.Cut(rest, "/")
	expr := "^" + regexp.QuoteMeta("spiffe://"+td)
	segs := strings.Split(path, "/")
	groups := map[string]int{}
	for _, s := range segs {
		expr += "/"
		if s == PlaceholderTenant || s == PlaceholderName {
			groups[s] = len(groups) + 1
			expr += "([^/]+)"
		} else {
			expr += regexp.QuoteMeta(s)
		}
	}
	m := regexp.MustCompile(expr + "$").FindStringSubmatch(id)
	if m == nil {
		return "", "", false
	}
	tenant = t.Tenant
	if g, ok := groups[PlaceholderTenant]; ok {
		tenant = m[g]
	}
	if g, ok := groups[PlaceholderName]; ok {
		name = m[g]
	} else {
		name = id[strings.LastIndexByte(id, '/')+1:]
	}
	return tenant, name, true
}

func FuzzResolve(f *testing.F) {
	for _, s := range []struct{ pattern, tenant, id string }{
		{"spiffe://example.org/tenant/{tenant}/agent/{name}", "", "spiffe://example.org/tenant/acme/agent/bot"},
		{"spiffe://example.org/human/{name}", "acme", "spiffe://example.org/human/alice"},
		{"spiffe://example.org/{name}/x/{tenant}", "", "spiffe://example.org/n/x/t"},
		{"spiffe://example.org/ns/{tenant}/sa/gw", "", "spiffe://example.org/ns/a/sa/gw"},
		{"spiffe://example.org/a/{tenant}", "", "spiffe://example.org/a/b/c"},
		{"spiffe://example.org/{tenant}/{tenant}", "", "spiffe://example.org/a/b"},
		{"spiffe://{td}/x/{tenant}", "", "spiffe://x/x/y"},
		{"spiffe://example.org/a-{name}", "t", "spiffe://example.org/a-b"},
		{"spiffe://example.org/", "t", "spiffe://example.org"},
	} {
		f.Add(s.pattern, s.tenant, s.id)
	}
	f.Fuzz(func(t *testing.T, pattern, tenant, idStr string) {
		tmpl := Template{Pattern: pattern, Kind: KindAgent, Tenant: tenant}
		r, err := NewResolver([]Template{tmpl})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "identity: template 0 ") {
				t.Fatalf("error %q does not name the template", err)
			}
			return
		}
		// A valid pattern, with its placeholders filled in, is a valid ID.
		if _, err := spiffeid.FromString(strings.NewReplacer(PlaceholderTenant, "t", PlaceholderName, "n").Replace(pattern)); err != nil {
			t.Fatalf("accepted pattern %q does not become a SPIFFE ID: %v", pattern, err)
		}
		id, err := spiffeid.FromString(idStr)
		if err != nil {
			return
		}
		p, err := r.Resolve(id)
		wantTenant, wantName, wantOK := oracle(tmpl, id.String())
		if (err == nil) != wantOK {
			t.Fatalf("Resolve(%s) with %q: err = %v, oracle match = %v", id, pattern, err, wantOK)
		}
		if err != nil {
			return
		}
		if p.ID != id || p.Kind != KindAgent || p.Tenant != wantTenant || p.Name != wantName {
			t.Fatalf("Resolve(%s) with %q = %+v, want tenant %q name %q", id, pattern, p, wantTenant, wantName)
		}
		if p.Tenant == "" || p.Name == "" {
			t.Fatalf("empty tenant or name: %+v", p)
		}
	})
}

func FuzzParseKind(f *testing.F) {
	for _, s := range []string{"human", "application", "agent", "Agent", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKind(s)
		if err != nil {
			if k != "" {
				t.Fatalf("ParseKind(%q) = %q with error", s, k)
			}
			return
		}
		if string(k) != s || !k.Valid() {
			t.Fatalf("ParseKind(%q) = %q", s, k)
		}
	})
}
