package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Approvals keeps approval requests: actions that policy parked until a
// human approves them. Every method takes a context; a backend that cannot
// answer returns an error wrapping ErrUnavailable, and the gateway then
// refuses the action (fails closed).
//
// The state machine lives in ApprovalRecord's methods (Decide, Withdraw,
// Use, Expire), so that every backend applies the same rules; a backend
// only has to store records and apply a change atomically.
type Approvals interface {
	// CreateApproval records a new approval request. An id already in use
	// is an error wrapping ErrExists.
	CreateApproval(ctx context.Context, a ApprovalRecord) error
	// Approval returns a record, or an error wrapping ErrNotFound.
	Approval(ctx context.Context, id string) (ApprovalRecord, error)
	// ListApprovals returns the records that match f, oldest first.
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]ApprovalRecord, error)
	// UpdateApproval applies change to the record atomically and returns
	// the record as stored afterwards. The record as change left it is
	// stored even when change returns an error (a Use that finds the
	// approval expired records the expiry and reports it); change must be
	// a pure function of the record, as a backend may call it again when
	// another writer got there first.
	UpdateApproval(ctx context.Context, id string, change func(*ApprovalRecord) error) (ApprovalRecord, error)
}

// ApprovalState is where an approval is in its life.
type ApprovalState string

// Approval states. Pending and approved approvals past their expiry are
// expired, whether or not the store has recorded it yet (see Effective).
const (
	ApprovalPending   ApprovalState = "pending"
	ApprovalApproved  ApprovalState = "approved"
	ApprovalDenied    ApprovalState = "denied"
	ApprovalUsed      ApprovalState = "used"
	ApprovalWithdrawn ApprovalState = "withdrawn"
	ApprovalExpired   ApprovalState = "expired"
)

// Valid reports whether s is one of the states above.
func (s ApprovalState) Valid() bool {
	switch s {
	case ApprovalPending, ApprovalApproved, ApprovalDenied, ApprovalUsed, ApprovalWithdrawn, ApprovalExpired:
		return true
	}
	return false
}

// ApprovalRecord is one parked action and what became of it.
type ApprovalRecord struct {
	ID     string        `json:"id"`
	State  ApprovalState `json:"state"`
	Tenant string        `json:"tenant"`
	// Action is the parked policy action ("llm.invoke", "tool.call", ...).
	Action string `json:"action"`
	// Requester is the SPIFFE ID of the caller whose action is parked;
	// RequesterKind its principal kind.
	Requester     string `json:"requester"`
	RequesterKind string `json:"requester_kind"`
	// User is the subject of the user the caller acts for, if any; Chain
	// the actors of its grant, oldest first; Task the grant's task key and
	// GrantID the grant presented.
	User    string   `json:"user,omitempty"`
	Chain   []string `json:"chain,omitempty"`
	Task    string   `json:"task,omitempty"`
	GrantID string   `json:"grant_id,omitempty"`
	// RequestID is the id of the request that was parked.
	RequestID string `json:"request_id"`
	// Digest is the hex digest of exactly what would execute; only a retry
	// with the same digest may use the approval.
	Digest string `json:"digest"`
	// Summary is what approvers see of the action (model, tools, argument
	// digests…); it is informative, Digest is what binds.
	Summary map[string]any `json:"summary,omitempty"`
	// Reasons are the policy's reasons for the parked decision.
	Reasons   []string  `json:"reasons,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`

	// DecidedBy is the SPIFFE ID of the human who approved or denied (or
	// the requester who withdrew), with their reason.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// UsedAt and UsedBy record the single use: when, and by which request.
	UsedAt time.Time `json:"used_at,omitzero"`
	UsedBy string    `json:"used_by,omitempty"`
}

// ApprovalFilter selects approvals; empty fields match everything.
type ApprovalFilter struct {
	Tenant string
	State  ApprovalState
	// Now, when not zero, makes State match the effective state at Now
	// (a pending approval past its expiry matches "expired").
	Now time.Time
}

// Match reports whether a matches f.
func (f ApprovalFilter) Match(a *ApprovalRecord) bool {
	if f.Tenant != "" && a.Tenant != f.Tenant {
		return false
	}
	if f.State == "" {
		return true
	}
	st := a.State
	if !f.Now.IsZero() {
		st = a.Effective(f.Now)
	}
	return st == f.State
}

