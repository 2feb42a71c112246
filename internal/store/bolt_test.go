package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, path string) *Bolt {
	t.Helper()
	b, err := OpenBolt(path, BoltOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRevokeDescendantsAndRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := openTest(t, path)
	for _, g := range []GrantRecord{
		{ID: "root", Task: "acme/t1"},
		{ID: "child", Parent: "root", Task: "acme/t1"},
		{ID: "grandchild", Parent: "child", Task: "acme/t1"},
		{ID: "sibling", Parent: "root", Task: "acme/t1"},
		{ID: "other", Task: "acme/t2"},
	} {
		if err := s.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.RevokeGrant(ctx, "child", "leaked")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"child", "grandchild"}; !slices.Equal(ids, want) {
		t.Errorf("revoked %v, want %v", ids, want)
	}
	// A grant delegated from a revoked one is born revoked.
	if err := s.PutGrant(ctx, GrantRecord{ID: "late", Parent: "child", Task: "acme/t1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTask(ctx, "acme/t2", "task complete"); err != nil {
		t.Fatal(err)
	}
	check := func(s *Bolt) {
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
				t.Errorf("IsRevoked(%s, %s) = %v, %v; want %v", tc.id, tc.task, got, err, tc.want)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	defer s.Close()
	check(s)
	g, err := s.Grant(ctx, "grandchild")
	if err != nil || g.Parent != "child" {
		t.Errorf("Grant = %+v, %v", g, err)
	}
	if _, err := s.Grant(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown grant: err = %v", err)
	}
}

func TestBudgets(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "state.db"))
	defer s.Close()
	budgets := []Budget{{Key: "grant/g1", Limit: 1000}, {Key: "task/acme/t1"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for range 30 {
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
	if ok != 10 || refused != 20 {
		t.Errorf("%d reservations succeeded, %d refused; want 10 and 20", ok, refused)
	}
	for _, k := range []string{"grant/g1", "task/acme/t1"} {
		if n, _ := s.Usage(ctx, k); n != 1000 {
			t.Errorf("usage %s = %d, want 1000", k, n)
		}
	}
	if err := s.Settle(ctx, []string{"grant/g1", "task/acme/t1"}, -250); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Usage(ctx, "grant/g1"); n != 750 {
		t.Errorf("after settle usage = %d, want 750", n)
	}
	if err := s.Settle(ctx, []string{"grant/g1"}, -5000); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Usage(ctx, "grant/g1"); n != 0 {
		t.Errorf("usage went to %d, want clamped at 0", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Reserve(cctx, budgets, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("canceled context: err = %v, want ErrUnavailable", err)
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for b.Loop() {
		if r, _ := s.IsRevoked(ctx, "g_0123456789abcdef", "acme/ticket-1"); r {
			b.Fatal("revoked")
		}
	}
}
