# The default Portcullis policy. The gateway asks for data.portcullis.decision
# and nothing else; docs/policy.md describes the input and the decision.
#
# The four modules share package portcullis: this one (base.rego) builds the
# decision; human.rego, application.rego and agent.rego add the `allow` and
# `deny` rules for their kind of principal. Each kind's rules start with
# input.action == "..." and input.principal.kind == "...", so OPA's rule index
# evaluates only the rules for the caller's kind.
#
# Shape is performance here: the allow path is one positive conjunction per
# kind, and the reasons for a deny are only computed when nothing allowed.
#
# Never base a decision on input.grant.expires_at: it is not part of the
# decision cache key. The gateway checks expiry before asking.
#
# Rules read the input fields they need (input.grant.tenant) rather than
# binding a whole object (g := input.grant) or passing input itself to a
# builtin: the gateway builds only the input fields a bundle refers to, and
# a whole object or input makes it build every field below it.
package portcullis

import data.portcullis.tables

# One definition, evaluated once, as an else chain that stops at the first
# branch that holds. OPA's rule index sees each branch: a branch whose
# equalities on input (input.action, input.request.tools == []) or whose
# required refs (input.grant, input.user) do not hold for the input is
# skipped without evaluating it.
#
# The first branches answer the common requests from the lookup tables
# (tables.rego), exactly as the rules below would:
#   - llm.invoke without a grant or a user: the whole decision, allow or
#     deny, is a table entry (tables.plain; tables.plain_approval when an
#     offered tool needs an approval and the request is not a token count);
#   - the same on behalf of a user the kind's rules allow: the entry, once
#     the user may use the model;
#   - llm.invoke under a grant, without a user or tools: the grant's
#     checks, then the tables.grant_llm entry, a grant-scoped allow: the
#     gateway appends " under grant <id>" to its reason, sets the grant's
#     tools and lowers the token cap to the grant's (docs/policy.md,
#     "Decision"), as allow_decision below does in Rego;
#   - tool.call of a listed tool by its bare name: a table entry.
# Each builtin, rule call or `not` on these paths is a measurable share of
# a decision: docs/policy.md, "Performance".
#
# Every other request asks `allow` (indexed on input.action and
# input.principal.kind, so only the caller's rules run) and then the
# action's allow_decision; only when nothing allowed does the last branch
# compute the deny reasons. (Several unguarded `decision` definitions would
# each be evaluated on every input, to check they do not conflict.)
decision := d if {
	input.action == "llm.invoke"
	input.request.tools == []
	not input.user
	input.grant
	input.grant.tenant == input.principal.tenant
	d := tables.grant_llm[input.grant.tenant][input.principal.kind][input.request.model][input.grant.purpose]
	input.request.model in input.grant.scopes.models
} else := d if {
	input.action == "llm.invoke"
	input.request.tools == []
	not input.grant
	input.user
	d := tables.plain[input.principal.tenant][input.principal.kind][input.request.model]
	d.allow
	tables.user_models[input.user.subject][input.request.model]
} else := d if {
	input.action == "llm.invoke"
	input.request.tools == []
	not input.grant
	input.user
	d := tables.plain[input.principal.tenant][input.principal.kind][input.request.model]
	d.allow
	not data.users[input.user.subject]
	tables.llm[input.principal.tenant].human[input.request.model]
} else := d if {
	input.action == "llm.invoke"
	input.request.tools == []
	not input.grant
	not input.user
	d := tables.plain[input.principal.tenant][input.principal.kind][input.request.model]
} else := d if {
	input.action == "llm.invoke"
	tables.approval_tools[input.request.tools[_]]
	not counts_tokens
	not input.grant
	not input.user
	d := tables.plain_approval[input.principal.tenant][input.principal.kind][input.request.model]
} else := d if {
	input.action == "llm.invoke"
	not input.grant
	not input.user
	d := tables.plain[input.principal.tenant][input.principal.kind][input.request.model]
} else := d if {
	input.action == "tool.call"
	input.tool.server == ""
	not input.grant
	d := tables.tool_calls[input.principal.tenant][input.principal.kind][input.tool.name]
} else := d if {
	input.action == "tool.call"
	input.tool.server == ""
	input.grant
	d := tables.tool_calls[input.principal.tenant][input.principal.kind][input.tool.name]
	input.tool.name in input.grant.scopes.tools
} else := allow_decision if {
	allow
} else := {
	"allow": false,
	"reasons": deny_reasons,
	"obligations": {},
} if not allow

