package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
)

// Limits bound what one caller may hold open and for how long. Zero fields
// take the defaults; a negative field turns that limit off.
type Limits struct {
	// MaxInFlightPerPrincipal caps the requests (streams included) one
	// SPIFFE ID may have in flight on this gateway; past it, 429
	// too_many_requests_in_flight. Default 1024.
	MaxInFlightPerPrincipal int
	// RequestTimeout bounds a model request from its arrival, stream
	// included; a stream still running then is cut and its completion
	// record says so. Default 10 minutes.
	RequestTimeout time.Duration
	// BodyReadTimeout bounds receiving the request body, so a client that
	// trickles its body cannot hold a request open. Default 30 seconds.
	BodyReadTimeout time.Duration
}

// Default limits.
const (
	DefaultMaxInFlightPerPrincipal = 1024
	DefaultRequestTimeout          = 10 * time.Minute
	DefaultBodyReadTimeout         = 30 * time.Second
)

// ErrRequestTimeout is the cause given to requests cancelled because they
// ran past Limits.RequestTimeout. It appears in their completion records.
var ErrRequestTimeout = errors.New("request exceeded the gateway's request timeout")

const (
	codeTooManyInFlight = "too_many_requests_in_flight"
	codeRequestTimeout  = "request_timeout"
)

func (l Limits) withDefaults() Limits {
	if l.MaxInFlightPerPrincipal == 0 {
		l.MaxInFlightPerPrincipal = DefaultMaxInFlightPerPrincipal
	}
	if l.RequestTimeout == 0 {
		l.RequestTimeout = DefaultRequestTimeout
	}
	if l.BodyReadTimeout == 0 {
		l.BodyReadTimeout = DefaultBodyReadTimeout
	}
	return l
}

// inFlight counts each principal's requests in flight.
type inFlight struct {
	max int // <= 0: unlimited
	mu  sync.Mutex
	n   map[string]int
}

func newInFlight(max int) *inFlight { return &inFlight{max: max, n: map[string]int{}} }

// acquire takes a slot for key, or reports that key holds them all.
func (f *inFlight) acquire(key string) bool {
	if f.max <= 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] >= f.max {
		return false
	}
	f.n[key]++
	return true
}

func (f *inFlight) release(key string) {
	if f.max <= 0 {
		return
	}
	f.mu.Lock()
	if f.n[key]--; f.n[key] <= 0 {
		delete(f.n, key)
	}
	f.mu.Unlock()
}

// admit applies the per-request limits before dispatch: the principal's
// in-flight cap (refused with 429 and a decision record) and the body read
// deadline. It reports whether the request may go on; then the caller
// must call g.inflight.release(key) when it is done. (The request timeout
// is applied where a request can run long: upstream, in send.)
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, reqID string, p identity.Principal) (key string, ok bool) {
	key = p.ID.String()
	if !g.inflight.acquire(key) {
		g.refuseAdmission(w, r, reqID, p, http.StatusTooManyRequests, codeTooManyInFlight,
			fmt.Sprintf("this workload already has %d requests in flight, the gateway's limit per principal; retry when some have finished", g.inflight.max))
		return key, false
	}
	if d := g.limits.BodyReadTimeout; d > 0 && r.Body != nil && r.Body != http.NoBody {
		// Not every transport supports deadlines (HTTP/3 ignores it); the
		// body size cap and the request timeout still hold there.
		_ = http.NewResponseController(w).SetReadDeadline(g.clock().Add(d))
	}
	return key, true
}

// refuseAdmission records and answers a request refused before dispatch.
func (g *Gateway) refuseAdmission(w http.ResponseWriter, r *http.Request, reqID string, p identity.Principal, status int, code, msg string) {
	ev := &audit.Event{
		Type:      "decision",
		RequestID: reqID,
		Action:    "request.admit",
		Principal: auditPrincipal(p),
		Decision:  &audit.Decision{Allow: false, Reasons: []string{msg}},
		Status:    status,
	}
	shape := shapeOf(r.URL.Path)
	seq, err := g.cfg.Audit.Append(context.WithoutCancel(r.Context()), ev)
	if err != nil {
		g.auditUnavailableAs(w, shape, reqID, err)
		return
	}
	setAuditSeq(w, seq)
	w.Header().Set("Retry-After", "1")
	writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: reqID, Shape: shape})
}
