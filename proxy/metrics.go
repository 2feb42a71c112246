package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
	m.requests.WithLabelValues(o.api, o.model, o.provider, o.kind, o.tenant, o.decision, strconv.Itoa(o.status)).Inc()
	m.requestDuration.WithLabelValues(o.api, o.decision).Observe(o.elapsed.Seconds())
	if o.usage != nil {
		m.tokens.WithLabelValues(o.tenant, o.model, "prompt").Add(float64(o.usage.PromptTokens))
		m.tokens.WithLabelValues(o.tenant, o.model, "completion").Add(float64(o.usage.CompletionTokens))
	}
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
	d.m.decisionLatency.WithLabelValues(in.Action).Observe(time.Since(start).Seconds())
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
	d.m.decisions.WithLabelValues(in.Action, outcome, cache).Inc()
	return dec, err
}

// instrumentedTransport times upstream round trips by provider.
type instrumentedTransport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t instrumentedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	provider := "unknown"
	if x, ok := r.Context().Value(exchangeKey{}).(*exchange); ok && x.route != nil {
		provider = x.route.Provider.Name
	}
	start := time.Now()
	res, err := t.next.RoundTrip(r)
	t.m.upstreamLatency.WithLabelValues(provider).Observe(time.Since(start).Seconds())
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
