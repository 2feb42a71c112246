# Package portcullis is the default Portcullis policy. The gateway asks for
# data.portcullis.decision and nothing else; see docs/policy.md for the
# contract.
#
# Shape: the allow path is one positive conjunction, and the reasons for a
# deny are only computed when nothing allowed. The kind modules
# (human.rego, application.rego, agent.rego) say which models each kind of
# principal may call; this module dispatches on input.principal.kind.
#
# Never base a decision on input.grant.expires_at: it is not part of the
# decision cache key. The gateway checks expiry before asking.
package portcullis

import data.portcullis.agent
import data.portcullis.application
import data.portcullis.human

# Exactly one of these two is defined for any input.
decision := {
	"allow": true,
	"reasons": [allow_reason],
	"obligations": obligations,
} if allow

decision := {
	"allow": false,
	"reasons": deny_reasons,
	"obligations": {},
} if not allow

# --- allow ------------------------------------------------------------------

allow if {
	input.action == "llm.invoke"
	data.tenants[input.principal.tenant]
	kind_allows_llm_invoke
	grant_allows_llm_invoke
}

kind_allows_llm_invoke if {
	input.principal.kind == "human"
	human.allow_llm_invoke
}

kind_allows_llm_invoke if {
	input.principal.kind == "application"
	application.allow_llm_invoke
}

kind_allows_llm_invoke if {
	input.principal.kind == "agent"
	agent.allow_llm_invoke
}

# Without a grant the principal's own rights apply. With one, the request must
# also stay inside the grant's tenant and model scopes.
grant_allows_llm_invoke if not input.grant

grant_allows_llm_invoke if {
	input.grant.tenant == input.principal.tenant
	input.request.model in input.grant.scopes.models
}

# model_allowed holds when the requested model is in the tenant's list named
# list (e.g. "models", "agent_models") and the model catalog admits kind.
model_allowed(list, kind) if {
	input.request.model in data.tenants[input.principal.tenant][list]
	kind in data.models[input.request.model].kinds
}

allow_reason := sprintf("model %s is allowed for %ss of tenant %s", [
	input.request.model,
	input.principal.kind,
	input.principal.tenant,
]) if not input.grant

allow_reason := sprintf("model %s is allowed for %ss of tenant %s under grant %s", [
	input.request.model,
	input.principal.kind,
	input.principal.tenant,
	input.grant.id,
]) if input.grant

# --- obligations ------------------------------------------------------------

obligations := {
	"max_tokens": max_tokens,
	"require_approval": false,
	"provider": provider,
} if not input.grant

# A grant narrows the tools to its scopes.
obligations := {
	"max_tokens": max_tokens,
	"tools": sort(input.grant.scopes.tools),
	"require_approval": false,
	"provider": provider,
} if input.grant

# max_tokens is the lowest positive cap from the kind and the grant; 0 means
# no cap.
default max_tokens := 0

max_tokens := min(caps) if {
	caps := {c | some c in [kind_max_tokens, grant_max_tokens]; c > 0}
	count(caps) > 0
}

default kind_max_tokens := 0

kind_max_tokens := agent.max_tokens if input.principal.kind == "agent"

default grant_max_tokens := 0

grant_max_tokens := input.grant.scopes.max_tokens

# A model catalog entry may pin the provider.
default provider := ""

provider := data.models[input.request.model].provider

# --- deny reasons -----------------------------------------------------------

deny_reasons := sort(deny) if count(deny) > 0

deny_reasons := ["no rule allows this request"] if count(deny) == 0

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

deny contains msg if {
	input.action == "llm.invoke"
	data.models[input.request.model]
	data.tenants[input.principal.tenant]
	some msg in kind_deny_llm_invoke
}

kind_deny_llm_invoke := human.deny_llm_invoke if input.principal.kind == "human"

kind_deny_llm_invoke := application.deny_llm_invoke if input.principal.kind == "application"

kind_deny_llm_invoke := agent.deny_llm_invoke if input.principal.kind == "agent"

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
