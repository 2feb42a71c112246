package proxy

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
)

type delegateRequest struct {
	To         string     `json:"to"`
	Scopes     scopesJSON `json:"scopes"`
	TTLSeconds int        `json:"ttl_seconds"`
}

// heldGrant verifies the caller's grant and that it is the one the path
// names. On failure it has audited and answered.
func (g *Gateway) heldGrant(w http.ResponseWriter, r *http.Request, a *action, id string) (*identity.Grant, bool) {
	gr, ref := g.presentedGrant(r, a.c)
	if gr != nil {
		a.detail = grantDetail(gr)
	}
	switch {
	case ref != nil:
		g.refuseAction(w, r, a, ref.status, ref.code, ref.msg)
		return nil, false
	case gr == nil:
		g.refuseAction(w, r, a, http.StatusUnauthorized, codeGrantInvalid, "present the grant as Authorization: Bearer <grant>")
		return nil, false
	case gr.ID != id:
		g.refuseAction(w, r, a, http.StatusForbidden, codeGrantForbidden, "the presented grant is "+gr.ID+", not "+id)
		return nil, false
	}
	return gr, true
}

func (g *Gateway) delegateGrant(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	a := &action{c: c, name: "grant.delegate"}
	if !g.allowRate(w, r, a) {
		return
	}
	parent, ok := g.heldGrant(w, r, a, pathSegment(r, 3))
	if !ok {
		return
	}
	var req delegateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	toID, err := spiffeid.FromString(req.To)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, "to must be a SPIFFE ID: "+err.Error())
		return
	}
	to, err := g.cfg.Resolver.Resolve(toID)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusForbidden, codeUnknownIdentity, req.To+" is not a principal on this gateway")
		return
	}
	if req.TTLSeconds < 0 {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, "ttl_seconds must not be negative")
		return
	}
	now := g.clock()
	child, err := identity.Delegate(parent, identity.DelegateRequest{
		To:       to,
		Scopes:   identity.Scopes{Models: req.Scopes.Models, Tools: req.Scopes.Tools, MaxTokens: req.Scopes.MaxTokens},
		TTL:      time.Duration(req.TTLSeconds) * time.Second,
		MaxDepth: g.grants.MaxDepth,
	}, now)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusForbidden, codePolicyDenied, "delegation refused: "+strings.TrimPrefix(err.Error(), "identity: "))
		return
	}
	a.in = &policy.Input{
		Action:    a.name,
		Principal: policyPrincipal(c.principal),
		User:      policyUser(child.User),
		Chain:     child.Chain,
		Grant:     policyGrant(child),
	}
	a.detail = grantDetail(child)
	if !g.decideAction(w, r, a) {
		return
	}
	child.Scopes = narrowScopes(child.Scopes, a.d.Obligations)
	g.issue(w, r, a, child)
}

// revokeGrant revokes a grant and its descendants. Policy (grant.revoke)
// sees the grant and the chain of subjects from its root to it.
func (g *Gateway) revokeGrant(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	a := &action{c: c, name: "grant.revoke"}
	id := pathSegment(r, 3)
	rec, err := g.grants.Store.Grant(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		a.detail = map[string]any{"grant": map[string]any{"id": id}}
		g.refuseAction(w, r, a, http.StatusNotFound, codeNotFound, "no grant "+id+" on this gateway")
		return
	}
	if err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	}
	chain, err := g.lineage(r, rec)
	if err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	}
	tenant, task, _ := strings.Cut(rec.Task, "/")
	a.in = &policy.Input{
		Action:    a.name,
		Principal: policyPrincipal(c.principal),
		Chain:     chain,
		Grant:     &policy.Grant{ID: rec.ID, Task: task, Tenant: tenant, ExpiresAt: rec.Expiry.Unix()},
	}
	if !g.decideAction(w, r, a) {
		return
	}
	ids, err := g.grants.Store.RevokeGrant(r.Context(), id, "revoked by "+c.principal.ID.String())
	if err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	}
	a.detail = inputDetail(a.in)
	a.detail["revoked"] = ids
	if !g.auditAction(w, r, a, http.StatusOK, "") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": ids})
}

// lineage returns the subjects from the grant's root to the grant.
func (g *Gateway) lineage(r *http.Request, rec store.GrantRecord) ([]string, error) {
	chain := []string{rec.Subject}
	for rec.Parent != "" && len(chain) <= g.grants.MaxDepth+1 {
		p, err := g.grants.Store.Grant(r.Context(), rec.Parent)
		if err != nil {
			return nil, err
		}
		chain = append([]string{p.Subject}, chain...)
		rec = p
	}
	return chain, nil
}

// completeTask revokes every grant of a task of the caller's tenant. The
// caller presents a grant of that task, or is a principal policy lets
// complete tasks without one (by default, a human of the tenant).
func (g *Gateway) completeTask(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	a := &action{c: c, name: "task.complete"}
	task := pathSegment(r, 3)
	gr, ref := g.presentedGrant(r, c)
	if ref != nil {
		g.refuseAction(w, r, a, ref.status, ref.code, ref.msg)
		return
	}
	a.in = &policy.Input{Action: a.name, Principal: policyPrincipal(c.principal),
		Grant: &policy.Grant{Task: task, Tenant: c.principal.Tenant}}
	if gr != nil {
		if gr.Task != task {
			a.detail = grantDetail(gr)
			g.refuseAction(w, r, a, http.StatusForbidden, codeGrantForbidden, "the presented grant is for task "+gr.Task+", not "+task)
			return
		}
		a.in.Grant, a.in.Chain, a.in.User = policyGrant(gr), gr.Chain, policyUser(gr.User)
	}
	if !g.decideAction(w, r, a) {
		return
	}
	key := taskKey(a.in.Grant.Tenant, task)
	if err := g.grants.Store.RevokeTask(r.Context(), key, "task completed by "+c.principal.ID.String()); err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	}
	if !g.auditAction(w, r, a, http.StatusOK, "") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"task": task, "tenant": a.in.Grant.Tenant, "revoked": true})
}

// jwks publishes the grant verification keys.
func (g *Gateway) jwks(w http.ResponseWriter, r *http.Request) {
	a := &action{c: callerFrom(r.Context()), name: "grant.jwks", d: policy.Decision{Allow: true, Reasons: []string{"public keys"}}}
	if !g.auditAction(w, r, a, http.StatusOK, "") {
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(g.grants.Keys.JWKS())
}

// pathSegment returns the i-th segment of the request path
// ("/v1/grants/{id}/delegate" has the id at 3). The gateway dispatches with
// ServeMux.Handler, which does not fill in PathValue.
func pathSegment(r *http.Request, i int) string {
	segs := strings.Split(r.URL.Path, "/")
	if i < len(segs) {
		return segs[i]
	}
	return ""
}
