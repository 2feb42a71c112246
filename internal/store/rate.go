package store

import (
	"context"
	"math"
	"sync"
	"time"
)

// Rate is a request limit: PerSecond requests per second on average, up to
// Burst at once.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimiter decides requests against per-key rate limits. [Bolt] and
// [LocalRates] keep the state in this process; [Etcd] shares it between
// replicas, so a key gets its rate across the whole fleet.
type RateLimiter interface {
	// AllowRate takes one request from key's allowance under r. When there
	// is none it returns false and how long until there will be. A backend
	// that cannot answer returns an error wrapping ErrUnavailable, and the
	// caller refuses the request (fails closed).
	AllowRate(ctx context.Context, key string, r Rate) (bool, time.Duration, error)
}

// The limit is GCRA (the generic cell rate algorithm): each key keeps one
// value, its theoretical arrival time (TAT), the time at which its
// allowance would be full again. With emission interval T = 1/PerSecond, a
// request at now is allowed when max(TAT, now) + T - now <= Burst·T, and
// then sets TAT to max(TAT, now) + T. A key whose TAT has passed is the same
// as a key never seen, so state may be dropped once now > TAT.

// gcra applies one request at now (unix nanoseconds) to a key whose TAT is
// tat (0: none) and returns whether it is allowed, the new TAT, and the wait
// when it is not.
func gcra(tat, now int64, r Rate) (bool, int64, time.Duration) {
	t := emission(r)
	burst := int64(max(r.Burst, 1))
	next := max(tat, now) + t
	allowAt := next - satMul(burst, t)
	if now < allowAt {
		return false, tat, time.Duration(allowAt - now)
	}
	return true, next, 0
}

// emission is 1/PerSecond in nanoseconds, at least 1.
func emission(r Rate) int64 {
	if r.PerSecond <= 0 {
		return 1
	}
	return max(int64(math.Round(float64(time.Second)/r.PerSecond)), 1)
}

func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// LocalRates is a RateLimiter in this process's memory: the shared state of
// a single gateway. It never fails. Keys whose TAT has passed are dropped
// when the map grows past MaxKeys.
type LocalRates struct {
	clock func() time.Time
	mu    sync.Mutex
	tat   map[string]int64
}

// maxLocalRateKeys bounds LocalRates before it drops idle keys.
const maxLocalRateKeys = 100_000

var _ RateLimiter = (*LocalRates)(nil)

// NewLocalRates returns an empty in-memory limiter reading time from clock
// (time.Now when nil).
func NewLocalRates(clock func() time.Time) *LocalRates {
	if clock == nil {
		clock = time.Now
	}
	return &LocalRates{clock: clock, tat: map[string]int64{}}
}

// AllowRate implements RateLimiter.
func (l *LocalRates) AllowRate(_ context.Context, key string, r Rate) (bool, time.Duration, error) {
	now := l.clock().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, seen := l.tat[key]
	ok, next, wait := gcra(tat, now, r)
	if ok {
		if !seen && len(l.tat) >= maxLocalRateKeys {
			l.sweepLocked(now)
		}
		l.tat[key] = next
	}
	return ok, wait, nil
}

func (l *LocalRates) sweepLocked(now int64) {
	for k, tat := range l.tat {
		if tat < now {
			delete(l.tat, k)
		}
	}
}
