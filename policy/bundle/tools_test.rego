package portcullis.tools_test

import data.portcullis
import data.portcullis_test.grant
import data.portcullis_test.llm
import data.portcullis_test.with_grant

# call(kind, tenant, name, server) is a tool.call as the gateway asks it for
# a tool call a model emitted (with the request) or an MCP call (without).
call(kind, tenant, name, server) := object.union(llm(kind, tenant, "gpt-4o-mini"), {
	"action": "tool.call",
	"tool": {"name": name, "server": server},
})

mcp(kind, tenant, name, server) := object.remove(call(kind, tenant, name, server), {"request"})

test_model_tool_allowed_with_request if {
	d := portcullis.decision with input as call("application", "acme", "get_weather", "")
	d == {
		"allow": true,
		"reasons": ["tool get_weather is allowed for applications of tenant acme"],
		"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
	}
}

test_mcp_tool_allowed_by_qualified_name if {
	d := portcullis.decision with input as mcp("agent", "acme", "forecast", "weather")
	d.allow
	d.reasons == ["tool weather/forecast is allowed for agents of tenant acme"]
}

test_mcp_tool_allowed_by_bare_name if {
	portcullis.decision.allow with input as mcp("agent", "acme", "lookup", "docs")
}

test_agents_stricter if {
	portcullis.decision.allow with input as call("application", "acme", "search", "")
	d := portcullis.decision with input as call("agent", "acme", "search", "")
	not d.allow
	"tool search is not allowed for agents of tenant acme" in d.reasons
}

test_qualified_name_is_per_server if {
	d := portcullis.decision with input as mcp("agent", "acme", "alerts", "weather")
	not d.allow
	"tool weather/alerts is not allowed for agents of tenant acme" in d.reasons
}

test_unknown_tenant_denied if {
	d := portcullis.decision with input as call("human", "initech", "search", "")
	not d.allow
}

test_grant_narrows_tools if {
	x := with_grant(call("application", "acme", "get_weather", ""), grant("acme", ["gpt-4o-mini"], ["lookup"], 0))
	d := portcullis.decision with input as x
	not d.allow
	"tool get_weather is not in the scopes of grant g1" in d.reasons
	ok := with_grant(call("application", "acme", "lookup", ""), grant("acme", ["gpt-4o-mini"], ["lookup"], 0))
	portcullis.decision.allow with input as ok
}

test_approval_obligation_on_tool if {
	d := portcullis.decision with input as call("human", "acme", "issue_refund", "")
	d.allow
	d.obligations.require_approval
}

test_missing_tool_name_denied if {
	d := portcullis.decision with input as object.remove(call("human", "acme", "x", ""), {"tool"})
	not d.allow
	"tool.call without a tool name" in d.reasons
}

test_llm_invoke_unchanged if {
	d := portcullis.decision with input as llm("application", "acme", "gpt-4o-mini")
	d.reasons == ["model gpt-4o-mini is allowed for applications of tenant acme"]
}
