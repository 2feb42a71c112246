package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestEtcdApprovalUsedOnceAcrossReplicas approves through one replica and
// has both replicas race to use the approval: exactly one use succeeds.
func TestEtcdApprovalUsedOnceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	_, a, b := replicas(t)
	now := time.Now()
	const requester = "spiffe://example.org/tenant/acme/agent/bot"
	rec := ApprovalRecord{ID: "ap1", State: ApprovalPending, Tenant: "acme", Action: "llm.invoke",
		Requester: requester, Digest: "d1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateApproval(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateApproval(ctx, rec); !errors.Is(err, ErrExists) {
		t.Errorf("second create through B: %v, want ErrExists", err)
	}
	if _, err := a.UpdateApproval(ctx, "ap1", func(r *ApprovalRecord) error {
		return r.Decide(true, "spiffe://example.org/human/alice", "ok", now)
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
				return r.Use(requester, "d1", "req", now)
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
		t.Errorf("%d uses succeeded, %d refused; want 1 and 19", used, refused)
	}
	got, err := b.Approval(ctx, "ap1")
	if err != nil || got.State != ApprovalUsed || got.DecidedBy != "spiffe://example.org/human/alice" {
		t.Errorf("Approval through B = %+v, %v; want used, decided by alice", got, err)
	}
	if _, err := b.Approval(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown approval: %v, want ErrNotFound", err)
	}
	if _, err := b.UpdateApproval(ctx, "nope", func(*ApprovalRecord) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("update unknown approval: %v, want ErrNotFound", err)
	}
	// A failed change that still alters the record (an expiry) is stored.
	rec2 := rec
	rec2.ID, rec2.CreatedAt, rec2.ExpiresAt = "ap2", now.Add(time.Second), now.Add(time.Minute)
	if err := b.CreateApproval(ctx, rec2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateApproval(ctx, "ap2", func(r *ApprovalRecord) error {
		return r.Decide(true, "alice", "", now.Add(2*time.Minute))
	}); !errors.Is(err, ErrApprovalExpired) {
		t.Errorf("deciding a due approval: %v, want ErrApprovalExpired", err)
	}
	for _, tc := range []struct {
		f    ApprovalFilter
		want []string
	}{
		{ApprovalFilter{}, []string{"ap1", "ap2"}},
		{ApprovalFilter{State: ApprovalExpired}, []string{"ap2"}},
		{ApprovalFilter{Tenant: "globex"}, nil},
	} {
		list, err := b.ListApprovals(ctx, tc.f)
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("ListApprovals(%+v) = %v, %v; want %v", tc.f, ids, err, tc.want)
		}
	}
}
