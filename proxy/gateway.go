package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
)

// Decider answers policy questions. *policy.Engine implements it.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) (policy.Decision, error)
}

// Recorder appends audit events durably. *audit.Log implements it: Append
// returns only once the record is on disk.
type Recorder interface {
	Append(ctx context.Context, ev *audit.Event) (uint64, error)
}

var (
	_ Decider  = (*policy.Engine)(nil)
	_ Recorder = (*audit.Log)(nil)
)

// Config holds the parts a Gateway is built from. Each is constructed and
// owned by the caller (cmd/portcullis), which also closes them.
type Config struct {
	Resolver *identity.Resolver
	Policy   Decider
	Audit    Recorder
	Router   *Router
	Logger   logrus.FieldLogger
	Clock    func() time.Time

	// DigestKey keys the prompt digest written to the audit log.
	DigestKey []byte
	// MaxBodyBytes caps request bodies; default 4 MiB.
	MaxBodyBytes int64
	// Checkpoints, when set, serves the audit log's latest signed checkpoint
	// at GET /v1/audit/checkpoint (checkpoint.go).
	Checkpoints CheckpointSource
	// Transport carries upstream requests; default each provider's own
	// pooled, HTTP/2-capable Provider.Transport.
	Transport http.RoundTripper
	// Metrics, when set, receives request, decision and upstream metrics.
	Metrics *Metrics
	// Grants, when set, turns on task grants (grants.go).
	Grants *GrantOptions
	// RateLimits are per-principal request limits by kind (ratelimit.go).
	RateLimits map[identity.Kind]RateLimit
	// RateState keeps the rate-limit counters; default this process's
	// memory. The etcd store shares them between replicas.
	RateState store.RateLimiter
	// Approvals, when set, parks actions that need a human approval and
	// serves /v1/approvals (approval.go); otherwise they are refused.
	Approvals *ApprovalOptions
	// MCPServers are the upstream MCP servers served at /mcp/{name}
	// (mcp.go).
	MCPServers []MCPServer
	// Limits bound each caller's requests in flight and their duration
	// (limits.go).
	Limits Limits
}

// Gateway is the data-plane HTTP handler: every request is authenticated by
// its SVID, decided by policy, recorded, and only then proxied.
type Gateway struct {
	cfg   Config
	rp    *httputil.ReverseProxy
	mux   *http.ServeMux
	clock func() time.Time
	log   logrus.FieldLogger

	grants    *grants      // nil when grants are off
	limiter   *rateLimiter // nil when there are no rate limits
	approvals *approvals   // nil when approvals are off
	mcp       map[string]*mcpUpstream
	limits    Limits
	inflight  *inFlight
}

// New checks cfg and builds a Gateway.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Resolver == nil:
		return nil, errors.New("proxy: config: no identity resolver")
	case cfg.Policy == nil:
		return nil, errors.New("proxy: config: no policy engine")
	case cfg.Audit == nil:
		return nil, errors.New("proxy: config: no audit log")
	case cfg.Router == nil:
		return nil, errors.New("proxy: config: no router")
	case len(cfg.DigestKey) < 16:
		return nil, errors.New("proxy: config: digest key must be at least 16 bytes")
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.Out = discard{}
		cfg.Logger = l
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.Transport == nil {
		cfg.Transport = providerTransport{}
	}
	if cfg.Metrics != nil {
		cfg.Policy = instrumentedDecider{next: cfg.Policy, m: cfg.Metrics}
		cfg.Transport = instrumentedTransport{next: cfg.Transport, m: cfg.Metrics}
	}
	g := &Gateway{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, limits: cfg.Limits.withDefaults()}
	g.inflight = newInFlight(g.limits.MaxInFlightPerPrincipal)
	g.rp = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      roundTripper(g.roundTrip),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
		// Streams (text/event-stream, or no declared length) are flushed
		// event by event whatever this says. A buffered answer, whose
		// length is known, goes out with its end in one write when the
		// handler returns, instead of being flushed before its end.
		FlushInterval: 0,
		ErrorLog:      newStdLogger(cfg.Logger),
		BufferPool:    copyBuffers{},
	}
	g.mux = http.NewServeMux()
	for path := range apiParsers {
		g.mux.HandleFunc("POST "+path, g.serveLLM)
	}
	g.mux.HandleFunc("GET /v1/models", g.listModels)
	g.mux.HandleFunc("GET /v1/audit/checkpoint", g.serveCheckpoint)
	g.limiter = newRateLimiter(cfg.RateLimits, cfg.RateState, cfg.Clock)
	if cfg.Grants != nil {
		gr, err := newGrants(cfg.Grants)
		if err != nil {
			return nil, err
		}
		g.grants = gr
		g.registerGrantRoutes()
	}
	mcps, err := newMCPUpstreams(cfg.MCPServers)
	if err != nil {
		return nil, err
	}
	g.mcp = mcps
	g.mux.HandleFunc("/mcp/{server}", g.serveMCP)
	if cfg.Approvals != nil {
		ap, err := newApprovals(cfg.Approvals)
		if err != nil {
			return nil, err
		}
		g.approvals = ap
		g.registerApprovalRoutes()
	}
	return g, nil
}

