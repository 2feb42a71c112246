package proxy

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
)

// RateLimit is a token bucket per principal: Rate requests per second on
// average, up to Burst at once.
type RateLimit struct {
	Rate  float64
	Burst int
}

// rateLimiter keeps one bucket per SPIFFE ID, with limits by principal kind.
// Buckets idle long enough to be full again are dropped when the map grows.
type rateLimiter struct {
	limits map[identity.Kind]RateLimit
	clock  func() time.Time
	mu     sync.Mutex
	bucket map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

const maxBuckets = 100_000

func newRateLimiter(limits map[identity.Kind]RateLimit, clock func() time.Time) *rateLimiter {
	if len(limits) == 0 {
		return nil
	}
	return &rateLimiter{limits: limits, clock: clock, bucket: map[string]*tokenBucket{}}
}

// allow takes one token from p's bucket. It returns how long to wait when
// there is none.
func (l *rateLimiter) allow(p identity.Principal) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	lim, ok := l.limits[p.Kind]
	if !ok || lim.Rate <= 0 {
		return true, 0
	}
	burst := float64(max(lim.Burst, 1))
	now := l.clock()
	key := p.ID.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.bucket[key]
	if !ok {
		if len(l.bucket) >= maxBuckets {
			l.sweep(now)
		}
		b = &tokenBucket{tokens: burst, last: now}
		l.bucket[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*lim.Rate)
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / lim.Rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

func (l *rateLimiter) sweep(now time.Time) {
	for k, b := range l.bucket {
		if now.Sub(b.last) > time.Minute {
			delete(l.bucket, k)
		}
	}
}

// allowRate applies the caller's rate limit; over it, it audits and answers
// 429 with Retry-After.
func (g *Gateway) allowRate(w http.ResponseWriter, r *http.Request, a *action) bool {
	ok, wait := g.limiter.allow(a.c.principal)
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	lim := g.limiter.limits[a.c.principal.Kind]
	g.refuseAction(w, r, a, http.StatusTooManyRequests, codeRateLimited,
		fmt.Sprintf("rate limit for %s principals exceeded (%g requests/s, burst %d); retry after %ds", a.c.principal.Kind, lim.Rate, lim.Burst, max(secs, 1)))
	return false
}
