package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// hookedLog is a real audit log whose appends a test can fail, or follow
// with an action, by event.
type hookedLog struct {
	log   *audit.Log
	mu    sync.Mutex
	fail  func(*audit.Event) bool // refuse this event
	after func(*audit.Event)      // run once this event is durable
}

func (h *hookedLog) Append(ctx context.Context, ev *audit.Event) (uint64, error) {
	h.mu.Lock()
	fail, after := h.fail, h.after
	h.mu.Unlock()
	if fail != nil && fail(ev) {
		return 0, errors.New("audit: disk full (test)")
	}
	seq, err := h.log.Append(ctx, ev)
	if err == nil && after != nil {
		after(ev)
	}
	return seq, err
}

func (h *hookedLog) set(fail func(*audit.Event) bool, after func(*audit.Event)) {
	h.mu.Lock()
	h.fail, h.after = fail, after
	h.mu.Unlock()
}

// startHookedGateway is startGateway with its audit log behind a hookedLog;
// env.records reads that log.
func startHookedGateway(t *testing.T, opts envOptions) (*gatewayEnv, *hookedLog) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	h := &hookedLog{log: l}
	opts.recorder = h
	env := startGateway(t, opts)
	env.auditDir, env.log = dir, l
	return env, h
}

func isStep(steps ...string) func(*audit.Event) bool {
	return func(ev *audit.Event) bool {
		for _, s := range steps {
			if ev.Type == "approval" && ev.Action == "approval."+s {
				return true
			}
		}
		return false
	}
}

// A human's decision, or a withdrawal, whose audit record cannot be
// written is not applied: the human gets 503 and the approval stays
// pending, so the retry it would have allowed is still refused.
func TestApprovalStepNotAppliedWithoutAuditRecord(t *testing.T) {
	env, h := startHookedGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	h.set(isStep("approved", "denied", "withdrawn"), nil)

	for _, approve := range []bool{true, false} {
		status, m := env.decide(identity.DevHumanID, ap, approve)
		if status != http.StatusServiceUnavailable || get(m, "error", "code") != "audit_unavailable" {
			t.Fatalf("approve=%v with the audit log failing: %d %v, want 503 audit_unavailable", approve, status, m)
		}
	}
	if status, m := env.call(identity.DevAppID, "DELETE", "/v1/approvals/"+ap, "", "", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("withdraw with the audit log failing: %d %v, want 503", status, m)
	}
	if status, m := env.call(identity.DevHumanID, "GET", "/v1/approvals/"+ap, "", "", nil); status != 200 || m["state"] != "pending" {
		t.Fatalf("after unrecorded decisions: %d %v, want it still pending", status, m)
	}
	retry := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, retry.err, http.StatusForbidden, "approval_refused", "pending")
	if got := strings.Join(steps(env.approvalRecords(ap)), ","); got != "requested,refused" {
		t.Errorf("approval records = %s, want requested,refused (the retry)", got)
	}

	h.set(nil, nil)
	env.approve(identity.DevHumanID, ap)
	if got := strings.Join(steps(env.approvalRecords(ap)), ","); got != "requested,refused,approved" {
		t.Errorf("approval records = %s, want requested,refused,approved", got)
	}
}

// When the store refuses a decision already recorded (another approver
// got there first), an approval.not_applied record follows it before the
// human hears 409: the log never claims a step that did not happen.
func TestApprovalStepRefusedByStoreIsRecorded(t *testing.T) {
	env, h := startHookedGateway(t, envOptions{})
	ap, _ := env.park(identity.DevAppID, "", refundParams("gpt-4o-mini", "refund order 42"))
	var once sync.Once
	h.set(nil, func(ev *audit.Event) {
		if !isStep("approved")(ev) {
			return
		}
		once.Do(func() {
			// Another approver's denial lands between the record and the store.
			_, err := env.grants.store.UpdateApproval(context.Background(), ap, func(x *store.ApprovalRecord) error {
				return x.Decide(false, "spiffe://"+identity.DevTrustDomain+"/tenant/acme/human/carol", "raced", time.Now())
			})
			if err != nil {
				t.Errorf("concurrent denial: %v", err)
			}
		})
	})
	status, m := env.decide(identity.DevHumanID, ap, true)
	if status != http.StatusConflict {
		t.Fatalf("approve: %d %v, want 409", status, m)
	}
	recs := env.approvalRecords(ap)
	if got := strings.Join(steps(recs), ","); got != "requested,approved,not_applied" {
		t.Fatalf("approval records = %s, want requested,approved,not_applied", got)
	}
	last := recs[2]
	if get(last, "detail", "intended_state") != "approved" || get(last, "detail", "state") != "denied" || last["error"] == nil {
		t.Errorf("not_applied record = %v", last)
	}
	if status, m := env.call(identity.DevHumanID, "GET", "/v1/approvals/"+ap, "", "", nil); status != 200 || m["state"] != "denied" {
		t.Errorf("approval = %d %v, want the other approver's denial", status, m)
	}
}

// A retry whose "used" record cannot be written does not consume the
// approval: 503, and once the log works again the same retry runs, once.
func TestApprovalUseNotConsumedWithoutAuditRecord(t *testing.T) {
	env, h := startHookedGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(identity.DevHumanID, ap)

	h.set(isStep("used"), nil)
	retry := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, retry.err, http.StatusServiceUnavailable, "audit_unavailable", "audit log")
	if status, m := env.call(identity.DevHumanID, "GET", "/v1/approvals/"+ap, "", "", nil); status != 200 || m["state"] != "approved" {
		t.Fatalf("after an unrecorded use: %d %v, want it still approved", status, m)
	}

	h.set(nil, nil)
	if retry := env.tryChat(identity.DevAppID, "", ap, p); retry.err != nil {
		t.Fatalf("retry once the log works: %v", retry.err)
	}
	again := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, again.err, http.StatusForbidden, "approval_refused", "used")
	if got := strings.Join(steps(env.approvalRecords(ap)), ","); got != "requested,approved,used,refused" {
		t.Errorf("approval records = %s, want requested,approved,used,refused", got)
	}
}

// When another use consumes the approval between the "used" record and the
// store (two replicas, one approval), the store refuses the second and an
// approval.not_applied record follows: the action runs once.
func TestApprovalRacingUseIsRecordedNotApplied(t *testing.T) {
	env, h := startHookedGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(identity.DevHumanID, ap)
	rec, err := env.grants.store.Approval(context.Background(), ap)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	h.set(nil, func(ev *audit.Event) {
		if !isStep("used")(ev) {
			return
		}
		once.Do(func() {
			_, err := env.grants.store.UpdateApproval(context.Background(), ap, func(x *store.ApprovalRecord) error {
				return x.Use(rec.Requester, rec.Digest, "req_other_replica", time.Now())
			})
			if err != nil {
				t.Errorf("concurrent use: %v", err)
			}
		})
	})
	retry := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, retry.err, http.StatusForbidden, "approval_refused", "used")
	recs := env.approvalRecords(ap)
	if got := strings.Join(steps(recs), ","); got != "requested,approved,used,not_applied,refused" {
		t.Fatalf("approval records = %s, want requested,approved,used,not_applied,refused", got)
	}
	if get(recs[3], "detail", "intended_state") != "used" || recs[3]["error"] == nil {
		t.Errorf("not_applied record = %v", recs[3])
	}
}
