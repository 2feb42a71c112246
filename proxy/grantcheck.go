package proxy

import (
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/policy"
)

// taskContext is the grant and user context of one request, once verified.
type taskContext struct {
	grant *identity.Grant
	user  *identity.UserInfo
	// budgets reserved for the exchange, settled when it completes.
	budgetKeys []string
	reserved   int64
}

// grantRefusal is why a presented grant is not accepted.
type grantRefusal struct {
	status int
	code   string
	msg    string
}

// bearer returns the grant a request presents: the Authorization bearer
// value (the OpenAI SDKs' API key), else X-Api-Key (the Anthropic SDKs'),
// when it has the shape of a compact JWS. Anything else (an SDK's
// placeholder API key) is no grant. Neither header is forwarded upstream.
func bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.Count(v, ".") != 2 {
		v = r.Header.Get("X-Api-Key")
	}
	if strings.Count(v, ".") != 2 {
		return ""
	}
	return strings.TrimSpace(v)
}

// presentedGrant verifies the grant in the Authorization header, if any: its
// signature, audience and times, its binding to the caller's SPIFFE ID, and —
// outside any cache, on every use — that neither it nor its task is revoked.
func (g *Gateway) presentedGrant(r *http.Request, c *caller) (*identity.Grant, *grantRefusal) {
	tok := bearer(r)
	if tok == "" || g.grants == nil {
		return nil, nil
	}
	gr, err := g.grants.verifier.Verify(tok, c.principal.ID, g.clock())
	if err != nil {
		status, code := http.StatusUnauthorized, codeGrantInvalid
		if errors.Is(err, identity.ErrGrantBinding) {
			status, code = http.StatusForbidden, codeGrantForbidden
		}
		// gr, when not nil, is a well-signed grant used wrongly (stolen,
		// expired): returned for the audit record only.
		return gr, &grantRefusal{status, code, "the task grant was refused: " + strings.TrimPrefix(err.Error(), "identity: ")}
	}
	revoked, err := g.grants.Store.IsRevoked(r.Context(), gr.ID, taskKey(gr.Tenant, gr.Task))
	if err != nil {
		g.log.WithError(err).WithField("request_id", c.id).Error("revocation state unavailable: refusing")
		return gr, &grantRefusal{http.StatusServiceUnavailable, codeStore, "the gateway cannot check whether the task grant is revoked, so it refuses; try again later"}
	}
	if revoked {
		return gr, &grantRefusal{http.StatusUnauthorized, codeGrantRevoked, "the task grant " + gr.ID + " (task " + gr.Task + ") has been revoked"}
	}
	return gr, nil
}

// checkTask is the chat pipeline's grant step, called once the policy input
// is built and before the decision. It applies the caller's rate limit,
// verifies the grant and user token, and adds grant, user and chain to in.
// When it returns false it has already audited and answered.
func (g *Gateway) checkTask(w http.ResponseWriter, r *http.Request, x *exchange, in *policy.Input) bool {
	a := &action{c: x.caller, name: in.Action, in: in, shape: x.shape, req: auditRequest(x)}
	if !g.allowRate(w, r, a) {
		return false
	}
	gr, ref := g.presentedGrant(r, x.caller)
	if gr != nil {
		in.Grant = policyGrant(gr)
		in.Chain = gr.Chain
		in.User = policyUser(gr.User)
	}
	if ref != nil {
		g.refuseAction(w, r, a, ref.status, ref.code, ref.msg)
		return false
	}
	user, ok := g.userContext(w, r, a)
	if !ok {
		return false
	}
	tc := &taskContext{grant: gr, user: user}
	if gr != nil && gr.User != nil {
		if user != nil && *user != *gr.User {
			g.refuseAction(w, r, a, http.StatusForbidden, codeUserToken,
				"the user token names "+user.Subject+" but the task grant was issued for "+gr.User.Subject)
			return false
		}
		tc.user = gr.User
	}
	in.User = policyUser(tc.user)
	x.task = tc
	return true
}

// listGrantContext is the grant context for listing models: a valid grant
// adds its grant, chain and user; an invalid one is ignored (the list is
// then what the caller may do without it).
func (g *Gateway) listGrantContext(r *http.Request, c *caller) policy.Input {
	var in policy.Input
	if gr, ref := g.presentedGrant(r, c); gr != nil && ref == nil {
		in.Grant, in.Chain, in.User = policyGrant(gr), gr.Chain, policyUser(gr.User)
	}
	return in
}
