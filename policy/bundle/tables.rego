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
