package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pendingApproval(id string) ApprovalRecord {
	return ApprovalRecord{
		ID: id, State: ApprovalPending, Tenant: "acme", Action: "llm.invoke",
		Requester: "spiffe://td/tenant/acme/agent/a", RequesterKind: "agent",
		Chain:     []string{"spiffe://td/tenant/acme/app/x", "spiffe://td/tenant/acme/agent/a"},
		RequestID: "req_1", Digest: "d1", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute),
		Summary: map[string]any{"model": "gpt-4o-mini"},
	}
}

func TestApprovalSteps(t *testing.T) {
	const req = "spiffe://td/tenant/acme/agent/a"
	approved := func(a *ApprovalRecord) { _ = a.Decide(true, "spiffe://td/human/bob", "ok", t0.Add(time.Minute)) }
	tests := []struct {
		name    string
		setup   func(*ApprovalRecord)
		step    func(*ApprovalRecord) error
		want    error // nil: the step succeeds
		wantSt  ApprovalState
		wantDet string
	}{
		{"approve", nil, func(a *ApprovalRecord) error { return a.Decide(true, "h", "fine", t0) }, nil, ApprovalApproved, ""},
		{"deny", nil, func(a *ApprovalRecord) error { return a.Decide(false, "h", "no", t0) }, nil, ApprovalDenied, ""},
		{"decide twice", approved, func(a *ApprovalRecord) error { return a.Decide(false, "h", "no", t0) }, ErrApprovalState, ApprovalApproved, ""},
		{"decide expired", nil, func(a *ApprovalRecord) error { return a.Decide(true, "h", "", t0.Add(10*time.Minute)) }, ErrApprovalExpired, ApprovalExpired, ""},
		{"use", approved, func(a *ApprovalRecord) error { return a.Use(req, "d1", "req_2", t0.Add(2*time.Minute)) }, nil, ApprovalUsed, ""},
		{"use pending", nil, func(a *ApprovalRecord) error { return a.Use(req, "d1", "req_2", t0) }, ErrApprovalState, ApprovalPending, "not approved"},
		{"use twice", func(a *ApprovalRecord) { approved(a); _ = a.Use(req, "d1", "req_2", t0.Add(2*time.Minute)) },
			func(a *ApprovalRecord) error { return a.Use(req, "d1", "req_3", t0.Add(3*time.Minute)) }, ErrApprovalState, ApprovalUsed, "already used by request req_2"},
		{"use other digest", approved, func(a *ApprovalRecord) error { return a.Use(req, "d2", "req_2", t0) }, ErrApprovalMismatch, ApprovalApproved, "action differs"},
		{"use other caller", approved, func(a *ApprovalRecord) error { return a.Use("spiffe://td/x", "d1", "req_2", t0) }, ErrApprovalMismatch, ApprovalApproved, "another caller"},
		{"use expired", approved, func(a *ApprovalRecord) error { return a.Use(req, "d1", "req_2", t0.Add(time.Hour)) }, ErrApprovalExpired, ApprovalExpired, ""},
		{"use denied", func(a *ApprovalRecord) { _ = a.Decide(false, "h", "", t0) }, func(a *ApprovalRecord) error { return a.Use(req, "d1", "r", t0) }, ErrApprovalState, ApprovalDenied, "denied"},
		{"withdraw", approved, func(a *ApprovalRecord) error { return a.Withdraw(req, "changed my mind", t0) }, nil, ApprovalWithdrawn, ""},
		{"withdraw by other", nil, func(a *ApprovalRecord) error { return a.Withdraw("spiffe://td/x", "", t0) }, ErrApprovalMismatch, ApprovalPending, ""},
		{"use withdrawn", func(a *ApprovalRecord) { _ = a.Withdraw(req, "", t0) }, func(a *ApprovalRecord) error { return a.Use(req, "d1", "r", t0) }, ErrApprovalState, ApprovalWithdrawn, ""},
		{"expire due", nil, func(a *ApprovalRecord) error { return a.Expire(t0.Add(time.Hour)) }, nil, ApprovalExpired, ""},
		{"expire early", nil, func(a *ApprovalRecord) error { return a.Expire(t0) }, ErrApprovalState, ApprovalPending, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := pendingApproval("ap")
			if tt.setup != nil {
				tt.setup(&a)
			}
			err := tt.step(&a)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if a.State != tt.wantSt {
				t.Errorf("got state %s, want %s", a.State, tt.wantSt)
			}
			var ae *ApprovalError
			if tt.wantDet != "" && (!errors.As(err, &ae) || !strings.Contains(ae.Error(), tt.wantDet)) {
				t.Errorf("got error %v, want it to say %q", err, tt.wantDet)
			}
		})
	}
}

func TestBoltApprovalsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := openTest(t, path)
	if _, err := s.Approval(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound on an empty file", err)
	}
	a := pendingApproval("ap1")
	if err := s.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, a); !errors.Is(err, ErrExists) {
		t.Fatalf("got %v, want ErrExists for a second create", err)
	}
	b := pendingApproval("ap2")
	b.Tenant, b.CreatedAt = "globex", t0.Add(time.Second)
	if err := s.CreateApproval(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateApproval(ctx, "ap1", func(r *ApprovalRecord) error {
		return r.Decide(true, "spiffe://td/human/bob", "ok", t0.Add(time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, path)
	defer s.Close()
	got, err := s.Approval(ctx, "ap1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ApprovalApproved || got.DecidedBy != "spiffe://td/human/bob" || got.Summary["model"] != "gpt-4o-mini" || len(got.Chain) != 2 {
		t.Errorf("after reopen got %+v", got)
	}
	for _, tt := range []struct {
		f    ApprovalFilter
		want []string
	}{
		{ApprovalFilter{}, []string{"ap1", "ap2"}},
		{ApprovalFilter{Tenant: "acme"}, []string{"ap1"}},
		{ApprovalFilter{State: ApprovalPending}, []string{"ap2"}},
		{ApprovalFilter{State: ApprovalExpired, Now: t0.Add(time.Hour)}, []string{"ap1", "ap2"}},
		{ApprovalFilter{State: ApprovalExpired}, nil},
	} {
		list, err := s.ListApprovals(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("ListApprovals(%+v) got %v, want %v", tt.f, ids, tt.want)
		}
	}
	// A failed step that finds the approval expired still records it.
	got, err = s.UpdateApproval(ctx, "ap2", func(r *ApprovalRecord) error { return r.Decide(true, "h", "", t0.Add(time.Hour)) })
	if !errors.Is(err, ErrApprovalExpired) || got.State != ApprovalExpired {
		t.Fatalf("got %v, %s; want ErrApprovalExpired and expired", err, got.State)
	}
	if again, _ := s.Approval(ctx, "ap2"); again.State != ApprovalExpired {
		t.Errorf("got stored state %s, want expired", again.State)
	}
	if _, err := s.UpdateApproval(ctx, "nope", func(*ApprovalRecord) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Approval(cctx, "ap1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable on a cancelled context", err)
	}
}

// TestBoltApprovalUsedOnce races many retries of one approved action: exactly
// one consumes it.
func TestBoltApprovalUsedOnce(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "state.db"))
	defer s.Close()
	a := pendingApproval("ap")
	a.State = ApprovalApproved
	if err := s.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, refused := 0, 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateApproval(ctx, "ap", func(r *ApprovalRecord) error {
				return r.Use(a.Requester, "d1", "req_"+string(rune('a'+i)), t0.Add(time.Minute))
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrApprovalState):
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || refused != 15 {
		t.Errorf("got %d uses and %d refusals, want 1 and 15", wins, refused)
	}
}
