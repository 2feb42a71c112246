package store

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
)

// testBudgetExpiry: budget counters go once no grant that charges them can
// be used, and never before. A grant charges its own counter and its
// task's; a second grant of the task, minted later with a later expiry,
// charges nothing: its task's counter must be kept for it all the same. At every
// step of store time, while a real verifier (clock leeway equal to the
// retention) accepts a grant, every counter it charges still holds what was
// charged: a budget never starts again from zero under a valid grant. Then
// both counters are deleted.
func testBudgetExpiry(t *testing.T, be backend) {
	ctx := context.Background()
	const retention, maxTTL = time.Second, 3 * time.Second
	a, b, clk := be.open(t, suiteOptions{Retention: retention, MaxGrantTTL: maxTTL})
	app := spiffeid.RequireFromString("spiffe://td/tenant/acme/app/x")
	kr, verifier := grantSigner(t, retention)
	mint := func(s Store) (*identity.Grant, string) {
		t.Helper()
		g, err := identity.Mint(identity.MintRequest{Subject: app, Audience: "portcullis", Task: "t", Tenant: "acme", TTL: maxTTL}, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := kr.Sign(g)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutGrant(ctx, GrantRecord{ID: g.ID, Task: "acme/t", Subject: app.String(), Expiry: g.ExpiresAt(), MaxTokens: 1000}); err != nil {
			t.Fatal(err)
		}
		return g, tok
	}
	usable := func(tok string) bool {
		_, err := verifier.Verify(tok, app, clk.Now())
		return err == nil
	}

	first, firstTok := mint(a)
	grantKey, taskKey := GrantBudget(first.ID), TaskBudget("acme/t")
	budgets := []Budget{{Key: grantKey, Limit: 1000, Expires: first.ExpiresAt()}, {Key: taskKey}}
	if err := a.Reserve(ctx, budgets, 100); err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, []string{grantKey, taskKey}, -40); err != nil {
		t.Fatal(err)
	}
	const want = 60
	// Mint the second grant just before the counters, charged only by the
	// first, could go (maxTTL + retention after the charge): it is usable
	// for seconds after that.
	be.pass(t, a, clk, maxTTL+retention/2)
	second, secondTok := mint(b)

	end := second.ExpiresAt().Add(retention + 200*time.Millisecond)
	steps := 0
	for ; clk.Now().Before(end); steps++ {
		firstOK, secondOK := usable(firstTok), usable(secondTok)
		for name, s := range map[string]sharedStore{"A": a, "B": b} {
			for _, c := range []struct {
				key     string
				charged bool // a grant that charges the counter is usable
			}{{grantKey, firstOK}, {taskKey, firstOK || secondOK}} {
				if !c.charged {
					continue
				}
				if got, err := s.Usage(ctx, c.key); err != nil || got != want {
					t.Fatalf("%s after the first grant's expiry, %s: usage of %s got %d, %v; want %d (a grant that charges it is still usable)",
						clk.Now().Sub(first.ExpiresAt()), name, c.key, got, err, want)
				}
			}
		}
		be.pass(t, b, clk, 100*time.Millisecond)
	}
	if usable(firstTok) || usable(secondTok) {
		t.Fatal("after expiry plus leeway a grant is still accepted")
	}
	// Then both counters go: within one lease slot and a lease check on
	// etcd.
	within := 6 * time.Second
	for name, s := range map[string]sharedStore{"A": a, "B": b} {
		passUntil(t, be, s, clk, within, name+": budget counters deleted", func() bool {
			g, err1 := s.Usage(ctx, grantKey)
			k, err2 := s.Usage(ctx, taskKey)
			return err1 == nil && err2 == nil && g == 0 && k == 0
		})
	}
	t.Logf("checked at %d instants up to expiry+leeway", steps)
}
