package store

import (
	"errors"
	"strings"
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
