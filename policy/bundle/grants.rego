# Task grants: minting, delegating, revoking and completing tasks, and what a
# grant and the user behind it add to llm.invoke.
#
# Data (all in the bundle, no Rego change to add a tenant or purpose):
#   data.purposes[p]  {models, tools, max_tokens}: what a grant for purpose p
#                     may hold (purposes/data.json); a tenant lists the
#                     purposes it may use in data.tenants[t].purposes.
#   data.users[sub]   {models, tools}: what a known user may do
#                     (users/data.json). A user not listed may do what a
#                     human of the tenant may do, with any of the purpose's tools.
#   data.grants       {minters, max_depth}: kinds that may mint grants, and
#                     the deepest delegation chain (grants/data.json).
#
# The effective permission of a request is the intersection of the user's,
# each actor's and the grant's: every actor's rights were checked when it
# minted or delegated (scopes within its kind's models), the caller's kind
# rules run on every llm.invoke, and user_allows_llm_invoke holds the request
# to the user's rights on every call too.
package portcullis

# The decision for the grant actions (base.rego decides llm.invoke). A grant
# request's tools obligation is its own tools: the gateway intersects.
allow_decision := {
	"allow": true,
	"reasons": [grant_action_reason],
	"obligations": {
		"max_tokens": 0,
		"tools": sort(input.grant.scopes.tools),
		"require_approval": require_approval,
		"provider": "",
	},
} if {
	input.action in {"grant.mint", "grant.delegate", "task.complete", "grant.revoke"}
	not input.request
}

# --- llm.invoke -------------------------------------------------------------

# The purpose pins the models a grant may be used with, whatever its scopes.
grant_purpose_allows_llm_invoke if input.request.model in data.purposes[input.grant.purpose].models

default user_allows_llm_invoke := false

user_allows_llm_invoke if not input.user

user_allows_llm_invoke if user_may_use_model(input.request.model)

deny contains "agents need a task grant: present one as Authorization: Bearer <grant>" if {
	input.action == "llm.invoke"
	input.principal.kind == "agent"
	not input.grant
}

deny contains sprintf("model %s is not allowed for purpose %s", [input.request.model, input.grant.purpose]) if {
	input.action == "llm.invoke"
	input.grant
	not grant_purpose_allows_llm_invoke
}

deny contains sprintf("user %s may not use model %s", [input.user.subject, input.request.model]) if {
	input.action == "llm.invoke"
	not user_allows_llm_invoke
}

# --- user rights --------------------------------------------------------------

user_may_use_model(m) if m in data.users[input.user.subject].models

user_may_use_model(m) if {
	not data.users[input.user.subject]
	m in data.tenants[input.principal.tenant].models
	"human" in data.models[m].kinds
}

user_may_use_tool(t) if t in data.users[input.user.subject].tools

user_may_use_tool(_) if not data.users[input.user.subject]

# --- grant.mint and grant.delegate --------------------------------------------

allow if {
	input.action == "grant.mint"
	input.principal.kind in data.grants.minters
	grant_scopes_ok
}

allow if {
	input.action == "grant.delegate"
	count(input.chain) <= data.grants.max_depth + 1
	grant_scopes_ok
}

grant_action_reason := concat("", [
	input.action, " of task ", input.grant.task,
	" for purpose ", input.grant.purpose,
	" allowed for ", input.principal.kind,
	"s of tenant ", input.principal.tenant,
]) if input.action in {"grant.mint", "grant.delegate"}

# grant_scopes_ok: the grant stays in the caller's tenant, its purpose is one
# the tenant uses, and every model and tool is allowed by the purpose, the
# caller's kind and the user; the budget is within the purpose's cap.
grant_scopes_ok if {
	input.grant.tenant == input.principal.tenant
	input.grant.purpose in data.tenants[input.principal.tenant].purposes
	purpose := data.purposes[input.grant.purpose]
	count(input.grant.scopes.models) > 0
	every m in input.grant.scopes.models {
		m in purpose.models
		m in kind_models
		input.principal.kind in data.models[m].kinds
	}
	every t in input.grant.scopes.tools {
		t in purpose.tools
	}
	budget_within(purpose.max_tokens)
	user_covers_scopes
}

kind_models := data.tenants[input.principal.tenant].agent_models if input.principal.kind == "agent"

kind_models := data.tenants[input.principal.tenant].models if input.principal.kind != "agent"

budget_within(0)

