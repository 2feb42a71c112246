package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// attempt is one try of an exchange at one provider, as the completion
// audit record lists it (detail.attempts).
type attempt struct {
	Provider  string  `json:"provider"`
	Model     string  `json:"model"`
	Status    int     `json:"status,omitempty"`
	Error     string  `json:"error,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
}

// roundTripper adapts a function to http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// providerTransport sends a request over the connection pool of the
// provider it is addressed to.
type providerTransport struct{}

func (providerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	x := exchangeFrom(r.Context())
	if x == nil || x.route == nil || x.route.Provider.Transport == nil {
		return nil, errors.New("proxy: upstream request without a provider")
	}
	return x.route.Provider.Transport.RoundTrip(r)
}

// retryable reports whether a fallback may fix what an attempt got: the
// provider could not be reached, timed out, was rate limited or failed.
func retryable(res *http.Response, err error) bool {
	if err != nil {
		return true
	}
	return res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500
}

// roundTrip is the reverse proxy's transport. It tries the exchange's plans
// in order and returns the first answer no fallback should replace. All of
// this happens before the response headers are written, so no byte has
// reached the client when a fallback is tried; once a response is returned
// there is no going back.
func (g *Gateway) roundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	var (
		res *http.Response
		err error
	)
	for i, p := range x.plans {
		if i > 0 {
			if res != nil {
				_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
				res.Body.Close()
			}
			if req.Context().Err() != nil {
				break
			}
			req = req.Clone(req.Context())
			target(req, p)
		}
		x.route, x.plan = p.route, p
		start := g.clock()
		res, err = g.send(req, x, p)
		a := attempt{Provider: p.route.Provider.Name, Model: p.route.UpstreamModel,
			LatencyMS: float64(g.clock().Sub(start).Microseconds()) / 1000}
		if err != nil {
			a.Error = err.Error()
		} else {
			a.Status = res.StatusCode
		}
		x.attempts = append(x.attempts, a)
		if !retryable(res, err) || errors.Is(req.Context().Err(), context.Canceled) {
			break
		}
	}
	return res, err
}

// errProviderTimeout is the cause of an attempt cancelled by its provider's timeout.
var errProviderTimeout = errors.New("provider timeout")

// send makes one attempt under the provider's timeout: for a JSON answer it
// covers the whole exchange, for a stream the wait for response headers.
// The request timeout (Limits.RequestTimeout) bounds what is left: the
// whole exchange when it comes first, and a stream after its headers. One
// timer does both, so a request pays for no timer of its own.
func (g *Gateway) send(req *http.Request, x *exchange, p *plan) (*http.Response, error) {
	timeout, cause := p.route.Provider.Timeout, errProviderTimeout
	if left := g.untilRequestDeadline(x); left > 0 && (timeout <= 0 || left < timeout) {
		timeout, cause = left, ErrRequestTimeout
	}
	if timeout <= 0 {
		return g.cfg.Transport.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	expire := func(cause error) func() {
		return func() {
			if cause == ErrRequestTimeout {
				x.timedOut.Store(true)
			}
			cancel(cause)
		}
	}
	timer := time.AfterFunc(timeout, expire(cause))
	res, err := g.cfg.Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timer.Stop()
		switch context.Cause(ctx) {
		case errProviderTimeout:
			err = fmt.Errorf("%w: no answer from %s within %s", context.DeadlineExceeded, p.route.Provider.Name, timeout)
		case ErrRequestTimeout:
			err = fmt.Errorf("%w: %w", ErrRequestTimeout, err)
		}
		cancel(nil)
		return nil, err
	}
	if x.req.Stream && cause == errProviderTimeout {
		timer.Stop()
		if left := g.untilRequestDeadline(x); left > 0 {
			timer = time.AfterFunc(left, expire(ErrRequestTimeout))
		}
	}
	res.Body = &cancelBody{ReadCloser: res.Body, stop: func() { timer.Stop(); cancel(nil) }}
	return res, nil
}

// untilRequestDeadline is the time x has left under the request timeout:
// 0 when there is none, at least 1ns once it has passed.
func (g *Gateway) untilRequestDeadline(x *exchange) time.Duration {
	d := g.limits.RequestTimeout
	if d <= 0 {
		return 0
	}
	return max(x.caller.start.Add(d).Sub(g.clock()), 1)
}

// cancelBody releases an attempt's timer and context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	stop func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.stop()
	return err
}
