package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

// ownGrantKey gives a replica its own signing key, published in the shared
// set as cmd/portcullis does.
func ownGrantKey(t *testing.T, keys **identity.GrantKeyring) func(*proxy.Config, *store.Etcd) {
	return func(c *proxy.Config, st *store.Etcd) {
		k, err := identity.GenerateGrantKey()
		if err != nil {
			t.Fatal(err)
		}
		kr, err := identity.NewGrantKeyring(k)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := proxy.PublishGrantKeys(context.Background(), kr, st, proxy.GrantKeyPublishOptions{MaxTTL: c.Grants.MaxTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pub.Close() })
		g := *c.Grants
		g.Keys = kr
		c.Grants = &g
		*keys = kr
	}
}

// TestReplicasOwnGrantKeys runs two replicas with different signing keys:
// a grant minted on A (signed with A's key) is accepted by B, and B's
// JWKS serves both keys.
func TestReplicasOwnGrantKeys(t *testing.T) {
	f := newFleet(t)
	var ka, kb *identity.GrantKeyring
	a, _ := f.replica("a", ownGrantKey(t, &ka))
	b, _ := f.replica("b", ownGrantKey(t, &kb))
	if ka.CurrentKeyID() == kb.CurrentKeyID() {
		t.Fatal("the replicas share a key")
	}
	grant, _ := a.mint("", mintBody("t-keys", "support", []string{"gpt-4o-mini"}, nil, 5000))
	// A published its key before it served; B's watch has it within
	// milliseconds.
	deadline := time.Now().Add(replicaStaleAfter)
	for {
		err := b.chatWith(identity.DevAppID, grant, "gpt-4o-mini")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant signed with A's key, used on B: %d %s %s", err.StatusCode, err.Code, err.Message)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And the other way round.
	grantB, _ := b.mint("", mintBody("t-keys-b", "support", []string{"gpt-4o-mini"}, nil, 5000))
	if err := a.chatWith(identity.DevAppID, grantB, "gpt-4o-mini"); err != nil {
		t.Fatalf("grant signed with B's key, used on A: %d %s %s", err.StatusCode, err.Code, err.Message)
	}
	status, body := b.call(identity.DevAppID, "GET", "/.well-known/jwks.json", "", "", nil)
	if status != http.StatusOK {
		t.Fatalf("JWKS: %d", status)
	}
	raw, _ := json.Marshal(body)
	var doc struct{ Keys []identity.JWK }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	if len(kids) != 2 || kids[0] != kb.CurrentKeyID() || !slices.Contains(kids, ka.CurrentKeyID()) {
		t.Errorf("B's JWKS lists %v, want B's key %s first, then A's %s", kids, kb.CurrentKeyID(), ka.CurrentKeyID())
	}
}
