package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var (
	grantNow   = time.Unix(1_700_000_000, 0)
	appID      = spiffeid.RequireFromString("spiffe://example.org/tenant/acme/app/helpdesk")
	agentID    = spiffeid.RequireFromString("spiffe://example.org/tenant/acme/agent/bot")
	otherAgent = spiffeid.RequireFromString("spiffe://example.org/tenant/acme/agent/other")
)

func testKeyring(t testing.TB) *GrantKeyring {
	t.Helper()
	k, err := GenerateGrantKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewGrantKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func testGrant(t testing.TB, ttl time.Duration) *Grant {
	t.Helper()
	g, err := Mint(MintRequest{
		Subject: appID, Audience: "portcullis", Task: "ticket-1", Tenant: "acme", Purpose: "support",
		Scopes: Scopes{Models: []string{"gpt-4o-mini", "gpt-4o"}, Tools: []string{"search", "calc"}, MaxTokens: 1000},
		TTL:    ttl, User: &UserInfo{Subject: "alice", Issuer: "https://idp", Kind: "human"},
	}, grantNow)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGrantVerify(t *testing.T) {
	kr := testKeyring(t)
	g := testGrant(t, 10*time.Minute)
	tok, err := kr.Sign(g)
	if err != nil {
		t.Fatal(err)
	}
	other := testKeyring(t)
	otherTok, _ := other.Sign(g)
	wrongAud := *g
	wrongAud.Audience = "someone-else"
	wrongAudTok, _ := kr.Sign(&wrongAud)
	future := *g
	future.NotBefore = grantNow.Add(time.Minute).Unix()
	futureTok, _ := kr.Sign(&future)

	for _, tc := range []struct {
		name      string
		token     string
		presenter spiffeid.ID
		now       time.Time
		want      error
	}{
		{"valid", tok, appID, grantNow.Add(time.Minute), nil},
		{"stolen, other SVID", tok, agentID, grantNow, ErrGrantBinding},
		{"expired", tok, appID, grantNow.Add(10 * time.Minute), ErrGrantExpired},
		{"not yet valid", futureTok, appID, grantNow, ErrGrantNotYetValid},
		{"wrong audience", wrongAudTok, appID, grantNow, ErrGrantAudience},
		{"signed by another gateway", otherTok, appID, grantNow, ErrGrantUnknownKey},
		{"forged signature", forge(tok), appID, grantNow, ErrGrantSignature},
		{"alg none", withHeader(t, tok, `{"alg":"none","kid":"`+kr.CurrentKeyID()+`","typ":"portcullis-grant+jwt"}`, ""), appID, grantNow, ErrGrantAlgorithm},
		{"HS256 keyed with the public key", hmacWithPublicKey(t, kr, tok), appID, grantNow, ErrGrantAlgorithm},
		{"ES256", es256(t, tok, kr.CurrentKeyID()), appID, grantNow, ErrGrantAlgorithm},
		{"truncated", tok[:len(tok)-10], appID, grantNow, ErrGrantMalformed},
		{"two parts", tok[:strings.LastIndexByte(tok, '.')], appID, grantNow, ErrGrantMalformed},
		{"claims changed", swapClaims(t, tok, func(m map[string]any) { m["tenant"] = "globex" }), appID, grantNow, ErrGrantSignature},
		{"unknown claim", swapClaims(t, tok, func(m map[string]any) { m["admin"] = true }), appID, grantNow, ErrGrantMalformed},
		{"empty", "", appID, grantNow, ErrGrantMalformed},
		{"huge", strings.Repeat("a", MaxGrantTokenBytes+1), appID, grantNow, ErrGrantMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewGrantVerifier(kr, "portcullis", 0, 0)
			got, err := v.Verify(tc.token, tc.presenter, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (got.ID != g.ID || got.Task != "ticket-1" || got.User.Subject != "alice") {
				t.Errorf("claims = %+v, want %+v", got, g)
			}
			// A second use answers the same, from memory or not.
			if _, err2 := v.Verify(tc.token, tc.presenter, tc.now); !errors.Is(err2, tc.want) {
				t.Errorf("second verify err = %v, want %v", err2, tc.want)
			}
		})
	}
}

func TestGrantVerifyCachedStillChecksUse(t *testing.T) {
	kr := testKeyring(t)
	tok, _ := kr.Sign(testGrant(t, time.Minute))
	v := NewGrantVerifier(kr, "portcullis", 0, 0)
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, agentID, grantNow); !errors.Is(err, ErrGrantBinding) {
		t.Errorf("cached token from another SVID: err = %v, want binding", err)
	}
	if _, err := v.Verify(tok, appID, grantNow.Add(time.Hour)); !errors.Is(err, ErrGrantExpired) {
		t.Errorf("cached token later: err = %v, want expired", err)
	}
}

func TestGrantKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "grant-keys.pem")
	kr, err := LoadOrCreateGrantKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	oldKid := kr.CurrentKeyID()
	tok, _ := kr.Sign(testGrant(t, time.Minute))
	v := NewGrantVerifier(kr, "portcullis", 0, 0)
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Fatal(err)
	}
	next, _ := GenerateGrantKey()
	if err := kr.Rotate(next, 1); err != nil {
		t.Fatal(err)
	}
	if kr.CurrentKeyID() == oldKid {
		t.Fatal("rotation kept the old signing key")
	}
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Errorf("token of the previous key after rotation: %v", err)
	}
	var jwks struct{ Keys []JWK }
	if err := json.Unmarshal(kr.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 2 || jwks.Keys[0].Kid != next.ID || jwks.Keys[1].Kid != oldKid || jwks.Keys[0].Crv != "Ed25519" {
		t.Errorf("JWKS = %+v, want current %s then previous %s", jwks.Keys, next.ID, oldKid)
	}
	if err := kr.Save(path); err != nil {
		t.Fatal(err)
	}
	re, err := LoadOrCreateGrantKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if re.CurrentKeyID() != next.ID || string(re.JWKS()) != string(kr.JWKS()) {
		t.Error("reloaded keyring differs")
	}
	// Dropping the old key refuses its tokens, even ones remembered.
	third, _ := GenerateGrantKey()
	if err := kr.Rotate(third, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, appID, grantNow); !errors.Is(err, ErrGrantUnknownKey) {
		t.Errorf("token of a dropped key: err = %v, want unknown key", err)
	}
}

