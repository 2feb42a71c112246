package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/etcdtest"
)

// The conformance suite: every scenario in it runs against both backends,
// bbolt and a real etcd (embedded, internal/etcdtest), through the same
// interfaces. A scenario gets two "replicas": for etcd two stores (own
// client, own views) on one prefix; for bbolt, which is one node's state,
// the same store twice.

// sharedStore is everything a backend implements.
type sharedStore interface {
	Store
	Approvals
	RateLimiter
	GrantKeySet
}

var (
	_ sharedStore = (*Bolt)(nil)
	_ sharedStore = (*Etcd)(nil)
)

// testClock is the time a suite's stores read: real time plus an offset,
// or frozen at a point that only Advance moves.
type testClock struct {
	mu     sync.Mutex
	frozen bool
	at     time.Time
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.at
	}
	return time.Now().Add(c.offset)
}

// Freeze stops the clock where it is.
func (c *testClock) Freeze() {
	now := c.Now()
	c.mu.Lock()
	c.frozen, c.at = true, now
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
	c.offset += d
}

// suiteOptions are what a scenario may tune.
type suiteOptions struct {
	Retention   time.Duration
	MaxGrantTTL time.Duration
}

// backend opens the stores of one scenario.
type backend struct {
	name string
	// open returns two replicas' stores on one shared state, and the clock
	// they read.
	open func(t *testing.T, o suiteOptions) (a, b sharedStore, clk *testClock)
	// reopen returns a store opened afresh on the same state (a restarted
	// or a new replica), after closing a if the backend needs it.
	reopen func(t *testing.T, a sharedStore) sharedStore
	// pass lets d of store time go by and the backend's expiry run: bbolt
	// moves the clock and sweeps; etcd's leases run in real time, so it
	// sleeps.
	pass func(t *testing.T, s sharedStore, clk *testClock, d time.Duration)
	// lag is how long a change made through one replica may take to show
	// on the other (0 for one node).
	lag time.Duration
}

func backends() []backend {
	return []backend{
		{
			name: "bolt",
			open: func(t *testing.T, o suiteOptions) (sharedStore, sharedStore, *testClock) {
				clk := &testClock{}
				path := filepath.Join(t.TempDir(), "state.db")
				s, err := OpenBolt(path, BoltOptions{Timeout: time.Second, Clock: clk.Now,
					Retention: o.Retention, MaxGrantTTL: o.MaxGrantTTL, SweepInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s, s, clk
			},
			reopen: func(t *testing.T, a sharedStore) sharedStore {
				b := a.(*Bolt)
				path, opts := b.db.Path(), b.opts
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				s, err := OpenBolt(path, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			pass: func(t *testing.T, s sharedStore, clk *testClock, d time.Duration) {
				clk.Advance(d)
				if _, err := s.(*Bolt).Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "etcd",
			open: func(t *testing.T, o suiteOptions) (sharedStore, sharedStore, *testClock) {
				clk := &testClock{}
				srv := etcdtest.Start(t)
				opts := EtcdOptions{
					Endpoints: srv.Endpoints(), Prefix: "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/",
					RequestTimeout: 2 * time.Second, StaleAfter: testStaleAfter, Clock: clk.Now,
					Retention: o.Retention, MaxGrantTTL: o.MaxGrantTTL, LeaseGranularity: time.Second,
				}
				return openEtcdOpts(t, opts), openEtcdOpts(t, opts), clk
			},
			reopen: func(t *testing.T, a sharedStore) sharedStore {
				return openEtcdOpts(t, a.(*Etcd).opts)
			},
			pass: func(_ *testing.T, _ sharedStore, _ *testClock, d time.Duration) {
				time.Sleep(d)
			},
			lag: testStaleAfter,
		},
	}
}

func openEtcdOpts(t *testing.T, opts EtcdOptions) *Etcd {
	t.Helper()
	s, err := OpenEtcd(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs every scenario against every backend.
func TestConformance(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, be backend)
	}{
		{"Revocations", testRevocations},
		{"Budgets", testBudgets},
		{"BudgetExpiry", testBudgetExpiry},
		{"Approvals", testApprovals},
		{"RateLimitShared", testRateLimitShared},
		{"GrantKeysShared", testGrantKeysShared},
		{"Expiry", testExpiry},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, be)
				})
			}
		})
	}
}

// passUntil lets store time pass in steps until cond holds, for at most
// within of store time.
func passUntil(t *testing.T, be backend, s sharedStore, clk *testClock, within time.Duration, what string, cond func() bool) {
	t.Helper()
	const step = 100 * time.Millisecond
	for waited := time.Duration(0); !cond(); waited += step {
		if waited > within {
			t.Fatalf("%s: not so after %s", what, within)
		}
		be.pass(t, s, clk, step)
	}
}

// eventually polls cond until it holds or within has passed.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
