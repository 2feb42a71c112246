package portcullis_test

import data.portcullis

llm(kind, tenant, model) := {
	"action": "llm.invoke",
	"principal": {
		"spiffe_id": sprintf("spiffe://example.org/%s/%s/w", [tenant, kind]),
		"trust_domain": "example.org",
		"kind": kind,
		"tenant": tenant,
		"name": "w",
	},
	"request": {"api": "chat.completions", "model": model, "max_tokens": 0, "tools": []},
}

with_grant(x, grant) := object.union(x, {"grant": grant})

grant(tenant, models, tools, max_tokens) := {
	"id": "g1",
	"task": "t1",
	"purpose": "support",
	"tenant": tenant,
	"scopes": {"models": models, "tools": tools, "max_tokens": max_tokens},
	"expires_at": 0,
}

# complete(d, inp) is the decision the gateway returns when the bundle
# decides d for inp: a grant_scoped allow gets the grant's scopes
# (docs/policy.md, "Decision"; policy.scopeToGrant), any other is d.
complete(d, _) := d if not d.grant_scoped

complete(d, inp) := {
	"allow": d.allow,
	"reasons": [concat("", [r, " under grant ", inp.grant.id]) | some r in d.reasons],
	"obligations": object.union(d.obligations, {
		"tools": sort(inp.grant.scopes.tools),
		"max_tokens": scoped_cap(d.obligations.max_tokens, inp.grant.scopes.max_tokens),
	}),
} if d.grant_scoped

scoped_cap(k, 0) := k

scoped_cap(0, g) := g if g > 0

scoped_cap(k, g) := min([k, g]) if {
	k > 0
	g > 0
}

test_decision_allow_shape if {
	d := portcullis.decision with input as llm("human", "acme", "gpt-4o")
	d == {
		"allow": true,
		"reasons": ["model gpt-4o is allowed for humans of tenant acme"],
		"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
	}
}

test_decision_deny_shape if {
	d := portcullis.decision with input as llm("human", "initech", "gpt-4o")
	d == {
		"allow": false,
		"reasons": [`unknown tenant "initech"`],
		"obligations": {},
	}
}

test_unknown_action_denied if {
	inp := object.union(llm("human", "acme", "gpt-4o"), {"action": "llm.summon"})
	d := portcullis.decision with input as inp
	not d.allow
	d.reasons == [`unknown action "llm.summon"`]
}

test_known_action_without_rules_denied if {
	inp := object.union(llm("human", "acme", "gpt-4o"), {"action": "tool.call"})
	d := portcullis.decision with input as inp
	not d.allow
	d.reasons == ["no rule allows action tool.call", "tool.call without a tool name"]
}

test_admin_action_without_rules_denied if {
	inp := object.union(llm("human", "acme", "gpt-4o"), {"action": "admin.reload"})
	d := portcullis.decision with input as inp
	d.reasons == ["no rule allows action admin.reload"]
}

test_missing_action_denied if {
	d := portcullis.decision with input as {"principal": {"kind": "human", "tenant": "acme"}}
	not d.allow
	"request has no action" in d.reasons
}

test_fallback_reason if {
	# Every specific rule is silent (kind rules overridden), yet nothing allows.
	# (The lookup table is emptied too: the decision's fast branches read it
	# directly rather than through allow.)
	d := portcullis.decision with input as llm("human", "acme", "gpt-4o")
		with portcullis.allow as false
		with portcullis.tables.llm as {}
		with portcullis.tables.plain as {}
	d == {"allow": false, "reasons": ["no rule allows this request"], "obligations": {}}
}

test_unknown_kind_denied if {
	d := portcullis.decision with input as llm("robot", "acme", "gpt-4o")
	not d.allow
	d.reasons == [`unknown principal kind "robot"`]
}

test_unknown_model_denied if {
	d := portcullis.decision with input as llm("human", "acme", "gpt-9")
	not d.allow
	d.reasons == [`unknown model "gpt-9"`]
}

test_llm_invoke_without_request_denied if {
	inp := object.remove(llm("human", "acme", "gpt-4o"), ["request"])
	d := portcullis.decision with input as inp
	not d.allow
	"llm.invoke without a request" in d.reasons
}