func TestDelegate(t *testing.T) {
	parent := testGrant(t, 10*time.Minute)
	acmeAgent := Principal{ID: agentID, Kind: KindAgent, Tenant: "acme", Name: "bot"}
	for _, tc := range []struct {
		name string
		req  DelegateRequest
		want error
	}{
		{"narrower", DelegateRequest{To: acmeAgent, Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 200}, TTL: time.Minute, MaxDepth: 2}, nil},
		{"same scopes, inherited budget and expiry", DelegateRequest{To: acmeAgent, Scopes: Scopes{Models: []string{"gpt-4o"}}, MaxDepth: 1}, nil},
		{"more tools", DelegateRequest{To: acmeAgent, Scopes: Scopes{Tools: []string{"search", "shell"}}, MaxDepth: 2}, ErrGrantWiden},
		{"other model", DelegateRequest{To: acmeAgent, Scopes: Scopes{Models: []string{"o3-mini"}}, MaxDepth: 2}, ErrGrantWiden},
		{"bigger budget", DelegateRequest{To: acmeAgent, Scopes: Scopes{MaxTokens: 5000}, MaxDepth: 2}, ErrGrantWiden},
		{"later expiry", DelegateRequest{To: acmeAgent, TTL: time.Hour, MaxDepth: 2}, ErrGrantWiden},
		{"other tenant", DelegateRequest{To: Principal{ID: otherAgent, Kind: KindAgent, Tenant: "globex"}, MaxDepth: 2}, ErrGrantWiden},
		{"back to itself", DelegateRequest{To: Principal{ID: appID, Tenant: "acme"}, MaxDepth: 2}, ErrGrantWiden},
		{"depth", DelegateRequest{To: acmeAgent, MaxDepth: 0}, ErrGrantDepth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Delegate(parent, tc.req, grantNow)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if got.Parent != parent.ID || got.Task != parent.Task || got.Purpose != parent.Purpose || got.User != parent.User {
				t.Errorf("child %+v does not keep the parent's task, purpose, user", got)
			}
			if want := []string{appID.String(), agentID.String()}; strings.Join(got.Chain, " ") != strings.Join(want, " ") || got.Depth() != 1 {
				t.Errorf("chain = %v, want %v", got.Chain, want)
			}
			if got.Expiry > parent.Expiry || got.Scopes.MaxTokens == 0 {
				t.Errorf("child expiry %d (parent %d), budget %d", got.Expiry, parent.Expiry, got.Scopes.MaxTokens)
			}
		})
	}
	child, _ := Delegate(parent, DelegateRequest{To: acmeAgent, MaxDepth: 1}, grantNow)
	if _, err := Delegate(child, DelegateRequest{To: Principal{ID: otherAgent, Tenant: "acme"}, MaxDepth: 1}, grantNow); !errors.Is(err, ErrGrantDepth) {
		t.Errorf("second delegation at max depth 1: err = %v, want depth", err)
	}
}

