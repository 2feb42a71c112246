package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// Token budgets. A grant's scopes.max_tokens is the total its holder may
// spend, shared with the grants delegated from it: a call is charged to its
// grant, every ancestor grant and the task. Before forwarding, the gateway
// reserves the most the call can cost (an estimate of the prompt, bytes/4,
// plus the output cap) against every budget at once; a call that would go
// over is refused with 429. A call without an output cap is given one that
// fits the remaining budget. When the call completes, the reservation is
// settled to the usage the provider reported.

// reserveBudget reserves tokens for x. It returns a client message when the
// budget refuses (429) and an error when the store cannot answer (503).
func (g *Gateway) reserveBudget(ctx context.Context, x *exchange) (string, error) {
	tc := x.task
	if tc == nil || tc.grant == nil || g.grants == nil || x.req.API == APICountTokens {
		return "", nil // a count spends no tokens: nothing to reserve or settle
	}
	gr := tc.grant
	budgets := []store.Budget{{Key: store.GrantBudget(gr.ID), Limit: int64(gr.Scopes.MaxTokens), Expires: gr.ExpiresAt()}}
	parent := gr.Parent
	for i := 0; parent != "" && i <= g.grants.MaxDepth; i++ {
		rec, err := g.grants.Store.Grant(ctx, parent)
		if err != nil {
			return "", err
		}
		budgets = append(budgets, store.Budget{Key: store.GrantBudget(rec.ID), Limit: rec.MaxTokens, Expires: rec.Expiry})
		parent = rec.Parent
	}
	budgets = append(budgets, store.Budget{Key: store.TaskBudget(taskKey(gr.Tenant, gr.Task))})
	keys := make([]string, len(budgets))
	remaining, limited, tightest := int64(0), false, ""
	for i, b := range budgets {
		keys[i] = b.Key
		if b.Limit <= 0 {
			continue
		}
		used, err := g.grants.Store.Usage(ctx, b.Key)
		if err != nil {
			return "", err
		}
		if left := b.Limit - used; !limited || left < remaining {
			remaining, limited, tightest = left, true, fmt.Sprintf("%s has used %d of its %d tokens", b.Key, used, b.Limit)
		}
	}
	prompt := int64(x.req.PromptBytes/4 + 1)
	out := int64(x.req.MaxTokens)
	// A cap the client chose is the client's to lower; one that came from
	// policy (capTokens) or none at all is lowered to fit.
	clientCap := out > 0 && x.capTokens == 0
	if limited {
		switch {
		case remaining <= prompt:
			return fmt.Sprintf("token budget exhausted: %s; this request needs about %d", tightest, prompt), nil
		case clientCap && prompt+out > remaining:
			return fmt.Sprintf("token budget would be exceeded: %s; this request may use up to %d (lower max_tokens to at most %d)",
				tightest, prompt+out, remaining-prompt), nil
		case out == 0 || prompt+out > remaining:
			out = remaining - prompt
			x.capTokens, x.req.MaxTokens = int(out), int(out)
		}
	}
	need := prompt + out
	if err := g.grants.Store.Reserve(ctx, budgets, need); err != nil {
		var be *store.BudgetError
		if errors.As(err, &be) {
			return fmt.Sprintf("token budget would be exceeded: %s has used %d of its %d tokens; this request may use up to %d",
				be.Key, be.Used, be.Limit, be.Requested), nil
		}
		return "", err
	}
	tc.budgetKeys, tc.reserved = keys, need
	return "", nil
}

// settleBudget replaces x's reservation by its reported usage. Without a
// usage report the reservation stands: the budget errs on the safe side.
func (g *Gateway) settleBudget(ctx context.Context, x *exchange) {
	tc := x.task
	if tc == nil || len(tc.budgetKeys) == 0 || x.usage == nil {
		return
	}
	keys, delta := tc.budgetKeys, int64(x.usage.TotalTokens)-tc.reserved
	tc.budgetKeys, tc.reserved = nil, 0
	if err := g.grants.Store.Settle(context.WithoutCancel(ctx), keys, delta); err != nil {
		g.log.WithError(err).WithField("request_id", x.caller.id).Error("budget: usage not settled; the reservation stands")
	}
}

// releaseBudget gives back x's whole reservation, for a request refused
// after it was made: nothing was sent, so nothing will be spent. A failure
// is logged; the reservation then stands, erring on the safe side.
func (g *Gateway) releaseBudget(ctx context.Context, x *exchange) {
	tc := x.task
	if tc == nil || len(tc.budgetKeys) == 0 {
		return
	}
	keys, delta := tc.budgetKeys, -tc.reserved
	tc.budgetKeys, tc.reserved = nil, 0
	if err := g.grants.Store.Settle(context.WithoutCancel(ctx), keys, delta); err != nil {
		g.log.WithError(err).WithField("request_id", x.caller.id).Error("budget: reservation of a refused request not released; it stands")
	}
}

// budgetRefusal maps reserveBudget's outcome to a response.
func budgetRefusal(msg string, err error) (status int, code, out string) {
	if err != nil {
		return http.StatusServiceUnavailable, codeStore, "the gateway cannot reach its budget state, so it refuses rather than guess; try again later"
	}
	return http.StatusTooManyRequests, codeBudget, msg
}
