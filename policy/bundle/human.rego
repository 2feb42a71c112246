# Human principals: people calling through a client with their own SVID.
# A human may call any model the tenant lists under "models", as the model
# catalog (data.models[m].kinds) permits.
package portcullis

import data.portcullis.tables

# The common cases first, each one conjunction over the lookup table
# (tables.rego): no grant and no user, then a grant and no user. Rules of a
# complete rule with a constant value stop at the first that holds, so the
# general rule below only runs, for a request on behalf of a user, when
# these fail.
allow if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
	not input.grant
	not input.user
	tables.llm[input.principal.tenant].human[input.request.model]
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
	not input.user
	input.grant
	e := tables.llm[input.principal.tenant].human[input.request.model]
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	e.purposes[input.grant.purpose]
}

allow if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
	input.user
	tables.llm[input.principal.tenant].human[input.request.model]
	grant_allows_llm_invoke
}

deny contains model_denied_for("human", "models") if {
	input.action == "llm.invoke"
	input.principal.kind == "human"
}
