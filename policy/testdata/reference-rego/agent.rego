# Agent principals: autonomous workloads, held tighter than applications.
# An agent may only call the tenant's "agent_models" (a separate, shorter
# list), and its output is capped at data.limits.agent.max_tokens: a request
# asking for more is still allowed, with the cap as its max_tokens obligation.
package portcullis

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
	input.grant # agents act only under a task grant (grants.rego)
	input.request.model in data.tenants[input.principal.tenant].agent_models
	"agent" in data.models[input.request.model].kinds

	# grant_allows_llm_invoke's grant rule, inlined: one conjunction is
	# cheaper than a rule call.
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	input.request.model in data.purposes[input.grant.purpose].models
	user_allows_llm_invoke
}

deny contains model_denied_for("agent", "agent_models") if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
}
