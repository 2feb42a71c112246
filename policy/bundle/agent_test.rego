package portcullis.agent_test

import data.portcullis
import data.portcullis_test.complete
import data.portcullis_test.grant
import data.portcullis_test.llm
import data.portcullis_test.with_grant

# Agents act only under a task grant; these tests give them one for the
# model they call (grants_test.rego covers the grant rules themselves).
agent_llm(model) := with_grant(llm("agent", "acme", model), grant("acme", [model], [], 0))

test_agent_without_grant_denied if {
	d := portcullis.decision with input as llm("agent", "acme", "gpt-4o-mini")
	not d.allow
	d.reasons == ["agents need a task grant: present one as Authorization: Bearer <grant>"]
}

test_agent_model_allowed_with_cap if {
	inp := agent_llm("gpt-4o-mini")
	d := complete(portcullis.decision, inp) with input as inp
	d == {
		"allow": true,
		"reasons": ["model gpt-4o-mini is allowed for agents of tenant acme under grant g1"],
		"obligations": {"max_tokens": 1024, "tools": [], "require_approval": false, "provider": ""},
	}
}

test_agent_request_above_cap_allowed_and_capped if {
	inp := object.union(agent_llm("gpt-4o-mini"), {"request": {"max_tokens": 8000}})
	d := portcullis.decision with input as inp
	d.allow
	d.obligations.max_tokens == 1024
}

test_agent_cap_comes_from_data if {
	d := portcullis.decision with input as agent_llm("gpt-4o-mini")
		with data.limits.agent.max_tokens as 256
	d.obligations.max_tokens == 256
}

test_agent_tenant_model_not_for_agents_denied if {
	d := portcullis.decision with input as agent_llm("gpt-4o")
	not d.allow
	d.reasons == ["model gpt-4o is not allowed for agents of tenant acme"]
}

test_agent_human_only_model_denied if {
	d := portcullis.decision with input as agent_llm("o3-mini")
	not d.allow
	"model o3-mini is not allowed for agents of tenant acme" in d.reasons
}

test_agent_catalog_excludes_agents_denied if {
	d := portcullis.decision with input as agent_llm("gpt-4o-mini")
		with data.models["gpt-4o-mini"].kinds as ["human"]
	not d.allow
	d.reasons == ["model gpt-4o-mini is not allowed for agents of tenant acme"]
}
