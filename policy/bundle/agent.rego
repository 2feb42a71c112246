# Package portcullis.agent holds the rules for agent principals: autonomous
# workloads. They are held tighter than applications: only the tenant's
# agent_models, and output capped at data.limits.agent.max_tokens.
package portcullis.agent

import data.portcullis.model_allowed

allow_llm_invoke if model_allowed("agent_models", "agent")

deny_llm_invoke contains sprintf("model %s is not allowed for agents of tenant %s", [
	input.request.model,
	input.principal.tenant,
]) if {
	not model_allowed("agent_models", "agent")
}

# max_tokens caps every agent request; a larger request is still allowed but
# the gateway lowers it to this cap.
max_tokens := data.limits.agent.max_tokens
