package proxy

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// RateLimit is a limit per principal: Rate requests per second on average,
// up to Burst at once (GCRA, the continuous form of a token bucket).
type RateLimit struct {
	Rate  float64
	Burst int
}

// rateLimiter applies limits by principal kind to one allowance per SPIFFE
// ID, kept in a store.RateLimiter: this process's memory by default, or
// etcd, where every replica draws on the same allowance.
type rateLimiter struct {
	limits map[identity.Kind]RateLimit
	state  store.RateLimiter
}

func newRateLimiter(limits map[identity.Kind]RateLimit, state store.RateLimiter, clock func() time.Time) *rateLimiter {
	if len(limits) == 0 {
		return nil
	}
	if state == nil {
		state = store.NewLocalRates(clock)
	}
	return &rateLimiter{limits: limits, state: state}
}

// take takes one request from p's allowance. It returns how long to wait
// when there is none, and an error wrapping store.ErrUnavailable when the
// shared state cannot answer (the caller refuses: fail closed).
func (l *rateLimiter) take(ctx context.Context, p identity.Principal) (bool, time.Duration, error) {
	if l == nil {
		return true, 0, nil
	}
	lim, ok := l.limits[p.Kind]
	if !ok || lim.Rate <= 0 {
		return true, 0, nil
	}
	return l.state.AllowRate(ctx, p.ID.String(), store.Rate{PerSecond: lim.Rate, Burst: lim.Burst})
}

// allowRate applies the caller's rate limit; over it, it audits and answers
// 429 with Retry-After. When the shared rate-limit state cannot answer it
// audits and answers 503 state_unavailable.
func (g *Gateway) allowRate(w http.ResponseWriter, r *http.Request, a *action) bool {
	ok, wait, err := g.limiter.take(r.Context(), a.c.principal)
	if err != nil {
		g.log.WithError(err).WithField("request_id", a.c.id).Error("rate-limit state unavailable: refusing")
		a.d.Allow = false
		g.refuseAction(w, r, a, http.StatusServiceUnavailable, codeStore,
			"the gateway cannot reach its shared rate-limit state, so it refuses rather than guess; try again later")
		return false
	}
	if ok {
		return true
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	lim := g.limiter.limits[a.c.principal.Kind]
	g.refuseAction(w, r, a, http.StatusTooManyRequests, codeRateLimited,
		fmt.Sprintf("rate limit for %s principals exceeded (%g requests/s, burst %d); retry after %ds", a.c.principal.Kind, lim.Rate, lim.Burst, secs))
	return false
}