// Close ends what the gateway holds open upstream: its MCP sessions. Call
// it once the server has drained; a request after Close reconnects.
func (g *Gateway) Close() error {
	var errs []error
	for _, u := range g.mcp {
		if err := u.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ServeHTTP drops every client header that could assert identity, resolves the
// caller from its verified certificate and dispatches.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scrubIdentityHeaders(r.Header)
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	p, err := g.principal(r)
	if err != nil {
		g.refuseIdentity(w, r, reqID, err)
		return
	}
	h, pattern := g.mux.Handler(r)
	if pattern == "" {
		writeError(w, apiError{Status: http.StatusNotFound, Code: codeNotFound, Shape: shapeOf(r.URL.Path),
			Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path), RequestID: reqID})
		return
	}
	key, ok := g.admit(w, r, reqID, p)
	if !ok {
		return
	}
	defer g.inflight.release(key)
	ctx := context.WithValue(r.Context(), callerKey{}, &caller{id: reqID, principal: p, start: g.clock()})
	h.ServeHTTP(w, r.WithContext(ctx))
}

type callerKey struct{}

// caller is what the gateway knows about the request's sender.
type caller struct {
	id        string
	principal identity.Principal
	start     time.Time
	// x is the model call being proxied, from forward on: the reverse
	// proxy's hooks find it here, so forward needs no context (and no
	// request copy) of its own.
	x *exchange
}

func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// exchangeFrom returns the exchange that forward is proxying, or nil.
func exchangeFrom(ctx context.Context) *exchange {
	if c := callerFrom(ctx); c != nil {
		return c.x
	}
	return nil
}

func (g *Gateway) principal(r *http.Request) (identity.Principal, error) {
	if r.TLS == nil {
		return identity.Principal{}, errors.New("connection is not TLS")
	}
	id, err := identity.PeerID(r.TLS)
	if err != nil {
		return identity.Principal{}, err
	}
	p, err := g.cfg.Resolver.Resolve(id)
	if err != nil {
		return identity.Principal{ID: id}, err
	}
	return p, nil
}

func (g *Gateway) refuseIdentity(w http.ResponseWriter, r *http.Request, reqID string, cause error) {
	p := identity.Principal{}
	if r.TLS != nil {
		if id, err := identity.PeerID(r.TLS); err == nil {
			p.ID = id
		}
	}
	ev := &audit.Event{
		Type:      "decision",
		RequestID: reqID,
		Action:    "identity.resolve",
		Principal: auditPrincipal(p),
		Decision:  &audit.Decision{Allow: false, Reasons: []string{cause.Error()}},
		Status:    http.StatusForbidden,
		Error:     cause.Error(),
	}
	seq, err := g.cfg.Audit.Append(r.Context(), ev)
	if err != nil {
		g.auditUnavailableAs(w, shapeOf(r.URL.Path), reqID, err)
		return
	}
	setAuditSeq(w, seq)
	g.log.WithFields(logrus.Fields{"request_id": reqID, "spiffe_id": p.ID.String(), "status": 403}).
		Warn("refused: caller identity matches no principal template")
	g.cfg.Metrics.observeRequest(requestOutcome{api: "none", model: "unknown", decision: "refused", status: http.StatusForbidden})
	writeError(w, apiError{Status: http.StatusForbidden, Code: codeUnknownIdentity, RequestID: reqID, Shape: shapeOf(r.URL.Path),
		Message: "your SPIFFE ID is not mapped to a principal on this gateway; ask an operator to add a principal template for it"})
}

func (g *Gateway) auditUnavailable(w http.ResponseWriter, reqID string, err error) {
	g.auditUnavailableAs(w, shapeOpenAI, reqID, err)
}

// auditUnavailableAs answers 503 in the error format of the client's API.
// The refusal has no record, so the answer names none: an AuditSeqHeader
// set for an earlier record of the request is removed.
func (g *Gateway) auditUnavailableAs(w http.ResponseWriter, shape errorShape, reqID string, err error) {
	g.log.WithError(err).WithField("request_id", reqID).Error("audit log unavailable: refusing request")
	w.Header().Del(AuditSeqHeader)
	writeError(w, apiError{Status: http.StatusServiceUnavailable, Code: codeAuditFailed, RequestID: reqID, Shape: shape,
		Message: "the gateway cannot record this request in its audit log, so it will not process it; try again later"})
}

// AuditSeqHeader carries, on every response whose request the gateway
// recorded, the audit sequence number of the record that decided it: the
// decision record of an allowed or refused call, the refusal record of a
// request refused before any decision (unknown identity, limits, bad input,
// unknown model), the step record of an approval decided through the
// approvals API. A caller asks for that record's inclusion proof by it. A
// response without a record (the audit log failed, no route) has none.
const AuditSeqHeader = "X-Portcullis-Audit-Seq"

// setAuditSeq names the record that decided the response; call it before
// the status is written.
func setAuditSeq(w http.ResponseWriter, seq uint64) {
	w.Header().Set(AuditSeqHeader, strconv.FormatUint(seq, 10))
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func auditPrincipal(p identity.Principal) *audit.Principal {
	ap := &audit.Principal{Kind: string(p.Kind), Tenant: p.Tenant, Name: p.Name}
	if !p.ID.IsZero() {
		ap.SPIFFEID = p.ID.String()
		ap.TrustDomain = p.ID.TrustDomain().Name()
	}
	return ap
}

func policyPrincipal(p identity.Principal) policy.Principal {
	return policy.Principal{
		SPIFFEID:    p.ID.String(),
		TrustDomain: p.ID.TrustDomain().Name(),
		Kind:        string(p.Kind),
		Tenant:      p.Tenant,
		Name:        p.Name,
	}
}
