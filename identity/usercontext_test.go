package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestUserVerifierJWTSVID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString(DevTrustDomain)
	iss, err := LoadOrCreateDevJWTIssuer(t.TempDir(), td, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewResolver(DevTemplates())
	if err != nil {
		t.Fatal(err)
	}
	v := &UserVerifier{Audience: "portcullis", JWTBundles: jwtbundle.NewSet(iss.Bundle()), Resolver: res}
	alice, _ := iss.Issue(spiffeid.RequireFromString(DevHumanID), "portcullis", time.Minute)
	app, _ := iss.Issue(spiffeid.RequireFromString(DevAppID), "portcullis", time.Minute)
	otherAud, _ := iss.Issue(spiffeid.RequireFromString(DevHumanID), "elsewhere", time.Minute)
	expired, _ := iss.Issue(spiffeid.RequireFromString(DevHumanID), "portcullis", -time.Minute)
	stranger, _ := NewDevJWTIssuer(td, nil)
	forged, _ := stranger.Issue(spiffeid.RequireFromString(DevHumanID), "portcullis", time.Minute)

	got, err := v.Verify(alice)
	if err != nil {
		t.Fatal(err)
	}
	if want := (UserInfo{Subject: DevHumanID, Issuer: "spiffe://" + DevTrustDomain, Kind: "human"}); *got != want {
		t.Errorf("user = %+v, want %+v", *got, want)
	}
	for name, tok := range map[string]string{
		"not a human": app, "other audience": otherAud, "expired": expired, "unknown key": forged,
		"garbage": "x.y.z", "empty": "",
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrUserToken) {
			t.Errorf("%s: err = %v, want ErrUserToken", name, err)
		}
	}
	if _, err := (&UserVerifier{Audience: "portcullis"}).Verify(alice); !errors.Is(err, ErrUserToken) {
		t.Errorf("no bundles configured: err = %v", err)
	}
}

func TestUserVerifierOIDC(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, y := key.X.FillBytes(make([]byte, 32)), key.Y.FillBytes(make([]byte, 32))
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y),
	}}})
	is, err := NewOIDCIssuer("https://idp.example.com", "portcullis-client", jwks)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	v := &UserVerifier{Audience: "portcullis", Issuers: []*OIDCIssuer{is}, Clock: func() time.Time { return now }}
	sign := func(alg string, claims map[string]any) string {
		h, _ := json.Marshal(map[string]string{"alg": alg, "kid": "k1"})
		c, _ := json.Marshal(claims)
		s := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
		d := sha256.Sum256([]byte(s))
		r, ss, _ := ecdsa.Sign(rand.Reader, key, d[:])
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return s + "." + b64.EncodeToString(sig)
	}
	good := map[string]any{"iss": "https://idp.example.com", "sub": "alice@example.com", "aud": "portcullis-client", "exp": now.Unix() + 60}
	got, err := v.Verify(sign("ES256", good))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice@example.com" || got.Issuer != "https://idp.example.com" || got.Kind != "human" {
		t.Errorf("user = %+v", got)
	}
	with := func(k string, val any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = val
		return m
	}
	for name, tok := range map[string]string{
		"other issuer":    sign("ES256", with("iss", "https://evil")),
		"other audience":  sign("ES256", with("aud", []string{"x"})),
		"expired":         sign("ES256", with("exp", now.Unix()-1)),
		"not yet valid":   sign("ES256", with("nbf", now.Unix()+60)),
		"no subject":      sign("ES256", with("sub", "")),
		"alg mismatch":    sign("RS256", good),
		"tampered claims": sign("ES256", good)[:20] + "x" + sign("ES256", good)[21:],
	} {
		if _, err := v.Verify(tok); !errors.Is(err, ErrUserToken) {
			t.Errorf("%s: err = %v, want ErrUserToken", name, err)
		}
	}
}

func FuzzUserToken(f *testing.F) {
	td := spiffeid.RequireTrustDomainFromString(DevTrustDomain)
	iss, err := NewDevJWTIssuer(td, nil)
	if err != nil {
		f.Fatal(err)
	}
	res, _ := NewResolver(DevTemplates())
	v := &UserVerifier{Audience: "portcullis", JWTBundles: jwtbundle.NewSet(iss.Bundle()), Resolver: res}
	good, _ := iss.Issue(spiffeid.RequireFromString(DevHumanID), "portcullis", time.Hour)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("e30.e30.")
	f.Add(b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString([]byte(`{"sub":"x","iss":"https://i"}`)) + ".")
	f.Fuzz(func(t *testing.T, tok string) {
		u, err := v.Verify(tok)
		if err == nil && (tok != good || u.Subject != DevHumanID) {
			t.Fatalf("accepted a token the issuer did not sign: %q", tok)
		}
		if err != nil && !errors.Is(err, ErrUserToken) {
			t.Fatalf("error %v does not wrap ErrUserToken", err)
		}
	})
}
