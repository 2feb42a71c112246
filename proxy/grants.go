package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/policy"
)

// GrantOptions turn on task grants: the /v1/grants and /v1/tasks endpoints,
// the JWKS endpoint, and grant checks on model calls.
type GrantOptions struct {
	Keys     *identity.GrantKeyring
	Store    store.Store
	Audience string
	// DefaultTTL applies when a mint request names none; MaxTTL caps any
	// requested TTL (longer requests are shortened, not refused).
	DefaultTTL time.Duration
	MaxTTL     time.Duration
	// MaxDepth is the most delegations a chain may hold.
	MaxDepth int
	// Users validates Portcullis-User-Token; nil refuses requests that
	// carry one.
	Users *identity.UserVerifier
	// Leeway tolerates clock skew on grant times.
	Leeway time.Duration
}

// grants is the gateway's grant machinery, built from GrantOptions.
type grants struct {
	GrantOptions
	verifier *identity.GrantVerifier
}

// Error codes of the grant endpoints and checks (docs/grants.md).
const (
	codeGrantInvalid   = "invalid_grant"
	codeGrantRevoked   = "grant_revoked"
	codeGrantForbidden = "grant_not_yours"
	codeUserToken      = "invalid_user_token"
	codeBudget         = "budget_exceeded"
	codeRateLimited    = "rate_limited"
	codeStore          = "state_unavailable"
)

func newGrants(o *GrantOptions) (*grants, error) {
	switch {
	case o.Keys == nil:
		return nil, errors.New("proxy: grants: no signing keys")
	case o.Store == nil:
		return nil, errors.New("proxy: grants: no store")
	case o.Audience == "":
		return nil, errors.New("proxy: grants: no audience")
	}
	gr := &grants{GrantOptions: *o}
	if gr.MaxTTL <= 0 {
		gr.MaxTTL = 15 * time.Minute
	}
	if gr.DefaultTTL <= 0 || gr.DefaultTTL > gr.MaxTTL {
		gr.DefaultTTL = min(10*time.Minute, gr.MaxTTL)
	}
	if gr.MaxDepth <= 0 {
		gr.MaxDepth = 2
	}
	gr.verifier = identity.NewGrantVerifier(o.Keys, o.Audience, o.Leeway, 0)
	return gr, nil
}

func (g *Gateway) registerGrantRoutes() {
	g.mux.HandleFunc("POST /v1/grants", g.mintGrant)
	g.mux.HandleFunc("POST /v1/grants/{id}/delegate", g.delegateGrant)
	g.mux.HandleFunc("DELETE /v1/grants/{id}", g.revokeGrant)
	g.mux.HandleFunc("POST /v1/tasks/{task}/complete", g.completeTask)
	g.mux.HandleFunc("GET /.well-known/jwks.json", g.jwks)
}

// scopesJSON is the wire form of scopes in requests and responses.
type scopesJSON struct {
	Models    []string `json:"models"`
	Tools     []string `json:"tools"`
	MaxTokens int      `json:"max_tokens"`
}

type mintRequest struct {
	Task       string     `json:"task"`
	Purpose    string     `json:"purpose"`
	Tenant     string     `json:"tenant"`
	Scopes     scopesJSON `json:"scopes"`
	TTLSeconds int        `json:"ttl_seconds"`
}

