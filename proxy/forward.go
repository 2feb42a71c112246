package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// forwardHeaders are the only client headers that reach a provider. Everything
// else — the client's Authorization (a grant, or a provider key someone tried
// to smuggle), identity assertions, cookies — stays at the gateway.
var forwardHeaders = []string{
	"Content-Type",
	"Accept",
	"User-Agent",
	"Openai-Beta",
	"Anthropic-Version",
	"Anthropic-Beta",
}

// scrubIdentityHeaders drops headers by which a client might try to assert an
// identity. The gateway never reads them, and never forwards them.
func scrubIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

func isIdentityHeader(canonical string) bool {
	switch canonical {
	case "X-Forwarded-Client-Cert", "X-Spiffe-Id", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "Forwarded", "X-Client-Cert", "Ssl-Client-Cert":
		return true
	}
	return strings.HasPrefix(canonical, "X-Portcullis-")
}

// NewTransport returns the default upstream transport: pooled connections,
// HTTP/2 where the provider offers it, bounded timeouts.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never via an environment proxy: keys go only to the configured provider
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 120 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	x.caller.x = x // for the reverse proxy's hooks (exchangeFrom)
	if x.req.Stream {
		g.cfg.Metrics.streamStarted()
		defer g.cfg.Metrics.streamEnded()
	}
	defer func() {
		// Runs on every path out, including the abort panic of a broken
		// stream: the completion record must not depend on a clean end.
		if !x.finished {
			if x.upErr == nil {
				x.upErr = errors.New("response aborted before completion")
			}
			g.complete(r.Context(), x)
		}
	}()
	g.rp.ServeHTTP(w, r)
}

// rewrite keeps the client headers that may reach a provider and points the
// request at the exchange's first plan (roundTrip moves it to a fallback).
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	h := make(http.Header, len(forwardHeaders)+2)
	for _, k := range forwardHeaders {
		if v := pr.In.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	pr.Out.Header = h
	target(pr.Out, x.plans[0])
}

// copyBuffers lends the reverse proxy its response copy buffers, which it
// otherwise allocates (32 KiB) for every response; the tap's stream read
// buffers come from the same pool.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func (copyBuffers) Get() []byte { return *copyBufferPool.Get().(*[]byte) }

func (copyBuffers) Put(b []byte) {
	if cap(b) == readChunk {
		b = b[:readChunk]
		copyBufferPool.Put(&b)
	}
}

// complete writes the completion record once per exchange.
func (g *Gateway) complete(ctx context.Context, x *exchange) {
	if x.finished {
		return
	}
	x.finished = true
	if cause := context.Cause(ctx); errors.Is(cause, ErrDrainTimeout) {
		x.upErr = fmt.Errorf("%w (%v)", cause, x.upErr)
	} else if x.timedOut.Load() && !errors.Is(x.upErr, ErrRequestTimeout) {
		x.upErr = fmt.Errorf("%w (%v)", ErrRequestTimeout, x.upErr)
	}
	// The client may be gone; the record must still be written.
	ctx = context.WithoutCancel(ctx)
	g.settleBudget(ctx, x)
	if _, err := g.cfg.Audit.Append(ctx, g.completionEvent(x)); err != nil {
		g.log.WithError(err).WithField("request_id", x.caller.id).Error("audit: completion record not written")
	}
	g.logRequest(x, x.status, x.upErr)
}

// newStdLogger routes net/http's internal log lines into logrus.
func newStdLogger(l logrus.FieldLogger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l logrus.FieldLogger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.WithField("component", "http").Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
