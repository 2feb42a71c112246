package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/etcdtest"
)

// testStaleAfter is short so that the unavailability test is quick.
const testStaleAfter = time.Second

func openEtcdTest(t *testing.T, srv *etcdtest.Server, prefix string) *Etcd {
	t.Helper()
	s, err := OpenEtcd(context.Background(), EtcdOptions{
		Endpoints: srv.Endpoints(), Prefix: prefix,
		RequestTimeout: 500 * time.Millisecond, StaleAfter: testStaleAfter,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type etcdEnv struct {
	srv    *etcdtest.Server
	prefix string
}

// replicas opens two stores on one etcd: two gateway replicas' views.
func replicas(t *testing.T) (*etcdEnv, *Etcd, *Etcd) {
	e := &etcdEnv{srv: etcdtest.Start(t), prefix: "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"}
	return e, openEtcdTest(t, e.srv, e.prefix), openEtcdTest(t, e.srv, e.prefix)
}

// waitRevoked polls s until the grant is revoked and returns how long that took.
func waitRevoked(t *testing.T, s *Etcd, id, task string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := s.IsRevoked(context.Background(), id, task)
		if err != nil {
			t.Fatalf("IsRevoked(%s): %v", id, err)
		}
		if got {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s not revoked on the other replica after %s", id, limit)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestEtcdRevocationPropagation measures how long a revocation committed
// through one replica takes to be enforced by another (docs/deployment.md).
func TestEtcdRevocationPropagation(t *testing.T) {
	ctx := context.Background()
	_, a, b := replicas(t)
	const n = 50
	var delays []time.Duration
	for i := range n {
		id := fmt.Sprintf("g%d", i)
		if _, err := a.RevokeGrant(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, waitRevoked(t, b, id, "acme/t", testStaleAfter))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("revocation through A enforced by B after: median %s, p90 %s, max %s (%d revocations; bound %s)",
		delays[n/2], delays[n*9/10], delays[n-1], n, testStaleAfter)
}

// TestEtcdRevokeRacesDelegate delegates from a grant while another replica
// revokes it: whichever commits first, the new grant ends up revoked.
func TestEtcdRevokeRacesDelegate(t *testing.T) {
	ctx := context.Background()
	_, a, b := replicas(t)
	for i := range 20 {
		parent, child := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i)
		if err := a.PutGrant(ctx, GrantRecord{ID: parent, Task: "acme/race"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := a.PutGrant(ctx, GrantRecord{ID: child, Parent: parent, Task: "acme/race"}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := b.RevokeGrant(ctx, parent, "race"); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		for name, s := range map[string]*Etcd{"A": a, "B": b} {
			waitRevoked(t, s, child, "acme/race", testStaleAfter)
			_ = name
		}
	}
}

// TestEtcdUnavailableFailsClosed stops etcd: revocation checks that cannot
// be confirmed fail with ErrUnavailable within StaleAfter, as do writes and
// Health; grants known to be revoked stay revoked. When etcd is back, so is
// the store, and revocations flow again.
func TestEtcdUnavailableFailsClosed(t *testing.T) {
	ctx := context.Background()
	env, a, b := replicas(t)
	if _, err := a.RevokeGrant(ctx, "bad", "leaked"); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, "bad", "acme/t", testStaleAfter)
	if _, err := b.Health(time.Now()); err != nil {
		t.Fatalf("Health with etcd up: %v", err)
	}
	env.srv.Cut()
	stopped := time.Now()
	var failedAfter time.Duration
	for {
		_, err := b.IsRevoked(ctx, "good", "acme/t")
		if errors.Is(err, ErrUnavailable) {
			failedAfter = time.Since(stopped)
			break
		}
		if err != nil {
			t.Fatalf("IsRevoked: %v, want ErrUnavailable", err)
		}
		if time.Since(stopped) > 2*testStaleAfter {
			t.Fatalf("IsRevoked still answers from a view unconfirmed for %s", time.Since(stopped))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("etcd stopped: revocation checks fail closed after %s (StaleAfter %s)", failedAfter, testStaleAfter)
	if failedAfter > testStaleAfter+250*time.Millisecond {
		t.Errorf("failed closed after %s, want at most StaleAfter %s", failedAfter, testStaleAfter)
	}
	if got, err := b.IsRevoked(ctx, "bad", "acme/t"); !got || err != nil {
		t.Errorf("known revocation while etcd is down: %v, %v; want true", got, err)
	}
	if _, err := b.Health(time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Health with etcd down: %v, want ErrUnavailable", err)
	}
	if err := a.Reserve(ctx, []Budget{{Key: "k", Limit: 10}}, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Reserve with etcd down: %v, want ErrUnavailable", err)
	}
	if _, err := a.RevokeGrant(ctx, "x", "r"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("RevokeGrant with etcd down: %v, want ErrUnavailable", err)
	}

	env.srv.Restore(t)
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range []*Etcd{a, b} {
		for {
			if _, err := s.Health(time.Now()); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("store not healthy 10s after etcd restarted")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := a.RevokeGrant(ctx, "after", "r"); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, "after", "acme/t", testStaleAfter)
}
