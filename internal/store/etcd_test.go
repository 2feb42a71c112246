package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func TestEtcdRevocationsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	env, a, b := replicas(t)
	for _, g := range []GrantRecord{
		{ID: "root", Task: "acme/t1"},
		{ID: "child", Parent: "root", Task: "acme/t1"},
		{ID: "grandchild", Parent: "child", Task: "acme/t1"},
		{ID: "sibling", Parent: "root", Task: "acme/t1"},
		{ID: "other", Task: "acme/t2"},
	} {
		if err := a.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := b.RevokeGrant(ctx, "child", "leaked")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"child", "grandchild"}; !slices.Equal(ids, want) {
		t.Errorf("revoked %v, want %v", ids, want)
	}
	waitRevoked(t, a, "grandchild", "acme/t1", testStaleAfter)
	// A grant delegated (through A) from a grant revoked (through B) is born revoked.
	if err := a.PutGrant(ctx, GrantRecord{ID: "late", Parent: "child", Task: "acme/t1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeTask(ctx, "acme/t2", "task complete"); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, "new-in-t2", "acme/t2", testStaleAfter)
	waitRevoked(t, b, "late", "acme/t1", testStaleAfter)
	check := func(name string, s *Etcd) {
		t.Helper()
		for _, tc := range []struct {
			id, task string
			want     bool
		}{
			{"root", "acme/t1", false}, {"sibling", "acme/t1", false},
			{"child", "acme/t1", true}, {"grandchild", "acme/t1", true}, {"late", "acme/t1", true},
			{"other", "acme/t2", true}, {"new-in-t2", "acme/t2", true}, {"x", "globex/t2", false},
		} {
			if got, err := s.IsRevoked(ctx, tc.id, tc.task); err != nil || got != tc.want {
				t.Errorf("%s: IsRevoked(%s, %s) = %v, %v; want %v", name, tc.id, tc.task, got, err, tc.want)
			}
		}
	}
	check("A", a)
	check("B", b)
	// A replica started now loads what is there.
	check("C", openEtcdTest(t, env.srv, env.prefix))
	g, err := b.Grant(ctx, "grandchild")
	if err != nil || g.Parent != "child" || g.Task != "acme/t1" {
		t.Errorf("Grant = %+v, %v", g, err)
	}
	if _, err := b.Grant(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown grant: err = %v, want ErrNotFound", err)
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

func TestEtcdBudgetNotDoubleSpent(t *testing.T) {
	ctx := context.Background()
	_, a, b := replicas(t)
	budgets := []Budget{{Key: "grant/g1", Limit: 1000}, {Key: "task/acme/t1"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			err := s.Reserve(ctx, budgets, 100)
			mu.Lock()
			defer mu.Unlock()
			var be *BudgetError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &be) && errors.Is(err, ErrBudgetExceeded) && be.Key == "grant/g1" && be.Limit == 1000:
				refused++
			default:
				t.Errorf("reserve: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 10 || refused != 30 {
		t.Errorf("%d reservations succeeded, %d refused; want 10 and 30", ok, refused)
	}
	for _, k := range []string{"grant/g1", "task/acme/t1"} {
		if n, err := b.Usage(ctx, k); n != 1000 || err != nil {
			t.Errorf("usage %s = %d, %v; want 1000", k, n, err)
		}
	}
	if err := a.Settle(ctx, []string{"grant/g1", "task/acme/t1"}, -250); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Usage(ctx, "grant/g1"); n != 750 {
		t.Errorf("after settle usage = %d, want 750", n)
	}
	if err := b.Settle(ctx, []string{"grant/g1"}, -5000); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.Usage(ctx, "grant/g1"); n != 0 {
		t.Errorf("usage went to %d, want clamped at 0", n)
	}
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
