package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPresentedGrant is the grant step of a model call: parse and
// verify the token (signature, audience, time), check the binding to the
// presenting SPIFFE ID, and look the grant and its task up in the
// revocation view. "first-use" pays the Ed25519 verification, as the first
// use of a token another replica signed does; "repeat" is every later use of
// the same token; "minted-here" is a token this gateway signed.
func BenchmarkPresentedGrant(b *testing.B) {
	id := spiffeid.RequireFromString(identity.DevAgentID)
	key, _ := identity.GenerateGrantKey()
	keys, _ := identity.NewGrantKeyring(key)
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "state.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	claims, _ := identity.Mint(identity.MintRequest{Subject: id, Audience: "aud", Task: "t", Tenant: "acme",
		Purpose: "support", Scopes: identity.Scopes{Models: []string{"gpt-4o-mini"}}, TTL: time.Hour}, time.Now())
	tok, _ := keys.Sign(claims)
	c := &caller{principal: identity.Principal{ID: id, Kind: identity.KindAgent, Tenant: "acme"}}
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{}}
	for _, bc := range []struct {
		name  string
		cache int
	}{{"first-use", -1}, {"repeat", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			gr, err := newGrants(&GrantOptions{Keys: keys, Store: st, Audience: "aud"})
			if err != nil {
				b.Fatal(err)
			}
			gr.verifier = identity.NewGrantVerifier(keys, "aud", 0, bc.cache)
			g := &Gateway{grants: gr, clock: time.Now}
			b.ReportAllocs()
			start, n := cpuNow(), 0
			for b.Loop() {
				if got, ref := g.presentedGrant(r, c); got == nil || ref != nil {
					b.Fatalf("refused: %+v", ref)
				}
				n++
			}
			b.ReportMetric(float64(cpuNow()-start)/float64(time.Microsecond)/float64(n), "cpu-µs/op")
		})
	}
	// "minted-here" presents, in turn, 1,024 distinct tokens this gateway
	// signed (as its mint and delegate endpoints do, through the verifier):
	// the first pass is each token's first use, which Sign made a cache hit;
	// later passes take the same path. identity's BenchmarkGrantVerify
	// minted-here keeps every op a first use.
	b.Run("minted-here", func(b *testing.B) {
		gr, err := newGrants(&GrantOptions{Keys: keys, Store: st, Audience: "aud"})
		if err != nil {
			b.Fatal(err)
		}
		reqs := make([]*http.Request, 1024)
		for i := range reqs {
			claims, _ := identity.Mint(identity.MintRequest{Subject: id, Audience: "aud", Task: "t", Tenant: "acme",
				Purpose: "support", Scopes: identity.Scopes{Models: []string{"gpt-4o-mini"}}, TTL: time.Hour}, time.Now())
			tok, err := gr.verifier.Sign(claims)
			if err != nil {
				b.Fatal(err)
			}
			reqs[i] = httptest.NewRequest("POST", "/v1/chat/completions", nil)
			reqs[i].Header.Set("Authorization", "Bearer "+tok)
			reqs[i].TLS = r.TLS
		}
		g := &Gateway{grants: gr, clock: time.Now}
		b.ReportAllocs()
		start, n := cpuNow(), 0
		for b.Loop() {
			if got, ref := g.presentedGrant(reqs[n%len(reqs)], c); got == nil || ref != nil {
				b.Fatalf("refused: %+v", ref)
			}
			n++
		}
		b.ReportMetric(float64(cpuNow()-start)/float64(time.Microsecond)/float64(n), "cpu-µs/op")
	})
}
