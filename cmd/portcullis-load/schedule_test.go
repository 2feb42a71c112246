package main

import (
	"math"
	"testing"
	"time"
)

func TestScheduleFixed(t *testing.T) {
	start := time.Unix(1000, 0)
	s, err := newSchedule(start, 100, arrivalFixed, 1, 0, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for {
		at, ok := s.take(start)
		if !ok {
			break
		}
		got = append(got, at.Sub(start))
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("due offsets = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("due offset %d = %v, want %v", i, got[i], want[i])
		}
	}
	if m := s.missed(); m != 0 {
		t.Errorf("missed = %d, want 0", m)
	}
}

func TestSchedulePoissonRate(t *testing.T) {
	start := time.Unix(1000, 0)
	const rate, n = 200.0, 20000
	s, err := newSchedule(start, rate, arrivalPoisson, 7, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		prev       = start
		sum, sumSq float64
		count      int
	)
	for {
		at, ok := s.take(start)
		if !ok {
			break
		}
		g := at.Sub(prev).Seconds()
		if g < 0 {
			t.Fatalf("due time %d goes backwards", count)
		}
		sum, sumSq, prev = sum+g, sumSq+g*g, at
		count++
	}
	if count != n {
		t.Fatalf("handed out %d, want %d", count, n)
	}
	mean := sum / n
	cv := math.Sqrt(sumSq/n-mean*mean) / mean // 1 for exponential gaps, 0 for fixed
	if got, want := mean, 1/rate; math.Abs(got-want) > 0.05*want {
		t.Errorf("mean gap = %v, want %v ±5%%", got, want)
	}
	if cv < 0.9 || cv > 1.1 {
		t.Errorf("coefficient of variation of gaps = %.3f, want about 1 (exponential)", cv)
	}
}

func TestScheduleMissedAfterEnd(t *testing.T) {
	start := time.Unix(1000, 0)
	s, err := newSchedule(start, 100, arrivalFixed, 1, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, ok := s.take(start); !ok {
			t.Fatal("schedule ended early")
		}
	}
	// Workers came back only after the end: 99 were due, 10 were sent.
	if _, ok := s.take(start.Add(time.Second)); ok {
		t.Fatal("take after the end handed out a request")
	}
	if got, want := s.missed(), 89; got != want {
		t.Errorf("missed = %d, want %d", got, want)
	}
}

func TestScheduleRejects(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		arrival string
	}{
		{"zero rate", 0, arrivalFixed},
		{"unknown arrival", 10, "bursty"},
	}
	for _, tt := range tests {
		if _, err := newSchedule(time.Now(), tt.rate, tt.arrival, 1, 0, time.Second); err == nil {
			t.Errorf("%s: newSchedule succeeded, want an error", tt.name)
		}
	}
}

// TestOpenLoop runs a second at a fixed rate against the in-process target:
// about rate × seconds requests, none missed, all late by little.
func TestOpenLoop(t *testing.T) {
	tg := startTarget(t)
	for _, arrival := range []string{arrivalFixed, arrivalPoisson} {
		t.Run(arrival, func(t *testing.T) {
			r := runJSON(t, tg.args("-rate", "100", "-arrival", arrival, "-d", "1s", "-c", "8", "-m", "1", "-stream", "-events", "5"))
			if r.Errors != 0 || r.Missed != 0 {
				t.Fatalf("errors, missed = %d, %d (%s), want none", r.Errors, r.Missed, r.FirstError)
			}
			lo, hi := 99, 100 // fixed: due at 10, 20, … 990 ms
			if arrival == arrivalPoisson {
				lo, hi = 60, 140 // Poisson count for a mean of 100: ±4 σ
			}
			if r.Requests < lo || r.Requests > hi {
				t.Errorf("requests = %d, want %d–%d", r.Requests, lo, hi)
			}
			if r.Rate != 100 || r.Arrival != arrival || r.SendLag == nil {
				t.Fatalf("rate, arrival, send lag = %v %q %v, want 100 %q and a send lag", r.Rate, r.Arrival, r.SendLag, arrival)
			}
			if r.TTFB.P50 <= 0 || r.TTFB.P50 > r.Latency.P50 || r.SendLag.P50 > r.TTFB.P50 {
				t.Errorf("implausible figures: latency %+v ttfb %+v send lag %+v", r.Latency, r.TTFB, *r.SendLag)
			}
		})
	}
}

// TestOpenLoopChargesQueueing is coordinated omission: one worker, a target
// that takes 50 ms a request, 100 requests/s asked. A closed loop would
// report ~50 ms; counted from the due times, requests wait ever longer for
// the worker, and what the worker could not send before the end is missed.
func TestOpenLoopChargesQueueing(t *testing.T) {
	tg := startTarget(t)
	r := runJSON(t, tg.args("-rate", "100", "-arrival", "fixed", "-d", "1s", "-c", "1", "-m", "1", "-slow", "50"))
	if r.Errors != 0 {
		t.Fatalf("errors = %d (%s), want 0", r.Errors, r.FirstError)
	}
	if r.Requests < 5 || r.Requests > 25 {
		t.Errorf("requests = %d, want about 20 (1 s / 50 ms)", r.Requests)
	}
	if got := r.Requests + r.Missed; got != 99 {
		t.Errorf("requests + missed = %d, want the 99 due in the second", got)
	}
	if r.Latency.Max < 400 || r.SendLag.Max < 350 {
		t.Errorf("latency max %.1f ms, send lag max %.1f ms: want the queueing (≥ 400 and ≥ 350 ms) counted", r.Latency.Max, r.SendLag.Max)
	}
	if r.Latency.P50 < 50 {
		t.Errorf("latency p50 = %.1f ms, want at least the target's 50 ms", r.Latency.P50)
	}
}