# allow_decision is the allowed decision for the action: one definition per
# action, each guarded by input.action equality. The definitions carry their
# reason and obligations inline: every extra rule costs an evaluation.
allow_decision := {
	"allow": true,
	"reasons": [concat("", [
		"model ", input.request.model,
		" is allowed for ", input.principal.kind,
		"s of tenant ", input.principal.tenant,
	])],
	"obligations": {
		"max_tokens": kind_max_tokens,
		"require_approval": require_approval,
		"provider": "",
	},
} if {
	input.action == "llm.invoke"
	not input.grant
}

# A grant narrows the tools to its scopes and may lower the token cap.
allow_decision := {
	"allow": true,
	"reasons": [concat("", [
		"model ", input.request.model,
		" is allowed for ", input.principal.kind,
		"s of tenant ", input.principal.tenant,
		" under grant ", input.grant.id,
	])],
	"obligations": {
		"max_tokens": grant_cap(kind_max_tokens, input.grant.scopes.max_tokens),
		"tools": sort(input.grant.scopes.tools),
		"require_approval": require_approval,
		"provider": "",
	},
} if {
	input.action == "llm.invoke"
	input.grant
}

# counts_tokens: the llm.invoke only counts its prompt's tokens (Anthropic's
# count_tokens, request.api "anthropic.count_tokens"). It is decided as a
# call of its model (same rules, same tables) but generates nothing, so it
# can call none of the tools it lists: approvals.rego asks no approval for
# them. (Defined by equality, so an input without request.api is no count.)
counts_tokens if input.request.api == "anthropic.count_tokens"

# --- grants -----------------------------------------------------------------

# Without a grant the principal's own rights apply. With one, the request must
# also stay inside the grant's tenant and model scopes.
# grants.rego adds the purpose's and the user's limits.
grant_allows_llm_invoke if {
	not input.grant
	user_allows_llm_invoke
}

grant_allows_llm_invoke if {
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
	grant_purpose_allows_llm_invoke
	user_allows_llm_invoke
}

# --- obligations --------------------------------------------------------------

# The kind's output cap comes from data.limits (for example
# data.limits.agent.max_tokens); 0 means no cap, and so does a bundle without
# data.limits. (One object.get rather than a default and a rule: one
# evaluation.)
kind_max_tokens := object.get(tables.limits, [input.principal.kind, "max_tokens"], 0)

# grant_cap(kind_cap, grant_cap): with a grant, the lower of the kind's and
# the grant's caps (0 = no cap). One else chain: the branches exclude each
# other, and a chain stops at the first that holds where separate rules would
# all be evaluated.
grant_cap(k, g) := k if {
	g == 0
} else := g if {
	k == 0
	g > 0
} else := min([k, g]) if {
	k > 0
	g > 0
}

# --- deny reasons -----------------------------------------------------------

deny_reasons := sort(deny) if count(deny) > 0 else := ["no rule allows this request"]

deny contains "request has no action" if not input.action

deny contains sprintf("unknown action %q", [input.action]) if {
	not input.action in data.actions
	not startswith(input.action, "admin.")
}

deny contains sprintf("no rule allows action %s", [input.action]) if {
	input.action != "llm.invoke"
	known_action
}

known_action if input.action in data.actions

known_action if startswith(input.action, "admin.")

deny contains sprintf("unknown tenant %q", [input.principal.tenant]) if {
	not data.tenants[input.principal.tenant]
}

deny contains sprintf("unknown principal kind %q", [input.principal.kind]) if {
	not input.principal.kind in {"human", "application", "agent"}
}

deny contains "llm.invoke without a request" if {
	input.action == "llm.invoke"
	not input.request
}

deny contains sprintf("unknown model %q", [input.request.model]) if {
	input.action == "llm.invoke"
	not data.models[input.request.model]
}

deny contains sprintf("grant tenant %s does not match principal tenant %s", [
	input.grant.tenant,
	input.principal.tenant,
]) if {
	input.grant.tenant != input.principal.tenant
}

deny contains sprintf("model %s is not in the scopes of grant %s", [input.request.model, input.grant.id]) if {
	input.action == "llm.invoke"
	input.grant
	not input.request.model in input.grant.scopes.models
}

# model_denied_for(kind, list) is the kind modules' deny reason: the model and
# tenant exist, but the model is not in the tenant's list for the kind, or the
# catalog does not admit the kind.
model_denied_for(kind, list) := sprintf("model %s is not allowed for %ss of tenant %s", [
	input.request.model,
	kind,
	input.principal.tenant,
]) if {
	tenant := data.tenants[input.principal.tenant]
	model := data.models[input.request.model]
	not kind_may_use(kind, tenant[list], model)
}

kind_may_use(kind, models, catalog_entry) if {
	input.request.model in models
	kind in catalog_entry.kinds
}
