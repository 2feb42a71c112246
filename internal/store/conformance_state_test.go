package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// testRevocations: subtree revocation through one replica, a delegation
// from a revoked grant born revoked, a task revocation covering grants not
// yet minted — seen by both replicas and by a store opened afterwards.
func testRevocations(t *testing.T, be backend) {
	ctx := context.Background()
	a, b, _ := be.open(t, suiteOptions{})
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
		t.Errorf("got revoked %v, want %v", ids, want)
	}
	eventually(t, be.lag, "revocation reaches A", func() bool {
		r, err := a.IsRevoked(ctx, "grandchild", "acme/t1")
		return r && err == nil
	})
	// Delegated through A from a grant revoked through B: born revoked.
	if err := a.PutGrant(ctx, GrantRecord{ID: "late", Parent: "child", Task: "acme/t1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeTask(ctx, "acme/t2", "task complete"); err != nil {
		t.Fatal(err)
	}
	check := func(name string, s sharedStore) {
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
				t.Errorf("%s: IsRevoked(%s, %s) got %v, %v; want %v", name, tc.id, tc.task, got, err, tc.want)
			}
		}
	}
	eventually(t, be.lag, "task revocation and born-revoked grant reach B", func() bool {
		r1, _ := b.IsRevoked(ctx, "new-in-t2", "acme/t2")
		r2, _ := b.IsRevoked(ctx, "late", "acme/t1")
		return r1 && r2
	})
	check("A", a)
	check("B", b)
	g, err := b.Grant(ctx, "grandchild")
	if err != nil || g.Parent != "child" || g.Task != "acme/t1" {
		t.Errorf("Grant got %+v, %v; want the record", g, err)
	}
	if _, err := b.Grant(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown grant: got %v, want ErrNotFound", err)
	}
	// A restarted (bolt) or newly started (etcd) store loads what is there.
	check("reopened", be.reopen(t, a))
}

// testBudgets: 40 concurrent reservations of 100 tokens through both
// replicas against a 1,000-token budget: exactly 10 succeed, and usage is
// exactly 1,000 on every counter; settling moves usage, never below 0.
func testBudgets(t *testing.T, be backend) {
	ctx := context.Background()
	a, b, _ := be.open(t, suiteOptions{})
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
		t.Errorf("got %d reservations succeeded, %d refused; want 10 and 30", ok, refused)
	}
	for _, k := range []string{"grant/g1", "task/acme/t1"} {
		if n, err := b.Usage(ctx, k); n != 1000 || err != nil {
			t.Errorf("usage %s got %d, %v; want 1000", k, n, err)
		}
	}
	if err := a.Settle(ctx, []string{"grant/g1", "task/acme/t1"}, -250); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Usage(ctx, "grant/g1"); n != 750 {
		t.Errorf("after settle got usage %d, want 750", n)
	}
	if err := b.Settle(ctx, []string{"grant/g1"}, -5000); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.Usage(ctx, "grant/g1"); n != 0 {
		t.Errorf("got usage %d, want clamped at 0", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Reserve(cctx, budgets, 1); !errors.Is(err, ErrUnavailable) {
		t.Errorf("canceled context: got %v, want ErrUnavailable", err)
	}
}

// testApprovals: create once, decide through one replica, race 20 uses
// through both (exactly one wins), a failed step that finds the approval
// expired records it, filters, and the records survive a reopen.
func testApprovals(t *testing.T, be backend) {
	ctx := context.Background()
	a, b, clk := be.open(t, suiteOptions{})
	now := clk.Now()
	if _, err := a.Approval(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound on an empty store", err)
	}
	rec := pendingApproval("ap1")
	rec.CreatedAt, rec.ExpiresAt = now, now.Add(time.Hour)
	if err := a.CreateApproval(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateApproval(ctx, rec); !errors.Is(err, ErrExists) {
		t.Errorf("second create through B: got %v, want ErrExists", err)
	}
	if _, err := a.UpdateApproval(ctx, "ap1", func(r *ApprovalRecord) error {
		return r.Decide(true, "spiffe://td/human/bob", "ok", now)
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	used, refused := 0, 0
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.UpdateApproval(ctx, "ap1", func(r *ApprovalRecord) error {
				return r.Use(rec.Requester, "d1", "req_2", now.Add(time.Minute))
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				used++
			case errors.Is(err, ErrApprovalState):
				refused++
			default:
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	if used != 1 || refused != 19 {
		t.Errorf("got %d uses succeeded, %d refused; want 1 and 19", used, refused)
	}
	rec2 := pendingApproval("ap2")
	rec2.Tenant, rec2.CreatedAt, rec2.ExpiresAt = "globex", now.Add(time.Second), now.Add(time.Minute)
	if err := b.CreateApproval(ctx, rec2); err != nil {
		t.Fatal(err)
	}
	// A failed step that finds the approval expired still records it.
	got, err := a.UpdateApproval(ctx, "ap2", func(r *ApprovalRecord) error { return r.Decide(true, "h", "", now.Add(2*time.Minute)) })
	if !errors.Is(err, ErrApprovalExpired) || got.State != ApprovalExpired {
		t.Fatalf("got %v, %s; want ErrApprovalExpired and expired", err, got.State)
	}
	if _, err := b.UpdateApproval(ctx, "nope", func(*ApprovalRecord) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("update unknown: got %v, want ErrNotFound", err)
	}
	s := be.reopen(t, b)
	got, err = s.Approval(ctx, "ap1")
	if err != nil || got.State != ApprovalUsed || got.DecidedBy != "spiffe://td/human/bob" || got.Summary["model"] != "gpt-4o-mini" || len(got.Chain) != 2 {
		t.Errorf("after reopen got %+v, %v; want used, decided by bob, with summary and chain", got, err)
	}
	for _, tt := range []struct {
		f    ApprovalFilter
		want []string
	}{
		{ApprovalFilter{}, []string{"ap1", "ap2"}},
		{ApprovalFilter{Tenant: "acme"}, []string{"ap1"}},
		{ApprovalFilter{State: ApprovalExpired}, []string{"ap2"}},
		{ApprovalFilter{State: ApprovalUsed, Now: now.Add(2 * time.Hour)}, []string{"ap1"}},
		{ApprovalFilter{Tenant: "initech"}, nil},
	} {
		list, err := s.ListApprovals(ctx, tt.f)
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if err != nil || !slices.Equal(ids, tt.want) {
			t.Errorf("ListApprovals(%+v) got %v, %v; want %v", tt.f, ids, err, tt.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Approval(cctx, "ap1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("canceled context: got %v, want ErrUnavailable", err)
	}
}
