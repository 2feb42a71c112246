package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
)

// Human approvals (docs/approvals.md). When a decision carries the
// obligation require_approval, the action is parked: the gateway records an
// approval request bound to a digest of exactly what would execute and
// answers 403 approval_required with the approval's id. A human approves or
// denies it (approval_http.go), and the caller retries the identical action
// with the header ApprovalHeader; the retry executes only if the approval is
// approved, unexpired, unused, the caller's own, and its digest matches. The
// use is atomic in the store, so an approval covers one execution.

// ApprovalOptions turn on human approvals.
type ApprovalOptions struct {
	Store store.Approvals
	// TTL is how long an approval lives, from parking to use; default 15
	// minutes.
	TTL time.Duration
}

const (
	// ApprovalHeader carries the approval id on a retry. It is verified
	// against the store, never trusted as an assertion.
	ApprovalHeader = "Portcullis-Approval"
	// ApprovalIDHeader names the approval a parked action was given.
	ApprovalIDHeader = "Portcullis-Approval-Id"

	codeApprovalRequired = "approval_required"
	codeApprovalRefused  = "approval_refused"
	codeApprovalConflict = "approval_conflict"
)

// approvals is the gateway's approval machinery.
type approvals struct {
	ApprovalOptions
}

func newApprovals(o *ApprovalOptions) (*approvals, error) {
	if o.Store == nil {
		return nil, errors.New("proxy: approvals: no store")
	}
	a := &approvals{ApprovalOptions: *o}
	if a.TTL <= 0 {
		a.TTL = 15 * time.Minute
	}
	return a, nil
}

// parkable is an action whose decision requires an approval: what to park,
// or what a presented approval must match.
type parkable struct {
	c      *caller
	action string        // the policy action
	in     *policy.Input // as decided: grant, chain, user
	d      policy.Decision
	// digest binds the approval to exactly what would execute (actionDigest).
	digest  string
	summary map[string]any // what approvers see
}

// gateResult is the approval step's verdict. A zero gateResult lets the
// action proceed.
type gateResult struct {
	status       int
	code, msg    string
	reason       string // for the decision record
	approvalID   string // the approval parked, or the one presented
	used         bool   // the presented approval was consumed for this action
	originReqID  string // request id of the parked request, when used
	approvalUser string // who approved, when used
}

func (r gateResult) refused() bool { return r.status != 0 }

// approvalGate is the approval step of an action whose decision carries
// require_approval. Without ApprovalHeader it parks the action; with it, it
// consumes the approval if it covers exactly this action. Every outcome is
// audited as an approval record; the caller audits its own decision.
func (g *Gateway) approvalGate(r *http.Request, p *parkable) gateResult {
	if g.approvals == nil {
		return gateResult{status: http.StatusForbidden, code: codePolicyDenied,
			msg:    "this action requires a human approval, and approvals are not enabled on this gateway; it is refused",
			reason: "obligation require_approval not satisfiable"}
	}
	ctx := context.WithoutCancel(r.Context())
	if id := strings.TrimSpace(r.Header.Get(ApprovalHeader)); id != "" {
		return g.useApproval(ctx, p, id)
	}
	return g.park(ctx, p)
}

// park records the approval request and audits it.
func (g *Gateway) park(ctx context.Context, p *parkable) gateResult {
	now := g.clock()
	rec := store.ApprovalRecord{
		ID: newApprovalID(), State: store.ApprovalPending, Tenant: p.c.principal.Tenant, Action: p.action,
		Requester: p.c.principal.ID.String(), RequesterKind: string(p.c.principal.Kind),
		Chain: p.in.Chain, RequestID: p.c.id, Digest: p.digest, Summary: p.summary, Reasons: p.d.Reasons,
		CreatedAt: now, ExpiresAt: now.Add(g.approvals.TTL),
	}
	if p.in.User != nil {
		rec.User = p.in.User.Subject
	}
	if gr := p.in.Grant; gr != nil {
		rec.Task, rec.GrantID = taskKey(gr.Tenant, gr.Task), gr.ID
	}
	if err := g.approvals.Store.CreateApproval(ctx, rec); err != nil {
		g.log.WithError(err).WithField("request_id", p.c.id).Error("approval store unavailable: refusing")
		return gateResult{status: http.StatusServiceUnavailable, code: codeStore, reason: "approval store unavailable",
			msg: "this action requires a human approval, and the gateway cannot record the request for one; try again later"}
	}
	if _, err := g.auditApproval(ctx, p.c, "requested", &rec, nil, nil, ""); err != nil {
		// Unaudited, the approval must not be usable.
		_, _ = g.approvals.Store.UpdateApproval(ctx, rec.ID, func(a *store.ApprovalRecord) error {
			return a.Withdraw(a.Requester, "audit log unavailable", now)
		})
		return gateResult{status: http.StatusServiceUnavailable, code: codeAuditFailed, reason: "audit log unavailable",
			msg: "the gateway cannot record this request in its audit log, so it will not process it; try again later"}
	}
	return gateResult{status: http.StatusForbidden, code: codeApprovalRequired, approvalID: rec.ID,
		reason: "parked for human approval " + rec.ID,
		msg: fmt.Sprintf("this action needs a human approval: it is parked as %s. A human of tenant %s other than you "+
			"and the actors of your task can approve it (portcullis approvals approve %s --reason ...); "+
			"then retry the identical request with the header %s: %s before %s.",
			rec.ID, rec.Tenant, rec.ID, ApprovalHeader, rec.ID, rec.ExpiresAt.UTC().Format(time.RFC3339))}
}

