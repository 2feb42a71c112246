package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

func testKeyRecord(t *testing.T, id string, notAfter time.Time) GrantKeyRecord {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return GrantKeyRecord{ID: id, Public: pub, NotAfter: notAfter}
}

// testGrantKeysShared publishes a key through one replica and finds it
// through the other, and in the union of the set.
func testGrantKeysShared(t *testing.T, be backend) {
	ctx := context.Background()
	a, b, clk := be.open(t, suiteOptions{})
	ka := testKeyRecord(t, "kid-a", clk.Now().Add(time.Hour))
	kb := testKeyRecord(t, "kid-b", clk.Now().Add(time.Hour))
	if err := a.PublishGrantKey(ctx, ka); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishGrantKey(ctx, kb); err != nil {
		t.Fatal(err)
	}
	// Publishing again with an earlier NotAfter changes nothing.
	if err := b.PublishGrantKey(ctx, GrantKeyRecord{ID: ka.ID, Public: ka.Public, NotAfter: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]sharedStore{"A": a, "B": b} {
		eventually(t, be.lag+time.Second, name+" sees both keys", func() bool {
			pa, okA := s.GrantPublicKey("kid-a")
			pb, okB := s.GrantPublicKey("kid-b")
			return okA && okB && pa.Equal(ka.Public) && pb.Equal(kb.Public) && len(s.GrantPublicKeys()) == 2
		})
	}
	if _, ok := a.GrantPublicKey("kid-unknown"); ok {
		t.Error("an unpublished kid is in the set")
	}
}