# Under a grant, without a user or tools, the bundle answers with the table
# entry, grant_scoped: the gateway narrows it to the grant.
test_grant_branch_is_grant_scoped if {
	inp := with_grant(llm("agent", "acme", "gpt-4o-mini"), grant("acme", ["gpt-4o-mini"], ["search", "calc"], 512))
	d := portcullis.decision with input as inp
	d == {
		"allow": true,
		"reasons": ["model gpt-4o-mini is allowed for agents of tenant acme"],
		"obligations": {"max_tokens": 1024, "require_approval": false, "provider": ""},
		"grant_scoped": true,
	}
}

test_grant_in_scope_allowed if {
	inp := with_grant(llm("agent", "acme", "gpt-4o-mini"), grant("acme", ["gpt-4o-mini"], ["search", "calc"], 512))
	d := complete(portcullis.decision, inp) with input as inp
	d == {
		"allow": true,
		"reasons": ["model gpt-4o-mini is allowed for agents of tenant acme under grant g1"],
		"obligations": {"max_tokens": 512, "tools": ["calc", "search"], "require_approval": false, "provider": ""},
	}
}

test_grant_cap_above_kind_cap_keeps_kind_cap if {
	inp := with_grant(llm("agent", "acme", "gpt-4o-mini"), grant("acme", ["gpt-4o-mini"], [], 4096))
	d := complete(portcullis.decision, inp) with input as inp
	d.obligations.max_tokens == 1024
	d.obligations.tools == []
}

test_grant_cap_applies_to_humans if {
	inp := with_grant(llm("human", "acme", "gpt-4o"), grant("acme", ["gpt-4o"], [], 300))
	d := complete(portcullis.decision, inp) with input as inp
	d.allow
	d.obligations.max_tokens == 300
}

test_grant_model_out_of_scope_denied if {
	inp := with_grant(llm("human", "acme", "gpt-4o"), grant("acme", ["gpt-4o-mini"], [], 0))
	d := portcullis.decision with input as inp
	not d.allow
	d.reasons == ["model gpt-4o is not in the scopes of grant g1"]
}

test_grant_tenant_mismatch_denied if {
	inp := with_grant(llm("human", "acme", "gpt-4o"), grant("globex", ["gpt-4o"], [], 0))
	d := portcullis.decision with input as inp
	not d.allow
	d.reasons == ["grant tenant globex does not match principal tenant acme"]
}

test_several_reasons_sorted if {
	inp := with_grant(llm("robot", "initech", "gpt-4o"), grant("acme", ["gpt-4o"], [], 0))
	d := portcullis.decision with input as inp
	d.reasons == [
		"grant tenant acme does not match principal tenant initech",
		`unknown principal kind "robot"`,
		`unknown tenant "initech"`,
	]
}

# --- the decision's table branches -------------------------------------------

with_tools(x, tools) := object.union(x, {"request": object.union(x.request, {"tools": tools})})

test_table_branch_tool_needing_approval if {
	d := portcullis.decision with input as with_tools(llm("human", "acme", "gpt-4o"), ["search", "issue_refund"])
	d.allow
	d.obligations.require_approval
}

test_table_branch_tools_without_approval if {
	d := portcullis.decision with input as with_tools(llm("human", "acme", "gpt-4o"), ["search"])
	d.allow
	not d.obligations.require_approval
}

test_table_branch_deny_with_tools if {
	d := portcullis.decision with input as with_tools(llm("human", "globex", "gpt-4o"), ["issue_refund"])
	d.reasons == ["model gpt-4o is not allowed for humans of tenant globex"]
}

test_table_branch_listed_user if {
	inp := object.union(llm("human", "acme", "o3-mini"), {"user": {"subject": "spiffe://dev.portcullis.local/human/alice"}})
	d := portcullis.decision with input as inp
	d.reasons == ["model o3-mini is allowed for humans of tenant acme"]
}

test_table_branch_unlisted_user if {
	inp := object.union(llm("application", "acme", "gpt-4o"), {"user": {"subject": "bob"}})
	d := portcullis.decision with input as inp
	d.reasons == ["model gpt-4o is allowed for applications of tenant acme"]
}