// useApproval consumes approval id for p, atomically, with the use durable
// in the audit log first: the use is tried on the approval as read, the
// "used" step is recorded, and only then does the store consume it (a
// compare-and-swap, so two replicas cannot both use it). If the record
// cannot be written the approval is not consumed (503, and a retry may
// still use it); if the store then refuses (another use got there first,
// or it cannot be reached), an approval.not_applied record follows.
func (g *Gateway) useApproval(ctx context.Context, p *parkable, id string) gateResult {
	requester, now := p.c.principal.ID.String(), g.clock()
	use := func(a *store.ApprovalRecord) error { return a.Use(requester, p.digest, p.c.id, now) }
	rec, err := g.approvals.Store.Approval(ctx, id)
	if err == nil {
		want := rec
		if err = use(&want); err == nil {
			if _, aerr := g.auditApproval(ctx, p.c, "used", &want, nil, nil, ""); aerr != nil {
				return approvalAuditFailed(id)
			}
			got, uerr := g.approvals.Store.UpdateApproval(ctx, id, use)
			if uerr == nil {
				return gateResult{approvalID: id, used: true, originReqID: got.RequestID, approvalUser: got.DecidedBy}
			}
			if got.ID != "" {
				rec = got
			}
			if _, aerr := g.auditApproval(ctx, p.c, "not_applied", &rec, nil, map[string]any{"intended_state": string(want.State)}, uerr.Error()); aerr != nil {
				return approvalAuditFailed(id)
			}
			err = uerr
		}
	}
	var ae *store.ApprovalError
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.auditRefusedUse(ctx, p, id, nil, "no such approval")
		return gateResult{status: http.StatusForbidden, code: codeApprovalRefused, approvalID: id, reason: "approval " + id + " not found",
			msg: "the approval " + id + " presented in " + ApprovalHeader + " does not exist; retry without the header to ask for a new one"}
	case errors.As(err, &ae):
		if ae.Err == store.ErrApprovalExpired && ae.State != store.ApprovalExpired {
			rec = g.settleExpiry(ctx, p.c, rec)
		}
		why := strings.TrimPrefix(ae.Error(), "store: ")
		g.auditRefusedUse(ctx, p, id, &rec, why)
		return gateResult{status: http.StatusForbidden, code: codeApprovalRefused, approvalID: id, reason: why,
			msg: "the approval presented in " + ApprovalHeader + " does not allow this action: " + why +
				"; an approval covers one use of the exact action it was asked for, by the caller who asked"}
	default:
		g.log.WithError(err).WithField("request_id", p.c.id).Error("approval store unavailable: refusing")
		return gateResult{status: http.StatusServiceUnavailable, code: codeStore, approvalID: id, reason: "approval store unavailable",
			msg: "the gateway cannot check the approval, so it refuses rather than guess; try again later"}
	}
}

// approvalAuditFailed refuses a use whose audit record cannot be written.
func approvalAuditFailed(id string) gateResult {
	return gateResult{status: http.StatusServiceUnavailable, code: codeAuditFailed, approvalID: id, reason: "audit log unavailable",
		msg: "the gateway cannot record this request in its audit log, so it will not process it; try again later"}
}

// auditRefusedUse records a refused retry. rec is nil when the approval does
// not exist (or belongs to another tenant, which the caller is not told).
func (g *Gateway) auditRefusedUse(ctx context.Context, p *parkable, id string, rec *store.ApprovalRecord, why string) {
	if rec == nil {
		rec = &store.ApprovalRecord{ID: id}
	}
	_, _ = g.auditApproval(ctx, p.c, "refused", rec, nil, map[string]any{"presented_digest": p.digest, "presented_by": p.c.principal.ID.String()}, why)
}

