package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
)

// The approvals API (docs/approvals.md):
//
//	GET    /v1/approvals?tenant=&state=   humans: the tenant's approvals
//	GET    /v1/approvals/{id}             the requester, or a human of the tenant
//	POST   /v1/approvals/{id}/approve     {"reason": "..."}; decided by policy (approval.decide)
//	POST   /v1/approvals/{id}/deny        {"reason": "..."}; decided by policy (approval.decide)
//	DELETE /v1/approvals/{id}             the requester withdraws it
//
// The approver is the caller's own SVID, nothing else: a grant or user
// token sent along is ignored, so a workload relaying a human's token is
// still a workload.

func (g *Gateway) registerApprovalRoutes() {
	g.mux.HandleFunc("GET /v1/approvals", g.listApprovals)
	g.mux.HandleFunc("GET /v1/approvals/{id}", g.getApproval)
	g.mux.HandleFunc("POST /v1/approvals/{id}/approve", func(w http.ResponseWriter, r *http.Request) { g.decideApproval(w, r, true) })
	g.mux.HandleFunc("POST /v1/approvals/{id}/deny", func(w http.ResponseWriter, r *http.Request) { g.decideApproval(w, r, false) })
	g.mux.HandleFunc("DELETE /v1/approvals/{id}", g.withdrawApproval)
}

// approvalList is the body of GET /v1/approvals.
type approvalList struct {
	Object string                 `json:"object"` // "list"
	Data   []store.ApprovalRecord `json:"data"`
}

// decideBody is the body of approve, deny and withdraw.
type decideBody struct {
	Reason string `json:"reason"`
}

const maxReason = 1000

func (g *Gateway) listApprovals(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	if c.principal.Kind != identity.KindHuman {
		g.approvalError(w, c, http.StatusForbidden, codePolicyDenied, "only human principals list approvals; a requester can read its own at GET /v1/approvals/{id}")
		return
	}
	q := r.URL.Query()
	f := store.ApprovalFilter{Tenant: q.Get("tenant"), State: store.ApprovalState(q.Get("state")), Now: g.clock()}
	if f.Tenant == "" {
		f.Tenant = c.principal.Tenant
	}
	if f.Tenant != c.principal.Tenant {
		g.approvalError(w, c, http.StatusForbidden, codePolicyDenied, "you may only list the approvals of your own tenant, "+c.principal.Tenant)
		return
	}
	if f.State != "" && !f.State.Valid() {
		g.approvalError(w, c, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("unknown state %q: use pending, approved, denied, used, withdrawn or expired", f.State))
		return
	}
	list, err := g.approvals.Store.ListApprovals(r.Context(), f)
	if err != nil {
		g.approvalStoreError(w, c, err)
		return
	}
	for i := range list {
		list[i] = g.settleExpiry(r.Context(), c, list[i])
	}
	writeJSON(w, http.StatusOK, approvalList{Object: "list", Data: nonNilApprovals(list)})
}

func nonNilApprovals(l []store.ApprovalRecord) []store.ApprovalRecord {
	if l == nil {
		return []store.ApprovalRecord{}
	}
	return l
}

// settleExpiry records, and audits, the expiry of a due approval the first
// time the gateway comes across it. On any failure it returns a with its
// effective state, unrecorded.
func (g *Gateway) settleExpiry(ctx context.Context, c *caller, a store.ApprovalRecord) store.ApprovalRecord {
	now := g.clock()
	if a.State == store.ApprovalExpired || a.Effective(now) != store.ApprovalExpired {
		return a
	}
	rec, err := g.approvals.Store.UpdateApproval(context.WithoutCancel(ctx), a.ID, func(x *store.ApprovalRecord) error { return x.Expire(now) })
	if err != nil {
		a.State = store.ApprovalExpired
		return a
	}
	_, _ = g.auditApproval(ctx, c, "expired", &rec, nil, nil, "")
	return rec
}

func (g *Gateway) getApproval(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	a, ok := g.loadApproval(w, r, c)
	if !ok {
		return
	}
	mayRead := a.Requester == c.principal.ID.String() ||
		c.principal.Kind == identity.KindHuman && c.principal.Tenant == a.Tenant
	if !mayRead {
		g.approvalError(w, c, http.StatusNotFound, codeNotFound, "no approval "+a.ID)
		return
	}
	writeJSON(w, http.StatusOK, g.settleExpiry(r.Context(), c, a))
}

// loadApproval reads the approval named in the path; on failure it has
// answered.
func (g *Gateway) loadApproval(w http.ResponseWriter, r *http.Request, c *caller) (store.ApprovalRecord, bool) {
	id := pathSegment(r, 3) // /v1/approvals/{id}…
	a, err := g.approvals.Store.Approval(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		g.approvalError(w, c, http.StatusNotFound, codeNotFound, "no approval "+id)
		return a, false
	}
	if err != nil {
		g.approvalStoreError(w, c, err)
		return a, false
	}
	return a, true
}

