package spire

import (
	"errors"
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	repo, err := os.ReadFile("entries.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(repo)
	f.Add([]byte("trust_domain: example.org\nentries: []\n"))
	f.Add([]byte("trust_domain: example.org\nentries:\n  - {spiffe_id: spiffe://example.org/a, parent_id: spiffe://example.org/h, selectors: [\"unix:path:${PORTCULLIS_ROOT}/x\"], hint: h, dns_names: [\"*.a.b\"], federates_with: [p.q], portcullis: {kind: agent, tenant: t}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data, repoVars)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if file != nil {
				t.Fatal("got a file and an error")
			}
			return
		}
		// Whatever parses must be something SPIRE accepts.
		seen := map[string]bool{}
		for _, e := range file.Entries {
			if !e.SPIFFEID.MemberOf(file.TrustDomain) || !e.ParentID.MemberOf(file.TrustDomain) {
				t.Fatalf("entry %s outside trust domain %s", e.SPIFFEID, file.TrustDomain)
			}
			if len(e.Selectors) == 0 {
				t.Fatalf("entry %s without selectors", e.SPIFFEID)
			}
			if seen[e.EntryID()] {
				t.Fatalf("two entries share ID %s", e.EntryID())
			}
			seen[e.EntryID()] = true
			if p := toProto(&e); len(p.Hint) > maxHint || p.X509SvidTtl < 0 || p.JwtSvidTtl < 0 {
				t.Fatalf("entry %s: bad proto %v", e.SPIFFEID, p)
			}
		}
	})
}