// Approval errors. An *ApprovalError wraps one of them.
var (
	ErrExists = errors.New("store: already exists")
	// ErrApprovalExpired: the approval's time ran out.
	ErrApprovalExpired = errors.New("approval expired")
	// ErrApprovalState: the approval is not in a state that allows the step
	// (deciding twice, using a pending, denied, withdrawn or used approval).
	ErrApprovalState = errors.New("approval is not in a state for this")
	// ErrApprovalMismatch: the retried action or caller is not the one
	// approved.
	ErrApprovalMismatch = errors.New("approval does not cover this action")
)

// ApprovalError says why a step on an approval was refused.
type ApprovalError struct {
	ID    string
	State ApprovalState // the state the approval was found in
	Err   error         // ErrApprovalExpired, ErrApprovalState or ErrApprovalMismatch
	// Detail says what did not match, or which step was refused.
	Detail string
}

func (e *ApprovalError) Error() string {
	s := fmt.Sprintf("store: approval %s (%s): %v", e.ID, e.State, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *ApprovalError) Unwrap() error { return e.Err }

// Effective is the state at now: a pending or approved approval past its
// expiry is expired.
func (a *ApprovalRecord) Effective(now time.Time) ApprovalState {
	if (a.State == ApprovalPending || a.State == ApprovalApproved) && !now.Before(a.ExpiresAt) {
		return ApprovalExpired
	}
	return a.State
}

func (a *ApprovalRecord) fail(err error, detail string) error {
	return &ApprovalError{ID: a.ID, State: a.State, Err: err, Detail: detail}
}

// expireIfDue moves a due pending or approved approval to expired and
// reports the expiry as an error; the error's State is the state it was
// found in, so a caller can tell an expiry it caused from an old one.
func (a *ApprovalRecord) expireIfDue(now time.Time) error {
	if a.Effective(now) == ApprovalExpired && a.State != ApprovalExpired {
		err := a.fail(ErrApprovalExpired, "expired at "+a.ExpiresAt.UTC().Format(time.RFC3339))
		a.State = ApprovalExpired
		return err
	}
	if a.State == ApprovalExpired {
		return a.fail(ErrApprovalExpired, "expired at "+a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// Expire records the expiry of a due approval. It returns an error wrapping
// ErrApprovalState if the approval is not due (or already settled).
func (a *ApprovalRecord) Expire(now time.Time) error {
	if a.State != ApprovalExpired && a.Effective(now) == ApprovalExpired {
		a.State = ApprovalExpired
		return nil
	}
	return a.fail(ErrApprovalState, "not due to expire")
}

// Decide approves or denies a pending approval. The caller has already
// checked, through policy, that by may decide it.
func (a *ApprovalRecord) Decide(approve bool, by, reason string, now time.Time) error {
	if err := a.expireIfDue(now); err != nil {
		return err
	}
	if a.State != ApprovalPending {
		return a.fail(ErrApprovalState, "only a pending approval can be decided")
	}
	a.State = ApprovalDenied
	if approve {
		a.State = ApprovalApproved
	}
	a.DecidedBy, a.DecidedAt, a.Reason = by, now, reason
	return nil
}

// Withdraw cancels a pending or approved, unused approval on behalf of its
// requester.
func (a *ApprovalRecord) Withdraw(by, reason string, now time.Time) error {
	if err := a.expireIfDue(now); err != nil {
		return err
	}
	if by != a.Requester {
		return a.fail(ErrApprovalMismatch, "only the requester may withdraw it")
	}
	if a.State != ApprovalPending && a.State != ApprovalApproved {
		return a.fail(ErrApprovalState, "only a pending or approved approval can be withdrawn")
	}
	a.State = ApprovalWithdrawn
	a.DecidedBy, a.DecidedAt, a.Reason = by, now, reason
	return nil
}

// Use consumes an approved, unexpired approval for the retry requestID of
// requester, whose action has the given digest. It is single use: the
// approval is used from then on, whatever becomes of the action.
func (a *ApprovalRecord) Use(requester, digest, requestID string, now time.Time) error {
	if err := a.expireIfDue(now); err != nil {
		return err
	}
	switch a.State {
	case ApprovalApproved:
	case ApprovalUsed:
		return a.fail(ErrApprovalState, "already used by request "+a.UsedBy)
	default:
		return a.fail(ErrApprovalState, "it is "+string(a.State)+", not approved")
	}
	if requester != a.Requester {
		return a.fail(ErrApprovalMismatch, "it was requested by another caller")
	}
	if digest != a.Digest {
		return a.fail(ErrApprovalMismatch, "the action differs from the one approved")
	}
	a.State, a.UsedAt, a.UsedBy = ApprovalUsed, now, requestID
	return nil
}