budget_within(cap) if {
	cap > 0
	input.grant.scopes.max_tokens > 0
	input.grant.scopes.max_tokens <= cap
}

user_covers_scopes if not input.user

user_covers_scopes if {
	input.user
	every m in input.grant.scopes.models {
		user_may_use_model(m)
	}
	every t in input.grant.scopes.tools {
		user_may_use_tool(t)
	}
}

# The deny reasons of grant.mint and grant.delegate: grant_denials holds
# them without an action guard, and one deny rule per action adds them. (An
# `input.action in {...}` guard on each would defeat the rule index: every
# request would evaluate all of them.)
deny contains r if {
	input.action == "grant.mint"
	some r in grant_denials
}

deny contains r if {
	input.action == "grant.delegate"
	some r in grant_denials
}

deny contains sprintf("%ss may not mint grants", [input.principal.kind]) if {
	input.action == "grant.mint"
	not input.principal.kind in data.grants.minters
}

deny contains sprintf("delegation chain of %d actors is deeper than allowed (%d delegations)", [count(input.chain), data.grants.max_depth]) if {
	input.action == "grant.delegate"
	count(input.chain) > data.grants.max_depth + 1
}

grant_denials contains sprintf("purpose %q is not available to tenant %s", [input.grant.purpose, input.principal.tenant]) if {
	not input.grant.purpose in object.get(data.tenants, [input.principal.tenant, "purposes"], [])
}

grant_denials contains "a grant must name at least one model" if {
	count(input.grant.scopes.models) == 0
}

grant_denials contains sprintf("model %s is not allowed for purpose %s", [m, input.grant.purpose]) if {
	some m in input.grant.scopes.models
	not m in object.get(data.purposes, [input.grant.purpose, "models"], [])
}

grant_denials contains sprintf("tool %s is not allowed for purpose %s", [t, input.grant.purpose]) if {
	some t in input.grant.scopes.tools
	not t in object.get(data.purposes, [input.grant.purpose, "tools"], [])
}

grant_denials contains sprintf("model %s is not allowed for %ss of tenant %s", [m, input.principal.kind, input.principal.tenant]) if {
	some m in input.grant.scopes.models
	not kind_may_hold(m)
}

kind_may_hold(m) if {
	m in kind_models
	input.principal.kind in data.models[m].kinds
}

grant_denials contains sprintf("budget of %d tokens is not within purpose %s's cap of %d (ask for 1 to %d)", [
	input.grant.scopes.max_tokens, input.grant.purpose, cap, cap,
]) if {
	cap := data.purposes[input.grant.purpose].max_tokens
	not budget_within(cap)
}

grant_denials contains sprintf("user %s may not use model %s", [input.user.subject, m]) if {
	some m in input.grant.scopes.models
	not user_may_use_model(m)
}

grant_denials contains sprintf("user %s may not use tool %s", [input.user.subject, t]) if {
	some t in input.grant.scopes.tools
	not user_may_use_tool(t)
}

# --- task.complete and grant.revoke -------------------------------------------

# The holder of a grant of the task may complete it (the gateway has checked
# the grant is theirs and of this task), and so may a human of the tenant.
allow if {
	input.action == "task.complete"
	input.grant.tenant == input.principal.tenant
	input.grant.id != ""
}

# (One rule per action, not `input.action in {...}`: equality on
# input.action is what OPA's rule index can skip on for llm.invoke.)
allow if {
	input.action == "task.complete"
	input.grant.tenant == input.principal.tenant
	input.principal.kind == "human"
}

allow if {
	input.action == "grant.revoke"
	input.grant.tenant == input.principal.tenant
	input.principal.kind == "human"
}

# Anyone in a grant's chain (its holder or an ancestor's) may revoke it.
allow if {
	input.action == "grant.revoke"
	input.grant.tenant == input.principal.tenant
	input.principal.spiffe_id in input.chain
}

grant_action_reason := concat("", [input.action, " ", input.grant.task, " allowed for ", input.principal.spiffe_id]) if {
	input.action in {"task.complete", "grant.revoke"}
}

deny contains "only a holder of one of the task's grants, or a human of the tenant, may complete it" if {
	input.action == "task.complete"
	input.grant.id == ""
	input.principal.kind != "human"
}

deny contains "only an actor in the grant's chain, or a human of the tenant, may revoke it" if {
	input.action == "grant.revoke"
	not input.principal.spiffe_id in input.chain
	input.principal.kind != "human"
}
