package policy

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxParts bounds each map of a parts cache; a full map is emptied.
const maxParts = 4096

// parts keeps the input values of principals, users and grants, per loaded
// bundle (the fields built depend on its shape): one workload sends many
// requests, a task's grant comes with each of its calls, so these parts of
// the input repeat where the request does not. OPA never modifies an input
// value, so evaluations share them as they share the store's data.
type parts struct {
	mu         sync.RWMutex
	principals map[Principal]*ast.Term
	users      map[User]*ast.Term
	grants     map[string]grantPart // by grant ID
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
