package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is the state the gateway shares between requests (and, with a
// distributed backend, between replicas). Implementations are safe for
// concurrent use.
type Store interface {
	// PutGrant records a minted or delegated grant. If its parent is
	// already revoked, the new grant is recorded as revoked too, in the same
	// transaction.
	PutGrant(ctx context.Context, g GrantRecord) error
	// Grant returns a recorded grant, or an error wrapping ErrNotFound.
	Grant(ctx context.Context, id string) (GrantRecord, error)
	// RevokeGrant revokes the grant and every grant delegated from it,
	// transitively, and returns their ids (the grant's first). Revoking an
	// unknown id records the revocation anyway.
	RevokeGrant(ctx context.Context, id, reason string) ([]string, error)
	// RevokeTask revokes every grant of the task, present and future.
	RevokeTask(ctx context.Context, task, reason string) error
	// IsRevoked reports whether the grant or its task is revoked. It is on
	// the path of every request and answers from memory.
	IsRevoked(ctx context.Context, grantID, task string) (bool, error)
	// Reserve adds tokens to every budget's usage, all or none: if any
	// budget with a positive limit would go over it, nothing changes and the
	// error is a *BudgetError (which wraps ErrBudgetExceeded).
	Reserve(ctx context.Context, budgets []Budget, tokens int64) error
	// Settle adds delta (which may be negative, never below zero) to each
	// key's usage: the difference between a reservation and what was used.
	Settle(ctx context.Context, keys []string, delta int64) error
	// Usage returns the tokens charged to key so far.
	Usage(ctx context.Context, key string) (int64, error)
	Close() error
}

// GrantRecord is what the store keeps of a grant: enough to find its
// descendants and its task.
type GrantRecord struct {
	ID      string    `json:"id"`
	Parent  string    `json:"parent,omitempty"`
	Task    string    `json:"task"`
	Subject string    `json:"subject"`
	Expiry  time.Time `json:"expiry"`
	// MaxTokens is the grant's token budget (0: none of its own).
	MaxTokens int64 `json:"max_tokens,omitempty"`
}

// Budget is a usage counter and its limit (0: count, never refuse).
type Budget struct {
	Key   string
	Limit int64
	// Expires is the latest expiry of every grant that can charge the
	// counter, when the caller knows it: for a grant's own counter
	// ([GrantBudget]), the grant's expiry (its delegates cannot outlive
	// it), the same on every call. Zero when it is not known, as for a
	// task's counter ([TaskBudget]): any grant charging it now expires
	// within MaxGrantTTL, so the counter is kept that long from now.
	Expires time.Time
}

// GrantBudget is the budget counter of a grant, charged by the grant and
// by every grant delegated from it.
func GrantBudget(id string) string { return "grant/" + id }

// TaskBudget is the budget counter of a task, charged by every grant of
// the task. PutGrant keeps it for as long as the recorded grant can be
// used, even before that grant has charged it.
func TaskBudget(task string) string { return "task/" + task }

// Errors.
var (
	ErrNotFound       = errors.New("store: not found")
	ErrUnavailable    = errors.New("store: unavailable")
	ErrBudgetExceeded = errors.New("store: budget exceeded")
)

// BudgetError says which budget a reservation would have exceeded.
type BudgetError struct {
	Key       string
	Used      int64
	Limit     int64
	Requested int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("store: budget %s: %d of %d tokens used, %d more requested", e.Key, e.Used, e.Limit, e.Requested)
}

func (e *BudgetError) Unwrap() error { return ErrBudgetExceeded }

// Expiry. Grant records, revocations, approvals and budget counters are
// deleted once they can no longer matter, Retention after:
//
//   - a grant record (and its parent link): its expiry;
//   - a grant's revocation: the expiry of the grant (so a revoked grant is
//     refused for as long as any verifier, allowing for clock leeway, could
//     still accept it); a revocation of a grant the store has no record of:
//     now plus MaxGrantTTL;
//   - a task's revocation: now plus MaxGrantTTL, when every grant of the
//     task minted before it has expired (after that the task's name may be
//     used again);
//   - an approval: its ExpiresAt, whatever its state;
//   - a published grant key: its NotAfter;
//   - a budget counter: the Expires of the latest Reserve that charged it,
//     or, when that was zero, the time of the latest Reserve, Settle or
//     (for a [TaskBudget]) PutGrant of a grant of the task, plus
//     MaxGrantTTL. So a counter never goes, and a budget never starts
//     again from zero, while a grant that charges it can still be used.
//     Counters written before counters expired are kept.
//
// Retention must be at least the verifiers' clock leeway plus the clock
// difference between replicas; MaxGrantTTL at least the longest grant TTL
// ever issued.
const (
	DefaultRetention   = 10 * time.Minute
	DefaultMaxGrantTTL = 15 * time.Minute
)

// budgetDue is when a counter charged now for b may go.
func budgetDue(b Budget, now time.Time, retention, maxTTL time.Duration) time.Time {
	if b.Expires.IsZero() {
		return now.Add(maxTTL + retention)
	}
	return b.Expires.Add(retention)
}

func expiryDefaults(retention, maxTTL time.Duration) (time.Duration, time.Duration) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if maxTTL <= 0 {
		maxTTL = DefaultMaxGrantTTL
	}
	return retention, maxTTL
}
