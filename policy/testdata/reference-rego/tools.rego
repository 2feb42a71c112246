# Tool calls (action tool.call): each tool call a model emits, each tool
# result a request carries, and each MCP tools/call is decided on its own,
# with input.tool {name, server} (server is "" for a model's function
# tools, the MCP server's name otherwise) and, from a model API, the request.
#
# Data: data.tools[tenant][kind] lists the tools a kind of principal of the
# tenant may use (tools/data.json): a bare name allows that tool from any
# source, "server/name" only that MCP server's tool. Agents get the shortest
# list. With a grant the tool must also be in the grant's tool scopes.
# approvals.rego may add the require_approval obligation.
package portcullis

allow_decision := {
	"allow": true,
	"reasons": [concat("", [
		"tool ", tool_ref,
		" is allowed for ", input.principal.kind,
		"s of tenant ", input.principal.tenant,
	])],
	"obligations": {"max_tokens": 0, "require_approval": require_approval, "provider": ""},
} if input.action == "tool.call"

allow if {
	input.action == "tool.call"
	tool_listed
	tool_in_grant
}

# tool_ref names the tool as data.tools does: "server/name" for an MCP tool.
tool_ref := input.tool.name if input.tool.server == ""

tool_ref := concat("/", [input.tool.server, input.tool.name]) if input.tool.server != ""

tool_listed if input.tool.name in data.tools[input.principal.tenant][input.principal.kind]

tool_listed if tool_ref in data.tools[input.principal.tenant][input.principal.kind]

tool_in_grant if not input.grant

tool_in_grant if input.tool.name in input.grant.scopes.tools

deny contains "tool.call without a tool name" if {
	input.action == "tool.call"
	not input.tool.name
}

deny contains sprintf("tool %s is not allowed for %ss of tenant %s", [
	tool_ref,
	input.principal.kind,
	input.principal.tenant,
]) if {
	input.action == "tool.call"
	not tool_listed
}

deny contains sprintf("tool %s is not in the scopes of grant %s", [tool_ref, input.grant.id]) if {
	input.action == "tool.call"
	input.grant
	not input.tool.name in input.grant.scopes.tools
}
