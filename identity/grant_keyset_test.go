package identity

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"
)

// mapSource is a GrantKeySource over a map the test edits.
type mapSource struct {
	mu   sync.Mutex
	keys map[string]ed25519.PublicKey
}

func (m *mapSource) GrantPublicKey(kid string) (ed25519.PublicKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[kid]
	return k, ok
}

func (m *mapSource) GrantPublicKeys() map[string]ed25519.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.keys)
}

func (m *mapSource) set(kid string, pub ed25519.PublicKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pub == nil {
		delete(m.keys, kid)
		return
	}
	m.keys[kid] = pub
}

// A grant signed by replica A's own key verifies on replica B once A's key
// is among B's peers, and stops verifying (even from B's memory of it) when
// the key leaves the set.
func TestGrantKeyringPeers(t *testing.T) {
	a, b := testKeyring(t), testKeyring(t)
	tok, err := a.Sign(testGrant(t, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	v := NewGrantVerifier(b, "portcullis", 0, 0)
	if _, err := v.Verify(tok, appID, grantNow); !errors.Is(err, ErrGrantUnknownKey) {
		t.Fatalf("before A's key is shared: err = %v, want unknown key", err)
	}
	src := &mapSource{keys: map[string]ed25519.PublicKey{}}
	b.SetPeers(src)
	aKey := a.PublicKeys()[0]
	src.set(aKey.ID, aKey.Public)
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Fatalf("with A's key shared: %v", err)
	}
	if _, err := v.Verify(tok, appID, grantNow); err != nil {
		t.Fatalf("second use (from memory): %v", err)
	}
	src.set(aKey.ID, nil)
	if _, err := v.Verify(tok, appID, grantNow); !errors.Is(err, ErrGrantUnknownKey) {
		t.Errorf("after A's key left the set: err = %v, want unknown key", err)
	}
}

// A source cannot pass a key off under another key's kid.
func TestGrantKeyringPeerWrongKid(t *testing.T) {
	a, b, c := testKeyring(t), testKeyring(t), testKeyring(t)
	tok, _ := c.Sign(testGrant(t, 10*time.Minute))
	src := &mapSource{keys: map[string]ed25519.PublicKey{
		c.CurrentKeyID(): a.PublicKeys()[0].Public, // c's kid, a's key
	}}
	b.SetPeers(src)
	v := NewGrantVerifier(b, "portcullis", 0, 0)
	if _, err := v.Verify(tok, appID, grantNow); !errors.Is(err, ErrGrantUnknownKey) {
		t.Errorf("key under a wrong kid: err = %v, want unknown key", err)
	}
	if n := len(jwksKids(t, b)); n != 1 {
		t.Errorf("JWKS lists %d keys, want only b's own", n)
	}
}

func TestGrantKeyringJWKSUnion(t *testing.T) {
	a, b := testKeyring(t), testKeyring(t)
	src := &mapSource{keys: map[string]ed25519.PublicKey{}}
	for _, k := range append(a.PublicKeys(), b.PublicKeys()...) { // b's own key too
		src.set(k.ID, k.Public)
	}
	b.SetPeers(src)
	got := jwksKids(t, b)
	want := []string{b.CurrentKeyID(), a.CurrentKeyID()}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got JWKS kids %v, want %v (own first, then peers, no duplicate)", got, want)
	}
}

func jwksKids(t *testing.T, k *GrantKeyring) []string {
	t.Helper()
	var doc struct{ Keys []JWK }
	if err := json.Unmarshal(k.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range doc.Keys {
		out = append(out, j.Kid)
	}
	return out
}
