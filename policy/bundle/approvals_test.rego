package portcullis_test

import data.portcullis

ap_requester := "spiffe://example.org/tenant/acme/agent/refunder"

ap_app := "spiffe://example.org/tenant/acme/app/helpdesk"

ap_alice := "spiffe://example.org/tenant/acme/human/alice"

ap_bob := "spiffe://example.org/tenant/acme/human/bob"

ap_principal(id, kind, tenant) := {
	"spiffe_id": id,
	"trust_domain": "example.org",
	"kind": kind,
	"tenant": tenant,
	"name": "n",
}

ap_decide(id, kind, tenant) := {
	"action": "approval.decide",
	"principal": ap_principal(id, kind, tenant),
	"chain": [ap_app, ap_requester],
	"approval": {"id": "apr_1", "requester": ap_requester, "tenant": "acme", "action": "llm.invoke", "user": ap_alice},
}

ap_llm(kind, model, tools) := {
	"action": "llm.invoke",
	"principal": ap_principal(sprintf("spiffe://example.org/tenant/acme/%s/w", [kind]), kind, "acme"),
	"request": {"api": "chat.completions", "model": model, "max_tokens": 0, "tools": tools},
}

test_human_of_tenant_may_approve if {
	d := portcullis.decision with input as ap_decide(ap_bob, "human", "acme")
	d == {
		"allow": true,
		"reasons": [sprintf("%s may decide approval apr_1 of %s", [ap_bob, ap_requester])],
		"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
	}
}

test_machines_may_not_approve if {
	every kind in ["application", "agent"] {
		d := portcullis.decision with input as ap_decide("spiffe://example.org/tenant/acme/x/other", kind, "acme")
		not d.allow
		sprintf("only humans may approve; spiffe://example.org/tenant/acme/x/other is a %s", [kind]) in d.reasons
	}
}

test_other_tenant_may_not_approve if {
	d := portcullis.decision with input as ap_decide("spiffe://example.org/tenant/globex/human/carol", "human", "globex")
	not d.allow
	"a principal of tenant globex cannot decide an approval of tenant acme" in d.reasons
}

test_requester_may_not_approve if {
	# Even were the requester a human: nobody approves their own action.
	d := portcullis.decision with input as ap_decide(ap_requester, "human", "acme")
	not d.allow
	"the requester cannot approve their own action" in d.reasons
}

test_chain_may_not_approve if {
	d := portcullis.decision with input as ap_decide(ap_app, "human", "acme")
	not d.allow
	sprintf("%s is in the request's chain and cannot approve it", [ap_app]) in d.reasons
}

test_user_may_not_approve if {
	d := portcullis.decision with input as ap_decide(ap_alice, "human", "acme")
	not d.allow
	d.reasons == [
		"no rule allows action approval.decide",
		sprintf("%s is the user the request acts for and cannot approve it", [ap_alice]),
	]
}

test_unknown_tenant_may_not_approve if {
	inp := json.patch(ap_decide(ap_bob, "human", "initech"), [{"op": "replace", "path": "/approval/tenant", "value": "initech"}])
	d := portcullis.decision with input as inp
	not d.allow
	`unknown tenant "initech"` in d.reasons
}

test_sensitive_tool_offered_requires_approval if {
	d := portcullis.decision with input as ap_llm("application", "gpt-4o-mini", ["search", "issue_refund"])
	d.allow
	d.obligations.require_approval
}

test_ordinary_tools_need_no_approval if {
	d := portcullis.decision with input as ap_llm("application", "gpt-4o-mini", ["search"])
	d.allow
	not d.obligations.require_approval
}

test_sensitive_model_requires_approval if {
	portcullis.require_approval with input as ap_llm("human", "o3-mini", [])
		with data.approvals.models as ["o3-mini"]
}

test_sensitive_tool_call_requires_approval if {
	portcullis.require_approval with input as {"action": "tool.call", "tool": {"name": "delete_records", "server": "db"}}
	not portcullis.require_approval with input as {"action": "tool.call", "tool": {"name": "search", "server": "docs"}}
}

test_agent_grant_decision_carries_approval if {
	inp := object.union(ap_llm("agent", "gpt-4o-mini", ["issue_refund"]), {"grant": {
		"id": "g1", "task": "t1", "purpose": "support", "tenant": "acme",
		"scopes": {"models": ["gpt-4o-mini"], "tools": ["issue_refund"], "max_tokens": 0},
		"expires_at": 0,
	}})
	d := portcullis.decision with input as inp
	d.allow
	d.obligations == {"max_tokens": 1024, "tools": ["issue_refund"], "require_approval": true, "provider": ""}
}

# A token count (request.api anthropic.count_tokens) lists tools but lets
# the model call none: it needs no approval for them, with or without a
# grant. A model that needs an approval for every call needs one for counts
# too: the prompt goes to its provider all the same.
ap_count(kind, model, tools) := json.patch(ap_llm(kind, model, tools), [{"op": "replace", "path": "/request/api", "value": "anthropic.count_tokens"}])

test_count_needs_no_approval_for_tools if {
	d := portcullis.decision with input as ap_count("application", "gpt-4o-mini", ["search", "issue_refund"])
	d == {
		"allow": true,
		"reasons": ["model gpt-4o-mini is allowed for applications of tenant acme"],
		"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
	}
}

test_count_under_grant_needs_no_approval_for_tools if {
	inp := object.union(ap_count("agent", "gpt-4o-mini", ["issue_refund"]), {"grant": {
		"id": "g1", "task": "t1", "purpose": "support", "tenant": "acme",
		"scopes": {"models": ["gpt-4o-mini"], "tools": ["issue_refund"], "max_tokens": 0},
		"expires_at": 0,
	}})
	d := portcullis.decision with input as inp
	d.allow
	d.obligations == {"max_tokens": 1024, "tools": ["issue_refund"], "require_approval": false, "provider": ""}
}

test_count_of_sensitive_model_requires_approval if {
	portcullis.require_approval with input as ap_count("human", "o3-mini", [])
		with data.approvals.models as ["o3-mini"]
}

# Fail closed: a request that does not say it is a count is a call.
test_request_without_api_is_no_count if {
	inp := json.remove(ap_llm("application", "gpt-4o-mini", ["issue_refund"]), ["request/api"])
	d := portcullis.decision with input as inp
	d.allow
	d.obligations.require_approval
}