// grantResponse is what POST /v1/grants and …/delegate return.
type grantResponse struct {
	Grant     string     `json:"grant"`
	ID        string     `json:"id"`
	Task      string     `json:"task"`
	Tenant    string     `json:"tenant"`
	Purpose   string     `json:"purpose"`
	Scopes    scopesJSON `json:"scopes"`
	Chain     []string   `json:"chain"`
	Parent    string     `json:"parent,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// action is one request to a grant endpoint, carried through decide → audit.
type action struct {
	c      *caller
	name   string // policy action
	in     *policy.Input
	d      policy.Decision
	detail map[string]any
	shape  errorShape
	req    *audit.Request // the model call, when the action is one
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	return nil
}

func (g *Gateway) mintGrant(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	a := &action{c: c, name: "grant.mint"}
	if !g.allowRate(w, r, a) {
		return
	}
	var req mintRequest
	if err := decodeJSON(w, r, &req); err != nil {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	if req.Tenant == "" {
		req.Tenant = c.principal.Tenant
	}
	if req.Task == "" || strings.ContainsAny(req.Task, "/\x00") || len(req.Task) > 128 {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, "task is required: up to 128 characters, no '/'")
		return
	}
	if req.TTLSeconds < 0 || req.Scopes.MaxTokens < 0 {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, "ttl_seconds and scopes.max_tokens must not be negative")
		return
	}
	user, ok := g.userContext(w, r, a)
	if !ok {
		return
	}
	if done, err := g.grants.Store.IsRevoked(r.Context(), "", taskKey(req.Tenant, req.Task)); err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	} else if done {
		g.refuseAction(w, r, a, http.StatusConflict, codeGrantRevoked, "task "+req.Task+" is completed; its grants are revoked for good, start a new task")
		return
	}
	if user == nil && c.principal.Kind == identity.KindHuman {
		// A human minting for their own task is the user.
		user = &identity.UserInfo{Subject: c.principal.ID.String(), Issuer: c.principal.ID.TrustDomain().IDString(), Kind: string(identity.KindHuman)}
	}
	ttl := g.grants.DefaultTTL
	if req.TTLSeconds > 0 {
		ttl = min(time.Duration(req.TTLSeconds)*time.Second, g.grants.MaxTTL)
	}
	now := g.clock()
	scopes := identity.Scopes{Models: req.Scopes.Models, Tools: req.Scopes.Tools, MaxTokens: req.Scopes.MaxTokens}
	a.in = &policy.Input{
		Action:    a.name,
		Principal: policyPrincipal(c.principal),
		User:      policyUser(user),
		Chain:     []string{c.principal.ID.String()},
		Grant: &policy.Grant{Task: req.Task, Purpose: req.Purpose, Tenant: req.Tenant,
			Scopes: policyScopes(scopes), ExpiresAt: now.Add(ttl).Unix()},
	}
	if !g.decideAction(w, r, a) {
		return
	}
	scopes = narrowScopes(scopes, a.d.Obligations)
	claims, err := identity.Mint(identity.MintRequest{
		Subject: c.principal.ID, Audience: g.grants.Audience, Task: req.Task, Tenant: req.Tenant,
		Purpose: req.Purpose, Scopes: scopes, TTL: ttl, User: user,
	}, now)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	g.issue(w, r, a, claims)
}

// issue signs claims (through the verifier, so the token's first use here
// costs no signature check), records the grant, audits and answers 201.
func (g *Gateway) issue(w http.ResponseWriter, r *http.Request, a *action, claims *identity.Grant) {
	token, err := g.grants.verifier.Sign(claims)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusInternalServerError, codeBadRequest, "the grant could not be signed")
		return
	}
	rec := store.GrantRecord{ID: claims.ID, Parent: claims.Parent, Task: taskKey(claims.Tenant, claims.Task),
		Subject: claims.Subject, Expiry: claims.ExpiresAt(), MaxTokens: int64(claims.Scopes.MaxTokens)}
	if err := g.grants.Store.PutGrant(r.Context(), rec); err != nil {
		g.storeUnavailable(w, r, a, err)
		return
	}
	a.addDetail(grantDetail(claims))
	if !g.auditAction(w, r, a, http.StatusCreated, "") {
		return
	}
	writeJSON(w, http.StatusCreated, grantResponse{
		Grant: token, ID: claims.ID, Task: claims.Task, Tenant: claims.Tenant, Purpose: claims.Purpose,
		Scopes: scopesJSON{Models: nonNilStrings(claims.Scopes.Models), Tools: nonNilStrings(claims.Scopes.Tools), MaxTokens: claims.Scopes.MaxTokens},
		Chain:  claims.Chain, Parent: claims.Parent, ExpiresAt: claims.ExpiresAt().UTC(),
	})
}

// narrowScopes applies a decision's obligations to requested scopes: a
// max_tokens obligation caps the budget, a tools obligation intersects.
func narrowScopes(s identity.Scopes, ob policy.Obligations) identity.Scopes {
	if ob.MaxTokens > 0 && (s.MaxTokens == 0 || s.MaxTokens > ob.MaxTokens) {
		s.MaxTokens = ob.MaxTokens
	}
	if ob.Tools != nil {
		s.Tools = slices.DeleteFunc(slices.Clone(s.Tools), func(t string) bool { return !slices.Contains(ob.Tools, t) })
	}
	return s
}

func taskKey(tenant, task string) string { return tenant + "/" + task }

func policyScopes(s identity.Scopes) policy.Scopes {
	return policy.Scopes{Models: s.Models, Tools: s.Tools, MaxTokens: s.MaxTokens}
}

func policyUser(u *identity.UserInfo) *policy.User {
	if u == nil {
		return nil
	}
	return &policy.User{Subject: u.Subject, Issuer: u.Issuer, Kind: u.Kind}
}

func policyGrant(gr *identity.Grant) *policy.Grant {
	return &policy.Grant{ID: gr.ID, Task: gr.Task, Purpose: gr.Purpose, Tenant: gr.Tenant,
		Scopes: policyScopes(gr.Scopes), ExpiresAt: gr.Expiry}
}

// grantDetail is what audit records say about a grant: everything but the
// signature, so the chain and user of every decision are in the log.
func grantDetail(gr *identity.Grant) map[string]any {
	d := map[string]any{
		"grant": map[string]any{
			"id": gr.ID, "task": gr.Task, "tenant": gr.Tenant, "purpose": gr.Purpose,
			"scopes":     scopesJSON{Models: nonNilStrings(gr.Scopes.Models), Tools: nonNilStrings(gr.Scopes.Tools), MaxTokens: gr.Scopes.MaxTokens},
			"expires_at": gr.Expiry, "depth": gr.Depth(),
		},
		"chain": gr.Chain,
	}
	if gr.Parent != "" {
		d["grant"].(map[string]any)["parent"] = gr.Parent
	}
	if gr.User != nil {
		d["user"] = *gr.User
	}
	return d
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// userContext verifies the user token header, if any. On failure it has
// answered 401.
func (g *Gateway) userContext(w http.ResponseWriter, r *http.Request, a *action) (*identity.UserInfo, bool) {
	tok := r.Header.Get(identity.UserTokenHeader)
	if tok == "" {
		return nil, true
	}
	if g.grants == nil || g.grants.Users == nil {
		g.refuseAction(w, r, a, http.StatusUnauthorized, codeUserToken, "this gateway accepts no user tokens ("+identity.UserTokenHeader+")")
		return nil, false
	}
	u, err := g.grants.Users.Verify(tok)
	if err != nil {
		g.refuseAction(w, r, a, http.StatusUnauthorized, codeUserToken, "the user token was refused: "+strings.TrimPrefix(err.Error(), "identity: "))
		return nil, false
	}
	return u, true
}

// decideAction asks policy; on deny (or a require_approval obligation it
// cannot meet) it has audited and answered 403.
func (g *Gateway) decideAction(w http.ResponseWriter, r *http.Request, a *action) bool {
	d, err := g.cfg.Policy.Decide(r.Context(), a.in)
	a.d = d
	switch {
	case err != nil:
		a.d.Allow = false
		g.refuseAction(w, r, a, http.StatusForbidden, codePolicyError,
			"the policy engine could not decide this request, so it is refused (decision id "+a.c.id+")")
		return false
	case !d.Allow:
		g.refuseAction(w, r, a, http.StatusForbidden, codePolicyDenied, "denied by policy: "+strings.Join(d.Reasons, "; "))
		return false
	case d.Obligations.RequireApproval:
		if res := g.actionApproval(w, r, a); res.refused() {
			a.d.Allow = false
			a.d.Reasons = append(slices.Clone(a.d.Reasons), res.reason)
			g.refuseAction(w, r, a, res.status, res.code, res.msg)
			return false
		}
	}
	return true
}

// refuseAction audits a refused action and answers with an error.
func (g *Gateway) refuseAction(w http.ResponseWriter, r *http.Request, a *action, status int, code, msg string) {
	if g.auditAction(w, r, a, status, msg) {
		writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: a.c.id, Shape: a.shape})
	}
}

func (g *Gateway) storeUnavailable(w http.ResponseWriter, r *http.Request, a *action, err error) {
	g.log.WithError(err).WithField("request_id", a.c.id).Error("grant state store unavailable: refusing")
	a.d.Allow = false
	g.refuseAction(w, r, a, http.StatusServiceUnavailable, codeStore,
		"the gateway cannot reach its grant state, so it refuses rather than guess; try again later")
}

// auditAction writes the action's record and names it in AuditSeqHeader.
// It returns false, having answered 503, when the audit log cannot take it.
func (g *Gateway) auditAction(w http.ResponseWriter, r *http.Request, a *action, status int, refusal string) bool {
	ad := &audit.Decision{Allow: a.d.Allow && refusal == "", Reasons: a.d.Reasons, Revision: a.d.Revision, CacheHit: a.d.CacheHit}
	if refusal != "" && (len(ad.Reasons) == 0 || a.d.Allow) {
		ad.Reasons = append(slices.Clone(ad.Reasons), refusal)
	}
	if ad.Reasons == nil {
		ad.Reasons = []string{}
	}
	ev := &audit.Event{Type: "decision", RequestID: a.c.id, Action: a.name,
		Principal: auditPrincipal(a.c.principal), Request: a.req, Decision: ad, Status: status, Detail: a.detail}
	if ev.Detail == nil && a.in != nil {
		ev.Detail = inputDetail(a.in)
	}
	seq, err := g.cfg.Audit.Append(context.WithoutCancel(r.Context()), ev)
	if err != nil {
		g.auditUnavailableAs(w, a.shape, a.c.id, err)
		return false
	}
	setAuditSeq(w, seq)
	return true
}

// inputDetail records the grant context of a policy input.
func inputDetail(in *policy.Input) map[string]any {
	d := map[string]any{}
	if in.Grant != nil {
		d["grant"] = in.Grant
	}
	if len(in.Chain) > 0 {
		d["chain"] = in.Chain
	}
	if in.User != nil {
		d["user"] = in.User
	}
	if len(d) == 0 {
		return nil
	}
	return d
}
