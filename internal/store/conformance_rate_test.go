package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testRateLimitShared sends 40 requests for one key at one instant, half
// through each replica: exactly Burst go through, whatever replica they
// reach. Then time lets exactly one more in per emission interval, and the
// wait of a refusal says when.
func testRateLimitShared(t *testing.T, be backend) {
	ctx := context.Background()
	a, b, clk := be.open(t, suiteOptions{})
	clk.Freeze()
	r := Rate{PerSecond: 2, Burst: 5}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			ok, wait, err := s.AllowRate(ctx, "spiffe://td/agent/x", r)
			switch {
			case err != nil:
				t.Errorf("AllowRate: %v", err)
			case ok:
				allowed.Add(1)
			case wait <= 0 || wait > 500*time.Millisecond:
				t.Errorf("refused with wait %s, want (0, 500ms]", wait)
			}
		})
	}
	wg.Wait()
	if got, want := allowed.Load(), int64(r.Burst); got != want {
		t.Errorf("got %d of 40 requests at one instant allowed, want the burst %d", got, want)
	}
	// Another key has its own allowance.
	if ok, _, err := b.AllowRate(ctx, "spiffe://td/agent/y", r); !ok || err != nil {
		t.Errorf("other key: got %v, %v; want allowed", ok, err)
	}
	// Half an emission interval later: still refused, wait 250ms.
	clk.Advance(250 * time.Millisecond)
	if ok, wait, err := a.AllowRate(ctx, "spiffe://td/agent/x", r); ok || err != nil || wait != 250*time.Millisecond {
		t.Errorf("after 250ms: got %v, %s, %v; want refused with wait 250ms", ok, wait, err)
	}
	// One interval after the burst: exactly one more, on either replica.
	clk.Advance(250 * time.Millisecond)
	n := 0
	for _, s := range []sharedStore{b, a, b, a} {
		if ok, _, err := s.AllowRate(ctx, "spiffe://td/agent/x", r); err != nil {
			t.Fatal(err)
		} else if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("one interval later: got %d allowed, want 1", n)
	}
	// Idle for longer than Burst intervals: the full burst again.
	clk.Advance(10 * time.Second)
	n = 0
	for i := range 10 {
		s := a
		if i%2 == 1 {
			s = b
		}
		if ok, _, err := s.AllowRate(ctx, "spiffe://td/agent/x", r); err != nil {
			t.Fatal(err)
		} else if ok {
			n++
		}
	}
	if n != r.Burst {
		t.Errorf("after idling: got %d allowed, want %d", n, r.Burst)
	}
}

func TestGCRA(t *testing.T) {
	r := Rate{PerSecond: 10, Burst: 3} // T = 100ms
	const ms = int64(time.Millisecond)
	tests := []struct {
		name     string
		tat, now int64
		ok       bool
		next     int64
		wait     time.Duration
	}{
		{"fresh key", 0, 1000 * ms, true, 1100 * ms, 0},
		{"past tat", 900 * ms, 1000 * ms, true, 1100 * ms, 0},
		{"second of burst", 1100 * ms, 1000 * ms, true, 1200 * ms, 0},
		{"last of burst", 1200 * ms, 1000 * ms, true, 1300 * ms, 0},
		{"over burst", 1300 * ms, 1000 * ms, false, 1300 * ms, 100 * time.Millisecond},
		{"over burst later", 1300 * ms, 1040 * ms, false, 1300 * ms, 60 * time.Millisecond},
		{"refilled one", 1300 * ms, 1100 * ms, true, 1400 * ms, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, next, wait := gcra(tt.tat, tt.now, r)
			if ok != tt.ok || next != tt.next || wait != tt.wait {
				t.Errorf("got %v, %d, %s; want %v, %d, %s", ok, next, wait, tt.ok, tt.next, tt.wait)
			}
		})
	}
}
