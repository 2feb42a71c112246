package identity

import (
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// countVerifies makes kr count its Ed25519 signature checks.
func countVerifies(kr *GrantKeyring) *atomic.Int64 {
	n := new(atomic.Int64)
	kr.verifyHook = func(pub ed25519.PublicKey, msg, sig []byte) bool {
		n.Add(1)
		return ed25519.Verify(pub, msg, sig)
	}
	return n
}

// TestGrantVerifierSignRemembers pins that a token signed through the
// verifier is accepted on first use without an Ed25519 verification, and
// that every other token still pays one.
func TestGrantVerifierSignRemembers(t *testing.T) {
	kr := testKeyring(t)
	n := countVerifies(kr)
	v := NewGrantVerifier(kr, "portcullis", 0, 0)
	g := testGrant(t, 10*time.Minute)
	tok, err := v.Sign(g)
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := kr.Sign(g); plain != tok {
		t.Fatal("the verifier's token differs from the keyring's for the same claims")
	}
	got, err := v.Verify(tok, appID, grantNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != g.ID || got.Task != g.Task || got.User.Subject != "alice" || len(got.Scopes.Models) != 2 {
		t.Errorf("claims = %+v, want %+v", got, g)
	}
	if got, want := n.Load(), int64(0); got != want {
		t.Errorf("Ed25519 verifications on first use of a token signed here = %d, want %d", got, want)
	}

	// Signed by the same keyring but not through this verifier: one
	// verification on first use, none after.
	other := testGrant(t, 10*time.Minute)
	otherTok, _ := kr.Sign(other)
	for range 2 {
		if _, err := v.Verify(otherTok, appID, grantNow); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := n.Load(), int64(1); got != want {
		t.Errorf("Ed25519 verifications for a token signed elsewhere, used twice = %d, want %d", got, want)
	}

	// Another verifier on the same keyring was not told.
	if _, err := NewGrantVerifier(kr, "portcullis", 0, 0).Verify(tok, appID, grantNow); err != nil {
		t.Fatal(err)
	}
	if got, want := n.Load(), int64(2); got != want {
		t.Errorf("Ed25519 verifications by a second verifier = %d, want %d", got, want)
	}
}

// TestGrantVerifierSignKeepsSignedClaims pins that what is remembered is
// the token's claims, not the caller's Grant, which may change after
// signing.
func TestGrantVerifierSignKeepsSignedClaims(t *testing.T) {
	kr := testKeyring(t)
	v := NewGrantVerifier(kr, "portcullis", 0, 0)
	g := testGrant(t, 10*time.Minute)
	tok, err := v.Sign(g)
	if err != nil {
		t.Fatal(err)
	}
	g.Subject = agentID.String()
	g.Chain[0] = agentID.String()
	g.Scopes.Models[0] = "o3"
	g.Tenant = "globex"
	g.User.Subject = "mallory"
	got, err := v.Verify(tok, appID, grantNow)
	if err != nil {
		t.Fatalf("the signed presenter: %v", err)
	}
	if got.Subject != appID.String() || got.Chain[0] != appID.String() || got.Scopes.Models[0] != "gpt-4o-mini" || got.Tenant != "acme" || got.User.Subject != "alice" {
		t.Errorf("claims = %+v, want those signed", got)
	}
	if _, err := v.Verify(tok, agentID, grantNow); !errors.Is(err, ErrGrantBinding) {
		t.Errorf("the subject the caller wrote after signing: err = %v, want binding", err)
	}
}

// TestGrantVerifierSignRefusals pins that a remembered token is refused
// like any other when its use is wrong, its key is gone, or its bytes
// differ from those signed.
func TestGrantVerifierSignRefusals(t *testing.T) {
	future := func(g *Grant) { g.NotBefore = grantNow.Add(time.Minute).Unix() }
	otherAud := func(g *Grant) { g.Audience = "someone-else" }
	for _, tc := range []struct {
		name      string
		edit      func(*Grant)        // of the claims before signing
		token     func(string) string // what is presented, from what was signed
		rotate    int                 // rotations (keeping none) after signing
		presenter spiffeid.ID
		now       time.Time
		want      error
		verifies  int64 // Ed25519 verifications the use costs
	}{
		{name: "valid", presenter: appID, now: grantNow},
		{name: "expired", presenter: appID, now: grantNow.Add(10 * time.Minute), want: ErrGrantExpired},
		{name: "not yet valid", edit: future, presenter: appID, now: grantNow, want: ErrGrantNotYetValid},
		{name: "stolen, other SVID", presenter: agentID, now: grantNow, want: ErrGrantBinding},
		{name: "wrong audience", edit: otherAud, presenter: appID, now: grantNow, want: ErrGrantAudience, verifies: 1},
		{name: "key rotated out", rotate: 1, presenter: appID, now: grantNow, want: ErrGrantUnknownKey},
		{name: "forged signature", token: forge, presenter: appID, now: grantNow, want: ErrGrantSignature, verifies: 1},
		{name: "claims changed", token: func(tok string) string {
			return swapClaims(t, tok, func(m map[string]any) { m["tenant"] = "globex" })
		}, presenter: appID, now: grantNow, want: ErrGrantSignature, verifies: 1},
		{name: "subject changed", token: func(tok string) string {
			return swapClaims(t, tok, func(m map[string]any) { m["sub"] = agentID.String(); m["chain"] = []string{agentID.String()} })
		}, presenter: agentID, now: grantNow, want: ErrGrantSignature, verifies: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr := testKeyring(t)
			n := countVerifies(kr)
			v := NewGrantVerifier(kr, "portcullis", 0, 0)
			g := testGrant(t, 10*time.Minute)
			if tc.edit != nil {
				tc.edit(g)
			}
			tok, err := v.Sign(g)
			if err != nil {
				t.Fatal(err)
			}
			for range tc.rotate {
				next, _ := GenerateGrantKey()
				if err := kr.Rotate(next, 0); err != nil {
					t.Fatal(err)
				}
			}
			if tc.token != nil {
				tok = tc.token(tok)
			}
			for i := range 2 {
				_, err := v.Verify(tok, tc.presenter, tc.now)
				if !errors.Is(err, tc.want) {
					t.Errorf("use %d: err = %v, want %v", i+1, err, tc.want)
				}
			}
			if got, want := n.Load(), 2*tc.verifies; got != want {
				t.Errorf("Ed25519 verifications over two uses = %d, want %d", got, want)
			}
		})
	}
}

func TestGrantVerifierSignUncached(t *testing.T) {
	kr := testKeyring(t)
	n := countVerifies(kr)
	v := NewGrantVerifier(kr, "portcullis", 0, -1)
	tok, err := v.Sign(testGrant(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Fatal(err)
	}
	if got, want := n.Load(), int64(1); got != want {
		t.Errorf("Ed25519 verifications without a memory = %d, want %d", got, want)
	}
	if _, err := v.Sign(&Grant{ID: "g_1"}); err == nil {
		t.Error("signed claims with no task, tenant or subject")
	}
}
