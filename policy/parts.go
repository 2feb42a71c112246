package policy

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxParts bounds each map of a parts cache; a full map is emptied.
const maxParts = 4096

// parts keeps the input values of principals, users, grants and requests,
// and of whole inputs built from them, per loaded bundle (the fields built
// depend on its shape): one workload sends many requests, a task's grant
// comes with each of its calls, and once the shape leaves out the prompt's
// size a request's value repeats too. OPA never modifies an input
// value, so evaluations share them as they share the store's data.
type parts struct {
	mu         sync.RWMutex
	principals map[Principal]*ast.Term
	users      map[User]*ast.Term
	grants     map[string]grantPart // by grant ID
	requests   map[requestKey]requestPart
	inputs     map[inputKey]ast.Value
}

// inputKey is a whole input without a chain: its action, tool and approval,
// and its other parts by identity (the values this cache holds; nil when
// absent or left out by the shape).
type inputKey struct {
	action                          string
	principal, user, grant, request *ast.Term
	tool                            Tool
	approval                        Approval
	hasTool, hasApproval            bool
}

// requestKey is a request's scalar fields that the bundle's shape keeps
// (the others zero): with the prompt's size and max_tokens left out, as the
// default bundle leaves them, requests repeat too.
type requestKey struct {
	api, model, provider   string
	stream                 bool
	maxTokens, bytes, msgs int
}

// requestPart is a request's value and the lists it was built from (nil
// when the shape leaves them out).
type requestPart struct {
	tools, toolResults []string
	term               *ast.Term
}

// grantPart is a grant's value and a copy of the grant it was built from:
// a hit must match every field, not only the ID.
type grantPart struct {
	grant Grant
	term  *ast.Term
}

func newParts() *parts {
	return &parts{
		principals: make(map[Principal]*ast.Term),
		users:      make(map[User]*ast.Term),
		grants:     make(map[string]grantPart),
		requests:   make(map[requestKey]requestPart),
		inputs:     make(map[inputKey]ast.Value),
	}
}

func (p *parts) principal(k Principal) *ast.Term {
	p.mu.RLock()
	t := p.principals[k]
	p.mu.RUnlock()
	return t
}

func (p *parts) user(k User) *ast.Term {
	p.mu.RLock()
	t := p.users[k]
	p.mu.RUnlock()
	return t
}

func (p *parts) grant(g *Grant) *ast.Term {
	p.mu.RLock()
	e, ok := p.grants[g.ID]
	p.mu.RUnlock()
	if !ok || !sameGrant(&e.grant, g) {
		return nil
	}
	return e.term
}

func (p *parts) putPrincipal(k Principal, t *ast.Term) {
	p.mu.Lock()
	put(p.principals, k, t)
	p.mu.Unlock()
}

func (p *parts) putUser(k User, t *ast.Term) {
	p.mu.Lock()
	put(p.users, k, t)
	p.mu.Unlock()
}

func (p *parts) putGrant(g *Grant, t *ast.Term) {
	c := *g
	c.Scopes.Models = slices.Clone(g.Scopes.Models)
	c.Scopes.Tools = slices.Clone(g.Scopes.Tools)
	p.mu.Lock()
	put(p.grants, g.ID, grantPart{c, t})
	p.mu.Unlock()
}

// keyOf is r's key under shape m, and r's lists that m keeps.
func keyOf(r *Request, m fieldMask) (k requestKey, tools, results []string) {
	if m.has(fRequestAPI) {
		k.api = r.API
	}
	if m.has(fRequestModel) {
		k.model = r.Model
	}
	if m.has(fRequestProvider) {
		k.provider = r.Provider
	}
	if m.has(fRequestStream) {
		k.stream = r.Stream
	}
	if m.has(fRequestMaxTokens) {
		k.maxTokens = r.MaxTokens
	}
	if m.has(fRequestPrompt | fRequestPromptBytes) {
		k.bytes = r.Prompt.Bytes
	}
	if m.has(fRequestPrompt | fRequestPromptMessages) {
		k.msgs = r.Prompt.Messages
	}
	if m.has(fRequestTools) {
		tools = r.Tools
	}
	if m.has(fRequestToolResults) {
		results = r.ToolResults
	}
	return k, tools, results
}

func (p *parts) request(r *Request, m fieldMask) *ast.Term {
	k, tools, results := keyOf(r, m)
	p.mu.RLock()
	e, ok := p.requests[k]
	p.mu.RUnlock()
	if !ok || !slices.Equal(e.tools, tools) || !slices.Equal(e.toolResults, results) {
		return nil
	}
	return e.term
}

func (p *parts) putRequest(r *Request, m fieldMask, t *ast.Term) {
	k, tools, results := keyOf(r, m)
	e := requestPart{slices.Clone(tools), slices.Clone(results), t}
	p.mu.Lock()
	put(p.requests, k, e)
	p.mu.Unlock()
}

func (p *parts) input(k inputKey) ast.Value {
	p.mu.RLock()
	v := p.inputs[k]
	p.mu.RUnlock()
	return v
}

func (p *parts) putInput(k inputKey, v ast.Value) {
	p.mu.Lock()
	put(p.inputs, k, v)
	p.mu.Unlock()
}

func put[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxParts {
		clear(m)
	}
	m[k] = v
}

// sameGrant reports whether a and b encode the same input value (a nil
// list and an empty one both encode as []).
func sameGrant(a, b *Grant) bool {
	return a.ID == b.ID && a.Task == b.Task && a.Purpose == b.Purpose && a.Tenant == b.Tenant &&
		a.ExpiresAt == b.ExpiresAt && a.Scopes.MaxTokens == b.Scopes.MaxTokens &&
		slices.Equal(a.Scopes.Models, b.Scopes.Models) && slices.Equal(a.Scopes.Tools, b.Scopes.Tools)
}
