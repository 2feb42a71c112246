# Application principals: services calling on their own behalf. Like humans
# they may call the tenant's "models", but only those the catalog admits for
# applications (so not a human-only model such as o3-mini in the dev data).
package portcullis

# The common case first, as one conjunction: no grant and no user, so
# grant_allows_llm_invoke has nothing to add. Rules of a complete rule with a
# constant value stop at the first that holds, so the general rule below only
# runs when this one fails.
allow if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
	not input.grant
	not input.user
	input.request.model in data.tenants[input.principal.tenant].models
	"application" in data.models[input.request.model].kinds
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
	input.request.model in data.tenants[input.principal.tenant].models
	"application" in data.models[input.request.model].kinds
	grant_allows_llm_invoke
}

deny contains model_denied_for("application", "models") if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
}