// decideApproval approves or denies: policy decides whether the caller may
// (approval.decide), then the store moves the approval, if still pending.
func (g *Gateway) decideApproval(w http.ResponseWriter, r *http.Request, approve bool) {
	c := callerFrom(r.Context())
	var body decideBody
	if err := decodeJSON(w, r, &body); err != nil {
		g.approvalError(w, c, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	body.Reason = strings.TrimSpace(body.Reason)
	if body.Reason == "" || len(body.Reason) > maxReason {
		g.approvalError(w, c, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("a reason is required (up to %d bytes)", maxReason))
		return
	}
	a, ok := g.loadApproval(w, r, c)
	if !ok {
		return
	}
	in := &policy.Input{
		Action:    "approval.decide",
		Principal: policyPrincipal(c.principal),
		Chain:     a.Chain,
		Approval:  &policy.Approval{ID: a.ID, Requester: a.Requester, Tenant: a.Tenant, Action: a.Action, User: a.User},
	}
	ctx := context.WithoutCancel(r.Context())
	d, err := g.cfg.Policy.Decide(r.Context(), in)
	if err != nil || !d.Allow {
		msg := "denied by policy: " + strings.Join(d.Reasons, "; ")
		code := codePolicyDenied
		if err != nil {
			d.Allow, d.Reasons = false, []string{"policy evaluation failed"}
			msg, code = "the policy engine could not decide, so you may not decide this approval (decision id "+c.id+")", codePolicyError
		}
		seq, aerr := g.auditApproval(ctx, c, "decision_refused", &a, &d, map[string]any{"verdict": verdict(approve), "reason": body.Reason}, msg)
		if aerr != nil {
			g.auditUnavailable(w, c.id, aerr)
			return
		}
		setAuditSeq(w, seq)
		g.approvalError(w, c, http.StatusForbidden, code, msg)
		return
	}
	now, by := g.clock(), c.principal.ID.String()
	rec, ok := g.applyApprovalStep(ctx, w, c, a, &d, func(x *store.ApprovalRecord) error {
		return x.Decide(approve, by, body.Reason, now)
	})
	if ok {
		writeJSON(w, http.StatusOK, rec)
	}
}

// applyApprovalStep moves approval a (as read) by change, a human's
// decision or a withdrawal, with its audit record durable first: change is
// tried on a copy, the step it leads to is recorded, and only then is the
// store changed. So the store never holds a step the log lacks: if the
// record cannot be written the step is not applied (503); if the store
// then refuses the change (another writer got there first, or it cannot
// be reached), an approval.not_applied record says so before the caller
// hears of it. On failure it has answered.
func (g *Gateway) applyApprovalStep(ctx context.Context, w http.ResponseWriter, c *caller, a store.ApprovalRecord, dec *policy.Decision, change func(*store.ApprovalRecord) error) (store.ApprovalRecord, bool) {
	want := a
	if err := change(&want); err != nil {
		// Not possible from the state read: nothing was decided. An expiry
		// found on the way is recorded as such.
		var ae *store.ApprovalError
		if errors.As(err, &ae) && ae.Err == store.ErrApprovalExpired && ae.State != store.ApprovalExpired {
			g.settleExpiry(ctx, c, a)
		}
		g.approvalStepError(w, c, &a, err)
		return a, false
	}
	seq, aerr := g.auditApproval(ctx, c, string(want.State), &want, dec, nil, "")
	if aerr != nil {
		g.auditUnavailable(w, c.id, aerr)
		return a, false
	}
	setAuditSeq(w, seq)
	rec, err := g.approvals.Store.UpdateApproval(ctx, a.ID, change)
	if err == nil {
		return rec, true
	}
	if rec.ID == "" {
		rec = a // the store could not say how it stands
	}
	seq, aerr = g.auditApproval(ctx, c, "not_applied", &rec, nil, map[string]any{"intended_state": string(want.State)}, err.Error())
	if aerr != nil {
		g.auditUnavailable(w, c.id, aerr) // and no AuditSeqHeader: the step was not applied
		return rec, false
	}
	setAuditSeq(w, seq)
	g.approvalStepError(w, c, &rec, err)
	return rec, false
}

func verdict(approve bool) string {
	if approve {
		return "approve"
	}
	return "deny"
}

// withdrawApproval lets the requester cancel an approval before its use.
func (g *Gateway) withdrawApproval(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	var body decideBody
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &body); err != nil {
			g.approvalError(w, c, http.StatusBadRequest, codeBadRequest, err.Error())
			return
		}
	}
	if len(body.Reason) > maxReason {
		g.approvalError(w, c, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("the reason is longer than %d bytes", maxReason))
		return
	}
	a, ok := g.loadApproval(w, r, c)
	if !ok {
		return
	}
	if a.Requester != c.principal.ID.String() {
		g.approvalError(w, c, http.StatusNotFound, codeNotFound, "no approval "+a.ID+" of yours")
		return
	}
	now, by := g.clock(), c.principal.ID.String()
	rec, ok := g.applyApprovalStep(context.WithoutCancel(r.Context()), w, c, a, nil, func(x *store.ApprovalRecord) error {
		return x.Withdraw(by, body.Reason, now)
	})
	if ok {
		writeJSON(w, http.StatusOK, rec)
	}
}

// approvalStepError answers a refused state change: 409 when the approval
// is not in a state for it, 503 when the store cannot answer.
func (g *Gateway) approvalStepError(w http.ResponseWriter, c *caller, rec *store.ApprovalRecord, err error) {
	var ae *store.ApprovalError
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.approvalError(w, c, http.StatusNotFound, codeNotFound, "no approval "+rec.ID)
	case errors.As(err, &ae):
		g.approvalError(w, c, http.StatusConflict, codeApprovalConflict, strings.TrimPrefix(ae.Error(), "store: "))
	default:
		g.approvalStoreError(w, c, err)
	}
}

func (g *Gateway) approvalStoreError(w http.ResponseWriter, c *caller, err error) {
	g.log.WithError(err).WithField("request_id", c.id).Error("approval store unavailable: refusing")
	g.approvalError(w, c, http.StatusServiceUnavailable, codeStore, "the gateway cannot reach its approval state; try again later")
}

func (g *Gateway) approvalError(w http.ResponseWriter, c *caller, status int, code, msg string) {
	writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: c.id, Shape: shapeOpenAI})
}
