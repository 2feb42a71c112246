# Human approvals: which actions need one, and who may give it.
#
# Data (approvals/data.json, no Rego change to extend it):
#   data.approvals.tools   tools whose use needs a human approval: a model
#                          call that offers one to the model (llm.invoke),
#                          and a call of one through the gateway (tool.call);
#                          not a token count (counts_tokens, base.rego),
#                          which lists tools but lets the model call none
#   data.approvals.models  models every call of which needs an approval,
#                          token counts included: a count sends the prompt
#                          to the model's provider all the same
#   data.approvals.grant_purposes
#                          purposes whose grants need an approval to be minted
#                          or delegated (grant.mint, grant.delegate)
#
# The decision then carries the obligation require_approval: the gateway
# parks the action and answers 403 approval_required with an approval id;
# the caller retries the identical action with that id once a human has
# approved it (docs/approvals.md).
#
# approval.decide: the principal is the would-be approver, input.approval
# the parked action ({id, requester, tenant, action, user}) and input.chain
# the parked request's chain of actors. Only a human of the approval's
# tenant may decide, and never the requester, an actor in the chain or the
# user the request acts for: no one approves their own action, and no
# machine approves at all (the approver's own SVID must be a human's; a
# human's token relayed by a workload does not make it one).
package portcullis

default require_approval := false

require_approval if {
	input.action == "llm.invoke"
	some t in input.request.tools
	t in data.approvals.tools
	not counts_tokens
}

require_approval if {
	input.action == "llm.invoke"
	input.request.model in data.approvals.models
}

require_approval if {
	input.action == "tool.call"
	input.tool.name in data.approvals.tools
}

# A grant for one of these purposes is minted or delegated only once a human
# approved exactly that grant request.
# (One rule per action: equality on input.action is what OPA's rule index
# can skip on.)
require_approval if {
	input.action == "grant.mint"
	input.grant.purpose in object.get(data.approvals, "grant_purposes", [])
}

require_approval if {
	input.action == "grant.delegate"
	input.grant.purpose in object.get(data.approvals, "grant_purposes", [])
}

# --- approval.decide ------------------------------------------------------------

allow_decision := {
	"allow": true,
	"reasons": [concat("", [
		input.principal.spiffe_id, " may decide approval ", input.approval.id,
		" of ", input.approval.requester,
	])],
	"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
} if input.action == "approval.decide"

allow if {
	input.action == "approval.decide"
	input.principal.kind == "human"
	input.principal.tenant == input.approval.tenant
	data.tenants[input.principal.tenant]
	not approver_involved
}

# approver_involved: the approver is the requester, an actor of the parked
# request's chain, or the user it acts for.
approver_involved if input.principal.spiffe_id == input.approval.requester

approver_involved if input.principal.spiffe_id in input.chain

approver_involved if input.principal.spiffe_id == input.approval.user

deny contains sprintf("only humans may approve; %s is a %s", [input.principal.spiffe_id, input.principal.kind]) if {
	input.action == "approval.decide"
	input.principal.kind != "human"
}

deny contains sprintf("a principal of tenant %s cannot decide an approval of tenant %s", [
	input.principal.tenant,
	input.approval.tenant,
]) if {
	input.action == "approval.decide"
	input.principal.tenant != input.approval.tenant
}

deny contains "the requester cannot approve their own action" if {
	input.action == "approval.decide"
	input.principal.spiffe_id == input.approval.requester
}

deny contains sprintf("%s is in the request's chain and cannot approve it", [input.principal.spiffe_id]) if {
	input.action == "approval.decide"
	input.principal.spiffe_id in input.chain
}

deny contains sprintf("%s is the user the request acts for and cannot approve it", [input.principal.spiffe_id]) if {
	input.action == "approval.decide"
	input.principal.spiffe_id == input.approval.user
}
