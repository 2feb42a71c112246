package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is one load run.
type config struct {
	Target      string // base URL, https://host:port
	Path        string // default /v1/chat/completions
	Proto       string // h2 or h3
	TLS         *tls.Config
	Concurrency int           // N concurrent streams
	Connections int           // M connections
	Duration    time.Duration // run length, when Requests is 0
	Requests    int           // fixed request count; 0 = run for Duration
	Timeout     time.Duration // per request
	Body        bodySpec
	APIKey      string // sent as a bearer token (the fake provider wants one; the gateway ignores it)
	// Rate, when above 0, makes the run open-loop: requests are due at
	// Rate per second over all workers (Arrival: poisson or fixed gaps,
	// Seed for the Poisson draws), Concurrency bounds how many are in
	// flight, and latency and TTFB count from the due time.
	Rate    float64
	Arrival string
	Seed    uint64
	Clock   func() time.Time
}

// sample is one completed request.
type sample struct {
	latency, ttfb time.Duration
	lag           time.Duration // open loop: send time minus due time
}

// worker state: its samples and errors, merged at the end.
type worker struct {
	samples []sample
	errs    map[string]int
	first   string // first error message, for the summary
	events  int    // SSE events seen, summed
	buf     []byte
}

// run sends load as cfg says and returns what it measured. It fails only if
// the setup or the preflight request fails; errors during the run are counted.
func run(ctx context.Context, cfg config) (*Result, error) {
	if cfg.Concurrency < 1 || cfg.Connections < 1 {
		return nil, errors.New("concurrency and connections must be at least 1")
	}
	if cfg.Connections > cfg.Concurrency {
		cfg.Connections = cfg.Concurrency
	}
	if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("give a duration or a request count")
	}
	if cfg.Path == "" {
		cfg.Path = "/v1/chat/completions"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	body, err := chatBody(cfg.Body)
	if err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(cfg.Target, "/") + cfg.Path

	clients := make([]*http.Client, cfg.Connections)
	for i := range clients {
		rt, closeFn, err := newTransport(cfg.Proto, cfg.TLS, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		clients[i] = &http.Client{Transport: rt, Timeout: cfg.Timeout}
	}
	// Preflight on every connection: fail fast and clearly on a wrong
	// protocol, identity or model, and keep handshakes out of the figures.
	for _, c := range clients {
		w := &worker{errs: map[string]int{}, buf: make([]byte, 32<<10)}
		if _, err := w.do(ctx, c, cfg, url, body, cfg.Clock()); err != nil {
			if cfg.Proto == protoH3 && errors.Is(err, errTransport) {
				return nil, fmt.Errorf("HTTP/3 to %s: %w (%v)", cfg.Target, errUnsupported, err)
			}
			return nil, fmt.Errorf("preflight request to %s: %w", url, err)
		}
	}

	var (
		issued  atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		workers = make([]*worker, cfg.Concurrency)
		sched   *schedule
	)
	start := cfg.Clock()
	if cfg.Rate > 0 {
		if sched, err = newSchedule(start, cfg.Rate, cfg.Arrival, cfg.Seed, cfg.Requests, cfg.Duration); err != nil {
			return nil, err
		}
	} else if cfg.Requests <= 0 {
		t := time.AfterFunc(cfg.Duration, func() { stop.Store(true) })
		defer t.Stop()
	}
	for i := range workers {
		w := &worker{errs: map[string]int{}, buf: make([]byte, 32<<10), samples: make([]sample, 0, 4096)}
		workers[i] = w
		c := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sched != nil {
				w.openLoop(ctx, sched, c, cfg, url, body)
				return
			}
			for !stop.Load() && ctx.Err() == nil {
				if cfg.Requests > 0 && issued.Add(1) > int64(cfg.Requests) {
					return
				}
				t0 := cfg.Clock()
				ttfb, err := w.do(ctx, c, cfg, url, body, t0)
				if err != nil {
					w.fail(err)
					continue
				}
				w.samples = append(w.samples, sample{latency: cfg.Clock().Sub(t0), ttfb: ttfb})
			}
		}()
	}
	wg.Wait()
	elapsed := cfg.Clock().Sub(start)
	r := summarize(cfg, len(body), elapsed, workers)
	if sched != nil {
		r.Missed = sched.missed()
	}
	return r, nil
}

// Errors by kind; the kind is the map key in Result.Errors.
var (
	errTransport  = errors.New("transport")
	errStatus     = errors.New("status")
	errIncomplete = errors.New("stream ended without data: [DONE]")
)

var doneMarker = []byte("data: [DONE]")

// do sends one request and reads the whole response. It returns the time
// from origin to the first body byte.
func (w *worker) do(ctx context.Context, c *http.Client, cfg config, url string, body []byte, origin time.Time) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Body.Stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errTransport, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("%w %d: %s", errStatus, resp.StatusCode, bytes.TrimSpace(msg))
	}
	var (
		ttfb  time.Duration
		tail  []byte // last bytes seen, to find [DONE] across reads
		last  byte   // previous byte, to count "\n\n" across reads
		first = true
	)
	for {
		n, rerr := resp.Body.Read(w.buf)
		if n > 0 {
			if first {
				ttfb, first = cfg.Clock().Sub(origin), false
			}
			if cfg.Body.Stream {
				chunk := w.buf[:n]
				for _, b := range chunk {
					if b == '\n' && last == '\n' {
						w.events++
					}
					last = b
				}
				tail = append(tail, chunk[max(0, n-32):]...)
				if len(tail) > 64 {
					tail = tail[len(tail)-32:]
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("%w: reading body: %w", errTransport, rerr)
		}
	}
	if cfg.Body.Stream && !bytes.Contains(tail, doneMarker) {
		return 0, errIncomplete
	}
	return ttfb, nil
}

func (w *worker) fail(err error) {
	kind := "other"
	switch {
	case errors.Is(err, errStatus):
		kind = strings.SplitN(err.Error(), ":", 2)[0]
	case errors.Is(err, errTransport):
		kind = "transport"
	case errors.Is(err, errIncomplete):
		kind = "stream incomplete"
	}
	w.errs[kind]++
	if w.first == "" {
		w.first = err.Error()
	}
}
