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
	Format  string   // "openai" (OpenAI-compatible APIs); "anthropic" comes with its adapter
	BaseURL *url.URL // e.g. https://api.openai.com/v1
	Timeout time.Duration

	key atomic.Pointer[string]
}

// Provider formats.
const FormatOpenAI = "openai"

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
	h.Set("Authorization", "Bearer "+k)
}

// Route says where a client-facing model name goes.
type Route struct {
	Model         string // the name clients use
	Provider      *Provider
	UpstreamModel string // the provider's name for it
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
		case rt.Provider.BaseURL == nil:
			return nil, fmt.Errorf("proxy: route %q: provider %q has no base URL", rt.Model, rt.Provider.Name)
		case rt.Provider.Format != FormatOpenAI:
			return nil, fmt.Errorf("proxy: route %q: provider %q: unsupported format %q", rt.Model, rt.Provider.Name, rt.Provider.Format)
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
