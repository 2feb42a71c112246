package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

// sharedRateLimit gives application principals a limit kept in the
// replica's etcd store.
func sharedRateLimit(lim proxy.RateLimit) func(*proxy.Config, *store.Etcd) {
	return func(c *proxy.Config, st *store.Etcd) {
		c.RateLimits = map[identity.Kind]proxy.RateLimit{identity.KindApplication: lim}
		c.RateState = st
	}
}

// TestReplicasRateLimitShared sends one application's calls through two
// replicas at once: the fleet as a whole lets through its burst (plus what
// the rate refills while the test runs), not a burst per replica. Every
// refusal is a 429 with Retry-After and an audit record. When etcd is cut,
// a call the limit would allow is refused 503 state_unavailable.
func TestReplicasRateLimitShared(t *testing.T) {
	f := newFleet(t)
	lim := proxy.RateLimit{Rate: 1, Burst: 4}
	a, _ := f.replica("a", sharedRateLimit(lim))
	b, _ := f.replica("b", sharedRateLimit(lim))
	const calls = 24
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, got429 int
	)
	start := time.Now()
	for i := range calls {
		env := a
		if i%2 == 1 {
			env = b
		}
		wg.Go(func() {
			_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
			mu.Lock()
			defer mu.Unlock()
			var apiErr *openai.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests && apiErr.Code == "rate_limited":
				got429++
				if s, _ := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); s < 1 {
					t.Errorf("429 with Retry-After %q", apiErr.Response.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("call: %v", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The fleet allows the burst, plus one per second of the test.
	most := lim.Burst + int(elapsed.Seconds()*lim.Rate) + 1
	if ok < lim.Burst || ok > most || ok+got429 != calls {
		t.Errorf("%d of %d calls through two replicas went through, %d refused 429 in %s; want between %d and %d (one replica-local limit each would allow %d)",
			ok, calls, got429, elapsed.Round(time.Millisecond), lim.Burst, most, 2*lim.Burst)
	}
	t.Logf("%d calls through two replicas in %s: %d allowed, %d refused 429 (burst %d, %g/s)", calls, elapsed.Round(time.Millisecond), ok, got429, lim.Burst, lim.Rate)
	refused := 0
	for _, env := range []*gatewayEnv{a, b} {
		for _, r := range env.records() {
			if r["status"] == float64(http.StatusTooManyRequests) {
				refused++
			}
		}
	}
	if refused != got429 {
		t.Errorf("the audit logs hold %d 429 records, want %d", refused, got429)
	}

	// etcd cut: once the allowance has refilled, a call needs etcd to take
	// from it, and is refused rather than let through unlimited.
	time.Sleep(time.Duration(float64(time.Second) / lim.Rate))
	f.etcd.Cut()
	defer f.etcd.Restore(t)
	_, err := a.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("call with etcd cut: %v, want 503", err)
	}
	wantAPIError(t, apiErr, http.StatusServiceUnavailable, "state_unavailable", "rate-limit state")
}
