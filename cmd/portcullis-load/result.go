package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Result is what a run measured. Its JSON form is what -json writes and
// what bench/run reads; the field names are stable.
type Result struct {
	Target      string         `json:"target"`
	Proto       string         `json:"proto"`
	Mode        string         `json:"mode"` // "chat" or "stream"
	Concurrency int            `json:"concurrency"`
	Connections int            `json:"connections"`
	BodyBytes   int            `json:"body_bytes"`
	Seconds     float64        `json:"seconds"`
	Requests    int            `json:"requests"` // completed without error
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	FirstError  string         `json:"first_error,omitempty"`
	RPS         float64        `json:"rps"`
	Latency     Percentiles    `json:"latency_ms"`
	TTFB        Percentiles    `json:"ttfb_ms"`
	// EventsPerStream is the mean number of SSE events per stream, [DONE] included.
	EventsPerStream float64 `json:"events_per_stream,omitempty"`
	// Open loop only (-rate): the rate asked for and the arrival process;
	// latency and TTFB then count from each request's due time. SendLag is
	// how late requests went out (a busy worker, or the load generator's
	// own scheduling); Missed counts requests due before the end that were
	// never sent because every worker (-c) was busy.
	Rate    float64      `json:"rate,omitempty"`
	Arrival string       `json:"arrival,omitempty"`
	SendLag *Percentiles `json:"send_lag_ms,omitempty"`
	Missed  int          `json:"missed,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func summarize(cfg config, bodyBytes int, elapsed time.Duration, workers []*worker) *Result {
	r := &Result{
		Target: cfg.Target, Proto: cfg.Proto, Mode: "chat",
		Concurrency: cfg.Concurrency, Connections: cfg.Connections,
		BodyBytes: bodyBytes, Seconds: elapsed.Seconds(),
		ErrorKinds: map[string]int{},
	}
	if cfg.Body.Stream {
		r.Mode = "stream"
	}
	var lat, ttfb, lag []time.Duration
	events := 0
	for _, w := range workers {
		for _, s := range w.samples {
			lat = append(lat, s.latency)
			ttfb = append(ttfb, s.ttfb)
			lag = append(lag, s.lag)
		}
		for k, n := range w.errs {
			r.ErrorKinds[k] += n
			r.Errors += n
		}
		if r.FirstError == "" {
			r.FirstError = w.first
		}
		events += w.events
	}
	r.Requests = len(lat)
	if elapsed > 0 {
		r.RPS = float64(r.Requests) / elapsed.Seconds()
	}
	r.Latency = percentiles(lat)
	r.TTFB = percentiles(ttfb)
	if cfg.Rate > 0 {
		r.Rate, r.Arrival = cfg.Rate, cfg.Arrival
		l := percentiles(lag)
		r.SendLag = &l
	}
	if cfg.Body.Stream && r.Requests+r.Errors > 0 {
		r.EventsPerStream = float64(events) / float64(r.Requests+r.Errors)
	}
	if len(r.ErrorKinds) == 0 {
		r.ErrorKinds = nil
	}
	return r
}

// percentiles uses the nearest-rank method on a sorted copy of d.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	rank := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return Percentiles{
		Mean: ms(sum / time.Duration(len(s))),
		P50:  rank(0.50), P90: rank(0.90), P99: rank(0.99), P999: rank(0.999),
		Max: ms(s[len(s)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Result) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeSummary prints the human-readable report.
func (r *Result) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "portcullis-load: %s %s, %s, %d streams over %d connections, %.1fs, %d-byte bodies\n",
		r.Proto, r.Target, r.Mode, r.Concurrency, r.Connections, r.Seconds, r.BodyBytes)
	fmt.Fprintf(w, "  requests  %d ok, %d errors, %.1f req/s\n", r.Requests, r.Errors, r.RPS)
	row := func(name string, p Percentiles) {
		fmt.Fprintf(w, "  %-8s  p50 %.2fms  p90 %.2fms  p99 %.2fms  p99.9 %.2fms  max %.2fms\n",
			name, p.P50, p.P90, p.P99, p.P999, p.Max)
	}
	if r.Rate > 0 {
		fmt.Fprintf(w, "  open loop %.1f req/s (%s arrivals), at most %d in flight; latency and ttfb from the due time; %d missed\n",
			r.Rate, r.Arrival, r.Concurrency, r.Missed)
	}
	row("latency", r.Latency)
	row("ttfb", r.TTFB)
	if r.SendLag != nil {
		row("send lag", *r.SendLag)
	}
	if r.EventsPerStream > 0 {
		fmt.Fprintf(w, "  events    %.1f per stream\n", r.EventsPerStream)
	}
	for k, n := range r.ErrorKinds {
		fmt.Fprintf(w, "  error     %s: %d\n", k, n)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
}
