# Lookup tables: rules that read data, never input. The gateway evaluates
# them once when it loads the bundle and then reads them as data, so a
# decision looks an answer up instead of re-deriving it from data.json on
# every request (docs/policy.md, "Lookup tables"). opa eval and opa test
# evaluate them on every query, with the same values.
#
# Nothing here may read input, call a non-deterministic builtin or define a
# function: the gateway refuses such a bundle.
package portcullis.tables

# limits is data.limits, or no limits at all when the bundle has none.
default limits := {}

limits := data.limits

# The tenant list each kind of principal draws its models from.
kind_lists := {"human": "models", "application": "models", "agent": "agent_models"}

# approval_models: models every call of which needs a human approval.
approval_models contains m if some m in data.approvals.models

# llm[tenant][kind][model] is defined when a principal of that kind in that
# tenant may call the model: the tenant lists it for the kind
# (data.tenants[t].models, or agent_models for agents) and the catalog admits
# the kind (data.models[m].kinds). It holds what an allowed call needs:
#   reason      the allow reason (a grant appends " under grant <id>")
#   max_tokens  the kind's output cap (data.limits[kind].max_tokens), 0 = none
#   approval    whether every call of the model needs an approval
#   purposes    the purposes whose grants may use the model
llm[tenant][kind][model] := {
	"reason": concat("", ["model ", model, " is allowed for ", kind, "s of tenant ", tenant]),
	"max_tokens": object.get(limits, [kind, "max_tokens"], 0),
	"approval": model in approval_models,
	"purposes": {p | some p, purpose in data.purposes; model in purpose.models},
} if {
	some tenant, t in data.tenants
	some kind, list in kind_lists
	some model in t[list]
	kind in data.models[model].kinds
}

# grant_llm[tenant][kind][model][purpose] is the decision of an llm.invoke
# under a grant for purpose, of a principal of that kind in that tenant,
# without a user or tools offered: the llm entry's allow, grant-scoped
# (docs/policy.md, "Decision"): the gateway appends " under grant <id>" to
# its reason, sets its tools to the grant's and lowers its token cap to the
# grant's, as base.rego's allow_decision would.
grant_llm[tenant][kind][model][purpose] := {
	"allow": true,
	"reasons": [e.reason],
	"obligations": {"max_tokens": e.max_tokens, "require_approval": e.approval, "provider": ""},
	"grant_scoped": true,
} if {
	some tenant, kinds in llm
	some kind, models in kinds
	some model, e in models
	some purpose in e.purposes
}

# The tools whose use needs a human approval, as an object for lookups.
approval_tools[t] := true if some t in data.approvals.tools

# The deny reasons an llm.invoke without a grant gets whatever its model,
# by kind (grants.rego's rule for agents).
no_grant_denials := {
	"human": set(),
	"application": set(),
	"agent": {"agents need a task grant: present one as Authorization: Bearer <grant>"},
}

# plain[tenant][kind][model] is the whole decision of an llm.invoke by a
# principal of a known kind of a known tenant, for a model of the catalog,
# without a grant, a user or tools offered to the model: the allow of the
# kind's rules, or the deny with every reason base.rego and the kinds'
# modules would give. plain_approval is the same when one of the tools
# offered needs an approval (data.approvals.tools).
plain[tenant][kind][model] := {
	"allow": true,
	"reasons": [e.reason],
	"obligations": {"max_tokens": e.max_tokens, "require_approval": e.approval, "provider": ""},
} if {
	some tenant, kinds in llm
	some kind, models in kinds
	count(no_grant_denials[kind]) == 0
	some model, e in models
}

plain[tenant][kind][model] := d if {
	some tenant, kinds in plain_denials
	some kind, models in kinds
	some model, d in models
}

plain_approval[tenant][kind][model] := {
	"allow": true,
	"reasons": [e.reason],
	"obligations": {"max_tokens": e.max_tokens, "require_approval": true, "provider": ""},
} if {
	some tenant, kinds in llm
	some kind, models in kinds
	count(no_grant_denials[kind]) == 0
	some model, e in models
}

plain_approval[tenant][kind][model] := d if {
	some tenant, kinds in plain_denials
	some kind, models in kinds
	some model, d in models
}

# plain_denials[tenant][kind][model]: the denies among plain's entries.
plain_denials[tenant][kind][model] := {
	"allow": false,
	"reasons": sort(no_grant_denials[kind] | {sprintf("model %s is not allowed for %ss of tenant %s", [model, kind, tenant])}),
	"obligations": {},
} if {
	some tenant, t in data.tenants
	t
	some kind, _ in kind_lists
	some model, m in data.models
	m
	not llm[tenant][kind][model]
}

plain_denials[tenant][kind][model] := {
	"allow": false,
	"reasons": sort(no_grant_denials[kind]),
	"obligations": {},
} if {
	some tenant, kinds in llm
	some kind, models in kinds
	count(no_grant_denials[kind]) > 0
	some model, _ in models
}

# tool_calls[tenant][kind][tool] is the decision of a tool.call of a tool
# the tenant lists for the kind (data.tools, tools.rego), called by that
# name with no MCP server, and allowed: reason and obligations as
# tools.rego's allow_decision gives them.
tool_calls[tenant][kind][tool] := {
	"allow": true,
	"reasons": [concat("", ["tool ", tool, " is allowed for ", kind, "s of tenant ", tenant])],
	"obligations": {"max_tokens": 0, "require_approval": object.get(approval_tools, tool, false), "provider": ""},
} if {
	some tenant, kinds in data.tools
	some kind, list in kinds
	some tool in list
	is_string(tool)
}

# user_models[subject][model]: the models a user listed in data.users may
# use (grants.rego's user_may_use_model).
user_models[subject][model] := true if {
	some subject, user in data.users
	some model in user.models
}
