package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/policy"
)

// Metrics are the gateway's Prometheus collectors. Labels are bounded: model
// names come from the router (a name the router does not know is reported as
// "unknown"), tenants and kinds from principal templates, and no label ever
// holds a SPIFFE ID or a request id.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	decisions       *prometheus.CounterVec
	decisionLatency *prometheus.HistogramVec
	upstreamLatency *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
	tokens          *prometheus.CounterVec
	activeStreams   prometheus.Gauge

	// The series of each label set, once looked up (WithLabelValues
	// hashes and checks every label on every call).
	requestSeries  seriesCache[requestKey, requestSeries]
	tokenSeries    seriesCache[tokenKey, tokenSeries]
	decisionSeries seriesCache[decisionKey, prometheus.Counter]
	decisionTimes  seriesCache[string, prometheus.Observer]
	upstreamTimes  seriesCache[string, prometheus.Observer]
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests answered, by API, model, provider, principal kind, tenant, decision and HTTP status.",
		}, []string{"api", "model", "provider", "kind", "tenant", "decision", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Time from request arrival to the end of the response, by API and decision.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"api", "decision"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_decisions_total",
			Help: "Policy decisions by action, outcome (allow, deny, error) and decision cache result (hit, miss).",
		}, []string{"action", "outcome", "cache"}),
		decisionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_decision_duration_seconds",
			Help:    "Policy decision latency, cache hits included.",
			Buckets: []float64{1e-6, 5e-6, 25e-6, 1e-4, 5e-4, 2.5e-3, 1e-2, 5e-2},
		}, []string{"action"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_upstream_duration_seconds",
			Help:    "Time until the provider's response headers arrived, by provider.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"provider"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_upstream_errors_total",
			Help: "Upstream failures by provider and kind (connect, timeout, status_4xx, status_5xx, stream).",
		}, []string{"provider", "kind"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_tokens_total",
			Help: "Tokens reported by providers, by tenant, model and type (prompt, completion).",
		}, []string{"tenant", "model", "type"}),
		activeStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_active_streams",
			Help: "Streaming responses in flight.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.requestDuration, m.decisions, m.decisionLatency,
		m.upstreamLatency, m.upstreamErrors, m.tokens, m.activeStreams} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// requestOutcome is what the metrics need to know about an answered request.
type requestOutcome struct {
	api, model, provider, kind, tenant string
	decision                           string // allow, deny, error, refused
	status                             int
	elapsed                            time.Duration
	usage                              *Usage
}

func (m *Metrics) observeRequest(o requestOutcome) {
	if m == nil {
		return
	}
	rs := m.requestSeries.get(m, requestKey{o.api, o.model, o.provider, o.kind, o.tenant, o.decision, o.status}, newRequestSeries)
	rs.count.Inc()
	rs.duration.Observe(o.elapsed.Seconds())
	if o.usage != nil {
		ts := m.tokenSeries.get(m, tokenKey{o.tenant, o.model}, newTokenSeries)
		ts.prompt.Add(float64(o.usage.PromptTokens))
		ts.completion.Add(float64(o.usage.CompletionTokens))
	}
}

type requestKey struct {
	api, model, provider, kind, tenant, decision string
	status                                       int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newRequestSeries(m *Metrics, k requestKey) requestSeries {
	return requestSeries{
		count:    m.requests.WithLabelValues(k.api, k.model, k.provider, k.kind, k.tenant, k.decision, strconv.Itoa(k.status)),
		duration: m.requestDuration.WithLabelValues(k.api, k.decision),
	}
}

type tokenKey struct{ tenant, model string }

type tokenSeries struct{ prompt, completion prometheus.Counter }

func newTokenSeries(m *Metrics, k tokenKey) tokenSeries {
	return tokenSeries{
		prompt:     m.tokens.WithLabelValues(k.tenant, k.model, "prompt"),
		completion: m.tokens.WithLabelValues(k.tenant, k.model, "completion"),
	}
}

type decisionKey struct{ action, outcome, cache string }

func newDecisionSeries(m *Metrics, k decisionKey) prometheus.Counter {
	return m.decisions.WithLabelValues(k.action, k.outcome, k.cache)
}

func newDecisionTimes(m *Metrics, action string) prometheus.Observer {
	return m.decisionLatency.WithLabelValues(action)
}

func newUpstreamTimes(m *Metrics, provider string) prometheus.Observer {
	return m.upstreamLatency.WithLabelValues(provider)
}

// seriesCache keeps the series of a vector by their label values. Labels
// are bounded (see Metrics), so is the cache; no series is ever deleted
// from a vector, so a cached one stays the one the registry reports.
type seriesCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// get returns the series of k, made by create on first use. Making it on
// first use keeps the registry's output as WithLabelValues per call gave
// it: a series appears once something was recorded in it.
func (c *seriesCache[K, V]) get(m *Metrics, k K, create func(*Metrics, K) V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if c.m == nil {
		c.m = make(map[K]V)
	}
	v = create(m, k)
	c.m[k] = v
	return v
}

func (m *Metrics) streamStarted() {
	if m != nil {
		m.activeStreams.Inc()
	}
}

func (m *Metrics) streamEnded() {
	if m != nil {
		m.activeStreams.Dec()
	}
}

// instrumentedDecider times every decision and counts outcomes.
type instrumentedDecider struct {
	next Decider
	m    *Metrics
}

func (d instrumentedDecider) Decide(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	start := time.Now()
	dec, err := d.next.Decide(ctx, in)
	d.m.decisionTimes.get(d.m, in.Action, newDecisionTimes).Observe(time.Since(start).Seconds())
	outcome, cache := "deny", "miss"
	switch {
	case err != nil:
		outcome = "error"
	case dec.Allow:
		outcome = "allow"
	}
	if dec.CacheHit {
		cache = "hit"
	}
	d.m.decisionSeries.get(d.m, decisionKey{in.Action, outcome, cache}, newDecisionSeries).Inc()
	return dec, err
}

// instrumentedTransport times upstream round trips by provider.
type instrumentedTransport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t instrumentedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	provider := "unknown"
	if x := exchangeFrom(r.Context()); x != nil && x.route != nil {
		provider = x.route.Provider.Name
	}
	start := time.Now()
	res, err := t.next.RoundTrip(r)
	t.m.upstreamTimes.get(t.m, provider, newUpstreamTimes).Observe(time.Since(start).Seconds())
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded)):
		t.m.upstreamErrors.WithLabelValues(provider, "timeout").Inc()
	case err != nil && errors.Is(err, context.Canceled):
		// the client went away; not the provider's failure
	case err != nil:
		t.m.upstreamErrors.WithLabelValues(provider, "connect").Inc()
	case res.StatusCode >= 500:
		t.m.upstreamErrors.WithLabelValues(provider, "status_5xx").Inc()
	case res.StatusCode >= 400:
		t.m.upstreamErrors.WithLabelValues(provider, "status_4xx").Inc()
	}
	return res, err
}

// streamFailed counts a stream that broke after its headers were relayed.
func (m *Metrics) streamFailed(provider string) {
	if m != nil {
		m.upstreamErrors.WithLabelValues(provider, "stream").Inc()
	}
}