func TestScopesCovers(t *testing.T) {
	s := Scopes{Models: []string{"a", "b"}, Tools: []string{"x"}, MaxTokens: 100}
	for _, tc := range []struct {
		t    Scopes
		want bool
	}{
		{Scopes{Models: []string{"a"}, MaxTokens: 100}, true},
		{Scopes{Models: []string{"a"}, MaxTokens: 0}, false},
		{Scopes{Models: []string{"c"}, MaxTokens: 1}, false},
		{Scopes{Tools: []string{"x", "y"}, MaxTokens: 1}, false},
		{Scopes{MaxTokens: 101}, false},
	} {
		if got := s.Covers(tc.t); got != tc.want {
			t.Errorf("%v covers %v = %v, want %v", s, tc.t, got, tc.want)
		}
	}
	if !(Scopes{}).Covers(Scopes{MaxTokens: 5}) {
		t.Error("unbudgeted empty scopes should cover a budget")
	}
}

// forge flips a bit of the signature.
func forge(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[i+1:])
	sig[0] ^= 1
	return tok[:i+1] + b64.EncodeToString(sig)
}

func withHeader(t *testing.T, tok, header, sig string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	return b64.EncodeToString([]byte(header)) + "." + parts[1] + "." + sig
}

func hmacWithPublicKey(t *testing.T, kr *GrantKeyring, tok string) string {
	parts := strings.Split(tok, ".")
	h := b64.EncodeToString([]byte(`{"alg":"HS256","kid":"` + kr.CurrentKeyID() + `","typ":"portcullis-grant+jwt"}`))
	mac := hmac.New(sha256.New, kr.keys.Load().current.Public)
	mac.Write([]byte(h + "." + parts[1]))
	return h + "." + parts[1] + "." + b64.EncodeToString(mac.Sum(nil))
}

func es256(t *testing.T, tok, kid string) string {
	parts := strings.Split(tok, ".")
	h := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"` + kid + `","typ":"portcullis-grant+jwt"}`))
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256([]byte(h + "." + parts[1]))
	r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return h + "." + parts[1] + "." + b64.EncodeToString(sig)
}

func swapClaims(t *testing.T, tok string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, _ := b64.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	nb, _ := json.Marshal(m)
	return parts[0] + "." + b64.EncodeToString(nb) + "." + parts[2]
}

func FuzzParseGrant(f *testing.F) {
	kr := testKeyring(f)
	tok, _ := kr.Sign(testGrant(f, time.Minute))
	f.Add(tok)
	f.Add(tok[:40])
	f.Add("a.b.c")
	f.Add("..")
	f.Add(b64.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.")
	v := NewGrantVerifier(kr, "portcullis", 0, -1)
	f.Fuzz(func(t *testing.T, s string) {
		g, err := v.Verify(s, appID, grantNow)
		if err == nil {
			// Anything accepted must be exactly a token we signed.
			if s != tok || g.Subject != appID.String() {
				t.Fatalf("accepted a token we did not sign: %q", s)
			}
		}
		if p, err := parseGrant(s); err == nil {
			if p.claims.validClaims() != nil || len(p.sig) != 64 {
				t.Fatalf("parseGrant accepted invalid claims: %q", s)
			}
		}
	})
}

func BenchmarkGrantVerify(b *testing.B) {
	kr := testKeyring(b)
	tok, _ := kr.Sign(testGrant(b, time.Hour))
	b.Run("signature", func(b *testing.B) {
		v := NewGrantVerifier(kr, "portcullis", 0, -1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok, appID, grantNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		v := NewGrantVerifier(kr, "portcullis", 0, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok, appID, grantNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("minted-here", benchmarkMintedHere)
}

// benchmarkMintedHere is the first use of a token this verifier signed:
// each op presents a token the verifier has not seen presented before. Its
// memory is laid anew, as Sign left it, every 1,024 ops (with the timer
// stopped), so no op is a repeat.
func benchmarkMintedHere(b *testing.B) {
	kr := testKeyring(b)
	n := countVerifies(kr)
	signer := NewGrantVerifier(kr, "portcullis", 0, 0)
	toks := make([]string, 1024)
	for i := range toks {
		tok, err := signer.Sign(testGrant(b, time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	seeded := maps.Clone(signer.cache.m)
	var v *GrantVerifier
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(toks) == 0 {
			b.StopTimer()
			v = NewGrantVerifier(kr, "portcullis", 0, 0)
			v.cache.m = maps.Clone(seeded)
			b.StartTimer()
		}
		if _, err := v.Verify(toks[i%len(toks)], appID, grantNow); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if n.Load() != 0 {
		b.Fatalf("%d Ed25519 verifications, want none", n.Load())
	}
}
