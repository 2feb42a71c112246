# Application principals: services calling on their own behalf. Like humans
# they may call the tenant's "models", but only those the catalog admits for
# applications (so not a human-only model such as o3-mini in the dev data).
package portcullis

import data.portcullis.tables

# The common cases first, each one conjunction over the lookup table
# (tables.rego): no grant and no user, then a grant and no user. Rules of a
# complete rule with a constant value stop at the first that holds, so the
# general rule below only runs, for a request on behalf of a user, when
# these fail.
allow if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
	not input.grant
	not input.user
	tables.llm[input.principal.tenant].application[input.request.model]
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
	not input.user
	input.grant
	e := tables.llm[input.principal.tenant].application[input.request.model]
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	e.purposes[input.grant.purpose]
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
	input.user
	tables.llm[input.principal.tenant].application[input.request.model]
	grant_allows_llm_invoke
}

deny contains model_denied_for("application", "models") if {
	input.action == "llm.invoke"
	input.principal.kind == "application"
}
