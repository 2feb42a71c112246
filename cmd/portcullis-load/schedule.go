package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Arrival processes of an open-loop run.
const (
	arrivalPoisson = "poisson" // exponential gaps: independent clients
	arrivalFixed   = "fixed"   // even gaps of 1/rate
)

// schedule hands out the intended send times of an open-loop run: the i-th
// request is due at start + gap_1 + … + gap_i, whatever happened to the
// requests before it. Latency is measured from that time, so a request that
// waits for a free worker (the target is slow) is charged for the wait
// instead of being quietly sent later (coordinated omission).
type schedule struct {
	mu      sync.Mutex
	start   time.Time
	rate    float64 // requests per second
	poisson bool
	rng     *rand.Rand
	i       int           // requests handed out so far
	next    time.Duration // offset from start of request i
	limit   int           // requests to hand out; 0: until end
	end     time.Duration // offset past which nothing is due, when limit is 0
}

func newSchedule(start time.Time, rate float64, arrival string, seed uint64, limit int, length time.Duration) (*schedule, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("rate %v: want requests per second above 0", rate)
	}
	s := &schedule{start: start, rate: rate, limit: limit, end: length}
	switch arrival {
	case arrivalPoisson:
		s.poisson = true
		s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	case arrivalFixed:
	default:
		return nil, fmt.Errorf("unknown arrival %q (want poisson or fixed)", arrival)
	}
	s.next = s.gap(0)
	return s, nil
}

// gap is the offset of request s.i given that of the request before it (at).
func (s *schedule) gap(at time.Duration) time.Duration {
	if s.poisson {
		return at + time.Duration(s.rng.ExpFloat64()/s.rate*float64(time.Second))
	}
	// From the index, not by adding rounded gaps: no drift over long runs.
	return time.Duration(float64(s.i+1) / s.rate * float64(time.Second))
}

// take returns the due time of the next request, or false when the run is
// over: the count is reached, the next request falls past the end, or now
// is already past the end (requests then left unsent are counted by
// missed).
func (s *schedule) take(now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 {
		if s.i >= s.limit {
			return time.Time{}, false
		}
	} else if s.next >= s.end || now.Sub(s.start) >= s.end {
		return time.Time{}, false
	}
	at := s.start.Add(s.next)
	s.i++
	s.next = s.gap(s.next)
	return at, true
}

// missed counts, once the workers have stopped, the requests that were due
// before the end but never sent because every worker was busy.
func (s *schedule) missed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 {
		return s.limit - s.i
	}
	n := 0
	for ; s.next < s.end; n++ {
		s.i++
		s.next = s.gap(s.next)
	}
	return n
}

// openLoop is one worker of an open-loop run: it takes the next due time,
// waits for it, sends, and records latency and TTFB from the due time. A
// worker busy past the next due time makes that request late, and the
// lateness is in its figures.
func (w *worker) openLoop(ctx context.Context, s *schedule, c *http.Client, cfg config, url string, body []byte) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		due, ok := s.take(cfg.Clock())
		if !ok {
			return
		}
		if d := due.Sub(cfg.Clock()); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		lag := cfg.Clock().Sub(due)
		ttfb, err := w.do(ctx, c, cfg, url, body, due)
		if err != nil {
			w.fail(err)
			continue
		}
		w.samples = append(w.samples, sample{latency: cfg.Clock().Sub(due), ttfb: ttfb, lag: lag})
	}
}
