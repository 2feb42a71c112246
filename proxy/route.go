package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Provider is an upstream LLM service and the credential the gateway holds for
// it. Workloads never see the credential: it is added to the upstream request
// after every client header has been dropped.
type Provider struct {
	Name    string
	Format  string   // FormatOpenAI or FormatAnthropic
	BaseURL *url.URL // e.g. https://api.openai.com/v1
	// Timeout bounds one attempt: the whole exchange for a JSON answer, the
	// time to the response headers for a stream. Zero: no bound.
	Timeout time.Duration
	// AnthropicVersion is sent as anthropic-version when the client sent
	// none (always, for translated requests); default "2023-06-01".
	AnthropicVersion string
	// Transport carries this provider's requests: its own connection pool.
	// NewRouter gives each provider a NewTransport when nil.
	Transport http.RoundTripper

	key atomic.Pointer[string]
}

// Provider formats.
const (
	FormatOpenAI    = "openai"    // OpenAI and OpenAI-compatible APIs: Bearer key
	FormatAnthropic = "anthropic" // Anthropic's Messages API: x-api-key and anthropic-version
)

// SetKey replaces the provider credential; safe for concurrent use, so a key
// file can be re-read while requests are in flight.
func (p *Provider) SetKey(k string) { p.key.Store(&k) }

func (p *Provider) apiKey() string {
	if k := p.key.Load(); k != nil {
		return *k
	}
	return ""
}

// setAuth puts the provider credential on an outgoing request in the
// provider's own scheme.
func (p *Provider) setAuth(h http.Header) {
	k := p.apiKey()
	if k == "" {
		return
	}
	if p.Format == FormatAnthropic {
		h.Set("X-Api-Key", k)
		return
	}
	h.Set("Authorization", "Bearer "+k)
}

func (p *Provider) anthropicVersion() string {
	if p.AnthropicVersion != "" {
		return p.AnthropicVersion
	}
	return "2023-06-01"
}

// Route says where a client-facing model name goes.
type Route struct {
	Model         string // the name clients use
	Provider      *Provider
	UpstreamModel string // the provider's name for it
	// Fallback lists where the model is tried next, in order, when the
	// provider cannot be reached or answers 429 or 5xx before any byte went
	// to the client.
	Fallback []Upstream

	fallbacks []*Route
}

// Upstream is one provider's name for a model.
type Upstream struct {
	Provider *Provider
	Model    string
}

// candidates lists the route and then its fallbacks.
func (rt *Route) candidates() []*Route {
	return append([]*Route{rt}, rt.fallbacks...)
}

// Router maps client-facing model names to routes. It is immutable after
// NewRouter; reloads build a new one.
type Router struct {
	routes map[string]*Route
	names  []string
}

// NewRouter checks the routes and indexes them by model name.
func NewRouter(routes []Route) (*Router, error) {
	r := &Router{routes: make(map[string]*Route, len(routes))}
	for i := range routes {
		rt := routes[i]
		switch {
		case rt.Model == "":
			return nil, fmt.Errorf("proxy: route %d: empty model name", i)
		case rt.Provider == nil:
			return nil, fmt.Errorf("proxy: route %q: no provider", rt.Model)
		}
		if err := checkProvider(rt.Provider); err != nil {
			return nil, fmt.Errorf("proxy: route %q: %w", rt.Model, err)
		}
		rt.fallbacks = nil
		for j, f := range rt.Fallback {
			if f.Provider == nil || f.Model == "" {
				return nil, fmt.Errorf("proxy: route %q: fallback %d: provider and model are required", rt.Model, j)
			}
			if err := checkProvider(f.Provider); err != nil {
				return nil, fmt.Errorf("proxy: route %q: fallback %d: %w", rt.Model, j, err)
			}
			rt.fallbacks = append(rt.fallbacks, &Route{Model: rt.Model, Provider: f.Provider, UpstreamModel: f.Model})
		}
		if _, dup := r.routes[rt.Model]; dup {
			return nil, fmt.Errorf("proxy: model %q is routed twice", rt.Model)
		}
		if rt.UpstreamModel == "" {
			rt.UpstreamModel = rt.Model
		}
		r.routes[rt.Model] = &rt
		r.names = append(r.names, rt.Model)
	}
	sort.Strings(r.names)
	return r, nil
}

// checkProvider checks a provider and gives it a connection pool.
func checkProvider(p *Provider) error {
	switch {
	case p.BaseURL == nil:
		return fmt.Errorf("provider %q has no base URL", p.Name)
	case p.Format != FormatOpenAI && p.Format != FormatAnthropic:
		return fmt.Errorf("provider %q: unsupported format %q", p.Name, p.Format)
	}
	if p.Transport == nil {
		p.Transport = NewTransport()
	}
	return nil
}

var errNoRoute = errors.New("no provider serves this model")

// Lookup finds the route for a client-facing model name.
func (r *Router) Lookup(model string) (*Route, error) {
	if rt, ok := r.routes[model]; ok {
		return rt, nil
	}
	return nil, errNoRoute
}

// Models lists the client-facing model names in order.
func (r *Router) Models() []string { return r.names }

// upstreamURL joins the provider's base URL and the API path below /v1.
func upstreamURL(base *url.URL, apiPath string) *url.URL {
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + apiPath
	u.RawPath = ""
	return &u
}
