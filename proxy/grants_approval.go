package proxy

import (
	"encoding/json"
	"net/http"
)

// actionApproval is the approval step of a grant action (grant.mint,
// grant.delegate) whose decision carries require_approval. The digest binds
// the approval to the caller, tenant, task, user, chain, the endpoint and
// the decided input — task, purpose, tenant, scopes, the parent grant — so
// that a retry asking for anything else needs an approval of its own. The
// requested expiry is left out: it is "now + TTL", so it moves between the
// request and its retry, while the TTL cap still applies at mint time.
func (g *Gateway) actionApproval(w http.ResponseWriter, r *http.Request, a *action) gateResult {
	in := *a.in
	var summary map[string]any
	if in.Grant != nil {
		gr := *in.Grant
		gr.ExpiresAt = 0
		in.Grant = &gr
		summary = map[string]any{"task": gr.Task, "purpose": gr.Purpose, "tenant": gr.Tenant,
			"models": nonNilStrings(gr.Scopes.Models), "tools": nonNilStrings(gr.Scopes.Tools), "max_tokens": gr.Scopes.MaxTokens}
		if gr.ID != "" {
			summary["parent_grant"] = gr.ID
		}
	}
	canon, err := json.Marshal(&in)
	if err != nil {
		return gateResult{status: http.StatusForbidden, code: codePolicyDenied, reason: "approval digest: " + err.Error(),
			msg: "this action requires a human approval, and the gateway could not describe it for one; it is refused"}
	}
	fields := append(bindingFields(a.name, a.c.principal, a.in), []byte(r.URL.Path), canon)
	res := g.approvalGate(r, &parkable{
		c: a.c, action: a.name, in: a.in, d: a.d,
		digest:  actionDigest(g.cfg.DigestKey, fields...),
		summary: map[string]any{"action": a.name, "path": r.URL.Path, "grant": summary},
	})
	if res.approvalID != "" {
		w.Header().Set(ApprovalIDHeader, res.approvalID)
		d := map[string]any{"approval_id": res.approvalID}
		if res.used {
			d["approval_origin_request_id"] = res.originReqID
			d["approved_by"] = res.approvalUser
		}
		a.addDetail(d)
	}
	return res
}

// addDetail merges m into the action's audit detail, keeping what an earlier
// step (the approval) put there.
func (a *action) addDetail(m map[string]any) {
	if a.detail == nil {
		a.detail = m
		return
	}
	for k, v := range m {
		a.detail[k] = v
	}
}