// auditApproval writes one approval step as an audit record linked to the
// approval and to the request that was parked.
// dec, when not nil, is the approval.decide decision behind the step. It
// returns the record's audit seq.
func (g *Gateway) auditApproval(ctx context.Context, c *caller, step string, rec *store.ApprovalRecord, dec *policy.Decision, extra map[string]any, why string) (uint64, error) {
	d := map[string]any{
		"approval_id":       rec.ID,
		"origin_request_id": rec.RequestID,
		"approval_action":   rec.Action,
		"requester":         rec.Requester,
		"state":             string(rec.State),
		"digest":            rec.Digest,
	}
	switch step {
	case "requested":
		d["summary"], d["expires_at"], d["reasons"] = rec.Summary, rec.ExpiresAt.UTC(), rec.Reasons
		if len(rec.Chain) > 0 {
			d["chain"] = rec.Chain
		}
		if rec.User != "" {
			d["user"] = rec.User
		}
		if rec.Task != "" {
			d["task"], d["grant_id"] = rec.Task, rec.GrantID
		}
	case "approved", "denied", "withdrawn":
		d["decided_by"], d["reason"] = rec.DecidedBy, rec.Reason
	case "used":
		d["decided_by"] = rec.DecidedBy
	}
	for k, v := range extra {
		d[k] = v
	}
	ev := &audit.Event{Type: "approval", RequestID: c.id, Action: "approval." + step,
		Principal: auditPrincipal(c.principal), Detail: d, Error: why}
	if dec != nil {
		ev.Decision = &audit.Decision{Allow: dec.Allow, Reasons: nonNilStrings(dec.Reasons), Revision: dec.Revision, CacheHit: dec.CacheHit}
	}
	seq, err := g.cfg.Audit.Append(ctx, ev)
	if err != nil {
		g.log.WithError(err).WithField("request_id", c.id).Error("audit log unavailable: approval step not recorded")
		return 0, err
	}
	return seq, nil
}

func newApprovalID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "apr_" + hex.EncodeToString(b[:])
}

// actionDigest is the hex HMAC-SHA256, under the gateway's digest key, of
// the fields that make an action what it is: each field length-prefixed, so
// that no two field lists share an encoding. Keyed, so that the audit log's
// digests confirm nothing to a reader without the key.
func actionDigest(key []byte, fields ...[]byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("portcullis approval digest v1\x00"))
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		mac.Write(n[:])
		mac.Write(f)
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// bindingFields are what every action digest includes: who asks, in which
// tenant, for which task and user, through which chain.
func bindingFields(action string, p identity.Principal, in *policy.Input) [][]byte {
	task, user := "", ""
	if in.Grant != nil {
		task = taskKey(in.Grant.Tenant, in.Grant.Task)
	}
	if in.User != nil {
		user = in.User.Subject
	}
	return [][]byte{[]byte(action), []byte(p.ID.String()), []byte(p.Tenant), []byte(task), []byte(user),
		[]byte(strings.Join(in.Chain, "\x00"))}
}

// chatApproval is the approval step of a model call (serveLLM). Its digest
// covers the API path and the client's exact body — model, messages, tools
// and their arguments, max tokens, everything — so that any change asks
// for a new approval.
func (g *Gateway) chatApproval(w http.ResponseWriter, r *http.Request, x *exchange, in *policy.Input) gateResult {
	if !x.decision.Obligations.RequireApproval {
		return gateResult{}
	}
	fields := append(bindingFields(in.Action, x.caller.principal, in), []byte(r.URL.Path), x.clientBody)
	// A commitment to the whole body, prompt included: keyed per tenant
	// like the prompt digest (docs/security-model.md, "Audit digests").
	bodyMAC := hmac.New(sha256.New, g.digestKey(x.caller.principal.Tenant))
	bodyMAC.Write([]byte("portcullis request body v1\x00"))
	bodyMAC.Write(x.clientBody)
	p := &parkable{c: x.caller, action: in.Action, in: in, d: x.decision,
		digest: actionDigest(g.cfg.DigestKey, fields...),
		summary: map[string]any{
			"api": string(x.req.API), "model": x.req.Model, "stream": x.req.Stream, "max_tokens": x.req.MaxTokens,
			"tools": nonNilStrings(x.req.Tools), "messages": x.req.Messages,
			"prompt_digest": x.req.Digest, "body_digest": hex.EncodeToString(bodyMAC.Sum(nil)),
		},
	}
	res := g.approvalGate(r, p)
	if res.approvalID != "" {
		w.Header().Set(ApprovalIDHeader, res.approvalID)
	}
	x.approval = &res
	return res
}

// approvalDetail adds the approval that parked or admitted an exchange to
// its decision record.
func approvalDetail(ev *audit.Event, res *gateResult) {
	if res == nil || res.approvalID == "" {
		return
	}
	if ev.Detail == nil {
		ev.Detail = map[string]any{}
	}
	ev.Detail["approval_id"] = res.approvalID
	if res.used {
		ev.Detail["approval_origin_request_id"] = res.originReqID
		ev.Detail["approved_by"] = res.approvalUser
	}
}
