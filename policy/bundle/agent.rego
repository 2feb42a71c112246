# Agent principals: autonomous workloads, held tighter than applications.
# An agent may only call the tenant's "agent_models" (a separate, shorter
# list), and its output is capped at data.limits.agent.max_tokens: a request
# asking for more is still allowed, with the cap as its max_tokens obligation.
package portcullis

import data.portcullis.tables

# Agents act only under a task grant (grants.rego). The common case, no
# user, is one conjunction over the lookup table (tables.rego); a request on
# behalf of a user adds the user's rights.
allow if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
	not input.user
	input.grant
	e := tables.llm[input.principal.tenant].agent[input.request.model]
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	e.purposes[input.grant.purpose]
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
	input.user
	input.grant
	e := tables.llm[input.principal.tenant].agent[input.request.model]
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	e.purposes[input.grant.purpose]
	user_allows_llm_invoke
}

deny contains model_denied_for("agent", "agent_models") if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
}
