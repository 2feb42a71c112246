# Human principals: people calling through a client with their own SVID.
# A human may call any model the tenant lists under "models", as the model
# catalog (data.models[m].kinds) permits.
package portcullis

# The common case first, as one conjunction: no grant and no user, so
# grant_allows_llm_invoke has nothing to add. Rules of a complete rule with a
# constant value stop at the first that holds, so the general rule below only
# runs when this one fails.
allow if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
	not input.grant
	not input.user
	input.request.model in data.tenants[input.principal.tenant].models
	"human" in data.models[input.request.model].kinds
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
	input.request.model in data.tenants[input.principal.tenant].models
	"human" in data.models[input.request.model].kinds
	grant_allows_llm_invoke
}

deny contains model_denied_for("human", "models") if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
}
