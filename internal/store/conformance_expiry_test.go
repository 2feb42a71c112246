package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
)

// testExpiry: records go once they can no longer matter, and never
// before. The property that matters most is checked at every step of store
// time: while a real grant verifier (with clock leeway equal to the
// retention) still accepts a revoked grant, the store still says it is
// revoked. Then the grant record, its parent link, its revocation, a task
// revocation, an approval and a published key are all deleted.
func testExpiry(t *testing.T, be backend) {
	ctx := context.Background()
	const retention, maxTTL = time.Second, 2 * time.Second
	a, b, clk := be.open(t, suiteOptions{Retention: retention, MaxGrantTTL: maxTTL})
	app := spiffeid.RequireFromString("spiffe://td/tenant/acme/app/x")
	kr, verifier := grantSigner(t, retention)
	claims, err := identity.Mint(identity.MintRequest{Subject: app, Audience: "portcullis", Task: "t", Tenant: "acme", TTL: maxTTL}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kr.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	parent := GrantRecord{ID: claims.ID, Task: "acme/t", Subject: app.String(), Expiry: claims.ExpiresAt()}
	child := GrantRecord{ID: claims.ID + "-child", Parent: claims.ID, Task: "acme/t", Subject: app.String(), Expiry: claims.ExpiresAt()}
	for _, g := range []GrantRecord{parent, child} {
		if err := a.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RevokeGrant(ctx, parent.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeTask(ctx, "acme/done", "complete"); err != nil {
		t.Fatal(err)
	}
	ap := pendingApproval("ap-expiry")
	ap.CreatedAt, ap.ExpiresAt = clk.Now(), clk.Now().Add(time.Second)
	if err := a.CreateApproval(ctx, ap); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishGrantKey(ctx, testKeyRecord(t, "kid-old", clk.Now().Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	eventually(t, be.lag+time.Second, "revocation reaches B", func() bool {
		r, err := b.IsRevoked(ctx, child.ID, "acme/t")
		return err == nil && r
	})

	// The grant can be accepted until its expiry plus leeway: until then,
	// and a little longer, it must stay revoked.
	end := claims.ExpiresAt().Add(retention + 200*time.Millisecond)
	steps := 0
	for ; clk.Now().Before(end); steps++ {
		now := clk.Now()
		_, verr := verifier.Verify(tok, app, now)
		for _, id := range []string{parent.ID, child.ID} {
			revoked, err := b.IsRevoked(ctx, id, "acme/t")
			if err != nil {
				t.Fatal(err)
			}
			if verr == nil && !revoked {
				t.Fatalf("%s after the grant's expiry it is accepted and %s is not revoked", now.Sub(claims.ExpiresAt()), id)
			}
		}
		be.pass(t, b, clk, 100*time.Millisecond)
	}
	if _, err := verifier.Verify(tok, app, clk.Now()); !errors.Is(err, identity.ErrGrantExpired) {
		t.Fatalf("after expiry plus leeway the verifier says %v, want expired", err)
	}

	// Then everything goes: within one lease slot and a lease check on etcd.
	within := 6 * time.Second
	for name, s := range map[string]sharedStore{"A": a, "B": b} {
		passUntil(t, be, s, clk, within, name+": revocations deleted", func() bool {
			r1, err1 := s.IsRevoked(ctx, parent.ID, "acme/t")
			r2, err2 := s.IsRevoked(ctx, child.ID, "acme/t")
			r3, err3 := s.IsRevoked(ctx, "", "acme/done")
			return err1 == nil && err2 == nil && err3 == nil && !r1 && !r2 && !r3
		})
		passUntil(t, be, s, clk, within, name+": grant records, approval and key deleted", func() bool {
			_, e1 := s.Grant(ctx, parent.ID)
			_, e2 := s.Grant(ctx, child.ID)
			_, e3 := s.Approval(ctx, ap.ID)
			_, kept := s.GrantPublicKey("kid-old")
			return errors.Is(e1, ErrNotFound) && errors.Is(e2, ErrNotFound) && errors.Is(e3, ErrNotFound) && !kept
		})
	}
	// The parent link went with the child: revoking the parent again
	// reaches no child.
	ids, err := a.RevokeGrant(ctx, parent.ID, "again")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{parent.ID}; !slices.Equal(ids, want) {
		t.Errorf("revoking the expired parent again revoked %v, want %v", ids, want)
	}
	t.Logf("checked at %d instants up to expiry+leeway", steps)
}

// grantSigner is a fresh grant keyring and a real verifier of its grants
// with clock leeway equal to the store's retention.
func grantSigner(t *testing.T, leeway time.Duration) (*identity.GrantKeyring, *identity.GrantVerifier) {
	t.Helper()
	k, err := identity.GenerateGrantKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := identity.NewGrantKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr, identity.NewGrantVerifier(kr, "portcullis", leeway, -1)
}