test_table_branch_grant_caps if {
	agent := llm("agent", "acme", "gpt-4o-mini")
	below_in := with_grant(agent, grant("acme", ["gpt-4o-mini"], ["search"], 100))
	below := complete(portcullis.decision, below_in) with input as below_in
	below.obligations.max_tokens == 100
	above_in := with_grant(agent, grant("acme", ["gpt-4o-mini"], ["search"], 5000))
	above := complete(portcullis.decision, above_in) with input as above_in
	above.obligations.max_tokens == 1024
	uncapped_in := with_grant(llm("human", "acme", "gpt-4o"), grant("acme", ["gpt-4o"], [], 300))
	uncapped := complete(portcullis.decision, uncapped_in) with input as uncapped_in
	uncapped.obligations.max_tokens == 300
	uncapped.reasons == ["model gpt-4o is allowed for humans of tenant acme under grant g1"]
}

test_table_branch_tool_call_under_grant if {
	p := llm("human", "acme", "").principal
	inp := {"action": "tool.call", "principal": p, "tool": {"name": "search", "server": ""}}
	d := portcullis.decision with input as object.union(inp, {"grant": grant("acme", [], ["search"], 0)})
	d.reasons == ["tool search is allowed for humans of tenant acme"]
	out := portcullis.decision with input as object.union(inp, {"grant": grant("acme", [], ["lookup"], 0)})
	not out.allow
}

# The kinds' allow rules decide what the table branches do not (tools with a
# grant or a user, say): held here to the same answers.
test_kind_allow_rules if {
	every kind in ["human", "application"] {
		portcullis.allow with input as llm(kind, "acme", "gpt-4o")
		portcullis.allow with input as with_grant(llm(kind, "acme", "gpt-4o"), grant("acme", ["gpt-4o"], [], 0))
		portcullis.allow with input as object.union(llm(kind, "acme", "gpt-4o"), {"user": {"subject": "bob"}})
		not portcullis.allow with input as llm(kind, "globex", "gpt-4o")
		count(portcullis.deny) == 1 with input as llm(kind, "globex", "gpt-4o")
	}
}

# With tools offered the grant branches of decision do not apply: the
# general rules narrow the decision to the grant themselves, to the same
# caps, tools and reasons the gateway gives a grant_scoped one.
test_general_grant_caps if {
	agent := with_tools(llm("agent", "acme", "gpt-4o-mini"), ["search"])
	below := portcullis.decision with input as with_grant(agent, grant("acme", ["gpt-4o-mini"], ["search", "calc"], 100))
	below == {
		"allow": true,
		"reasons": ["model gpt-4o-mini is allowed for agents of tenant acme under grant g1"],
		"obligations": {"max_tokens": 100, "tools": ["calc", "search"], "require_approval": false, "provider": ""},
	}
	above := portcullis.decision with input as with_grant(agent, grant("acme", ["gpt-4o-mini"], ["search"], 5000))
	above.obligations.max_tokens == 1024
	kind_cap := portcullis.decision with input as with_grant(agent, grant("acme", ["gpt-4o-mini"], ["search"], 0))
	kind_cap.obligations.max_tokens == 1024
	human := with_tools(llm("human", "acme", "gpt-4o"), ["search"])
	uncapped := portcullis.decision with input as with_grant(human, grant("acme", ["gpt-4o"], [], 300))
	uncapped.obligations.max_tokens == 300
}

# A token count is decided as a call of its model: allowed where the call
# is, denied where it is, with the same reasons and obligations, whatever
# the kind, tenant and model.
test_count_decided_as_its_model_call if {
	every kind in ["human", "application", "agent"] {
		every tenant in ["acme", "globex", "initech"] {
			every model in ["gpt-4o-mini", "o3-mini", "claude-sonnet-4-5", "gpt-9"] {
				call := llm(kind, tenant, model)
				count := json.patch(call, [{"op": "replace", "path": "/request/api", "value": "anthropic.count_tokens"}])
				d := portcullis.decision with input as count
				d == portcullis.decision with input as call
			}
		}
	}
}

test_count_allowed_and_denied if {
	portcullis.decision.allow with input as json.patch(llm("application", "acme", "claude-sonnet-4-5"), [{"op": "replace", "path": "/request/api", "value": "anthropic.count_tokens"}])
	not portcullis.decision.allow with input as json.patch(llm("agent", "acme", "claude-sonnet-4-5"), [{"op": "replace", "path": "/request/api", "value": "anthropic.count_tokens"}])
}
