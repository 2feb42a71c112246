package portcullis.grants_test

import data.portcullis
import data.portcullis_test.grant
import data.portcullis_test.llm
import data.portcullis_test.with_grant

alice := "spiffe://dev.portcullis.local/human/alice"

principal(kind, tenant) := {
	"spiffe_id": sprintf("spiffe://example.org/tenant/%s/%s/w", [tenant, kind]),
	"trust_domain": "example.org",
	"kind": kind,
	"tenant": tenant,
	"name": "w",
}

# mint(kind, purpose, models, tools, budget) asks for a grant of tenant acme.
mint(kind, purpose, models, tools, budget) := {
	"action": "grant.mint",
	"principal": principal(kind, "acme"),
	"chain": [principal(kind, "acme").spiffe_id],
	"grant": object.union(grant("acme", models, tools, budget), {"id": "", "purpose": purpose}),
}

with_user(x, sub) := object.union(x, {"user": {"subject": sub, "issuer": "spiffe://dev.portcullis.local", "kind": "human"}})

delegate(chain_len, models, tools, budget) := {
	"action": "grant.delegate",
	"principal": principal("application", "acme"),
	"chain": [sprintf("spiffe://example.org/a%d", [i]) | some i in numbers.range(1, chain_len)],
	"grant": grant("acme", models, tools, budget),
}

test_mint_allowed if {
	d := portcullis.decision with input as mint("application", "support", ["gpt-4o-mini"], ["search"], 5000)
	d.allow
	d.reasons == ["grant.mint of task t1 for purpose support allowed for applications of tenant acme"]
	d.obligations.tools == ["search"]
}

test_mint_by_agent_denied if {
	d := portcullis.decision with input as mint("agent", "support", ["gpt-4o-mini"], [], 5000)
	not d.allow
	"agents may not mint grants" in d.reasons
}

test_mint_denials if {
	cases := [
		[mint("application", "support", ["o3-mini"], [], 5000), "model o3-mini is not allowed for purpose support"],
		[mint("application", "support", ["gpt-4o"], ["shell"], 5000), "tool shell is not allowed for purpose support"],
		[mint("application", "support", ["gpt-4o"], [], 0), "budget of 0 tokens is not within purpose support's cap of 20000 (ask for 1 to 20000)"],
		[mint("application", "support", ["gpt-4o"], [], 20001), "budget of 20001 tokens is not within purpose support's cap of 20000 (ask for 1 to 20000)"],
		[mint("application", "support", [], [], 10), "a grant must name at least one model"],
		[mint("application", "astrology", ["gpt-4o"], [], 10), `purpose "astrology" is not available to tenant acme`],
		[mint("application", "research", ["o3-mini"], [], 10), "model o3-mini is not allowed for applications of tenant acme"],
	]
	every c in cases {
		d := portcullis.decision with input as c[0]
		not d.allow
		c[1] in d.reasons
	}
}

test_mint_other_tenant_denied if {
	inp := object.union(mint("application", "support", ["gpt-4o"], [], 10), {"grant": {"tenant": "globex"}})
	d := portcullis.decision with input as inp
	not d.allow
	"grant tenant globex does not match principal tenant acme" in d.reasons
}

test_mint_purpose_without_cap if {
	d := portcullis.decision with input as mint("application", "support", ["gpt-4o"], [], 0)
		with data.purposes.support.max_tokens as 0
	d.allow
}

test_mint_for_user_within_rights_allowed if {
	d := portcullis.decision with input as with_user(mint("application", "support", ["gpt-4o-mini"], ["search"], 100), alice)
	d.allow
}

test_mint_for_user_beyond_rights_denied if {
	d := portcullis.decision with input as with_user(mint("application", "support", ["gpt-4o", "gpt-4o-mini"], ["search", "lookup_ticket"], 100), alice)
	not d.allow
	d.reasons == [
		"no rule allows action grant.mint",
		sprintf("user %s may not use model gpt-4o", [alice]),
		sprintf("user %s may not use tool lookup_ticket", [alice]),
	]
}

test_mint_for_unlisted_user_uses_tenant_human_rights if {
	d := portcullis.decision with input as with_user(mint("application", "support", ["gpt-4o"], ["lookup_ticket"], 100), "spiffe://x/human/bob")
	d.allow
}

test_delegate_allowed_and_depth_limited if {
	d := portcullis.decision with input as delegate(3, ["gpt-4o-mini"], [], 100)
	d.allow
	d2 := portcullis.decision with input as delegate(4, ["gpt-4o-mini"], [], 100)
	not d2.allow
	"delegation chain of 4 actors is deeper than allowed (2 delegations)" in d2.reasons
}

# --- llm.invoke under a grant ---------------------------------------------------

test_grant_purpose_pins_models if {
	inp := with_grant(llm("application", "acme", "gpt-4o"), object.union(grant("acme", ["gpt-4o"], [], 0), {"purpose": "support"}))
	d := portcullis.decision with input as inp with data.purposes.support.models as ["gpt-4o-mini"]
	not d.allow
	"model gpt-4o is not allowed for purpose support" in d.reasons
}

test_agent_switching_model_denied if {
	inp := with_grant(llm("agent", "acme", "gpt-4o"), grant("acme", ["gpt-4o-mini"], [], 0))
	d := portcullis.decision with input as inp with data.tenants.acme.agent_models as ["gpt-4o-mini", "gpt-4o"]
	not d.allow
	d.reasons == ["model gpt-4o is not in the scopes of grant g1"]
}

test_user_limits_application if {
	# The application alone may use gpt-4o; acting for alice it may not.
	d0 := portcullis.decision with input as llm("application", "acme", "gpt-4o")
	d0.allow
	d := portcullis.decision with input as with_user(llm("application", "acme", "gpt-4o"), alice)
	not d.allow
	d.reasons == [sprintf("user %s may not use model gpt-4o", [alice])]
}

test_user_limits_agent_under_grant if {
	inp := with_user(with_grant(llm("agent", "acme", "gpt-4o-mini"), grant("acme", ["gpt-4o-mini"], [], 0)), alice)
	d := portcullis.decision with input as inp
	d.allow
	d2 := portcullis.decision with input as inp with data.users as {alice: {"models": ["o3-mini"], "tools": []}}
	not d2.allow
	sprintf("user %s may not use model gpt-4o-mini", [alice]) in d2.reasons
}

# --- task.complete and grant.revoke ---------------------------------------------

task_action(action, kind, tenant, id, chain) := {
	"action": action,
	"principal": principal(kind, "acme"),
	"chain": chain,
	"grant": {"id": id, "task": "t1", "tenant": tenant, "purpose": "", "scopes": {"models": [], "tools": [], "max_tokens": 0}, "expires_at": 0},
}

test_task_complete if {
	allowed := [
		task_action("task.complete", "agent", "acme", "g1", []),
		task_action("task.complete", "human", "acme", "", []),
	]
	every inp in allowed {
		d := portcullis.decision with input as inp
		d.allow
		d.reasons == [concat("", ["task.complete t1 allowed for ", inp.principal.spiffe_id])]
	}
	d := portcullis.decision with input as task_action("task.complete", "application", "acme", "", [])
	not d.allow
	"only a holder of one of the task's grants, or a human of the tenant, may complete it" in d.reasons
	d2 := portcullis.decision with input as task_action("task.complete", "human", "globex", "", [])
	not d2.allow
}

test_grant_revoke if {
	me := principal("application", "acme").spiffe_id
	d := portcullis.decision with input as task_action("grant.revoke", "application", "acme", "g1", [me, "spiffe://x/agent"])
	d.allow
	d2 := portcullis.decision with input as task_action("grant.revoke", "human", "acme", "g1", ["spiffe://x/agent"])
	d2.allow
	d3 := portcullis.decision with input as task_action("grant.revoke", "application", "acme", "g1", ["spiffe://x/agent"])
	not d3.allow
	"only an actor in the grant's chain, or a human of the tenant, may revoke it" in d3.reasons
}

test_mint_for_approval_purpose_requires_approval if {
	d := portcullis.decision with input as mint("application", "support", ["gpt-4o-mini"], ["search"], 5000)
		with data.approvals.grant_purposes as ["support"]
	d.allow
	d.obligations.require_approval
}

test_mint_for_other_purpose_needs_no_approval if {
	d := portcullis.decision with input as mint("application", "support", ["gpt-4o-mini"], ["search"], 5000)
		with data.approvals.grant_purposes as ["finance"]
	d.allow
	not d.obligations.require_approval
}

test_delegate_for_approval_purpose_requires_approval if {
	portcullis.require_approval with input as object.union(delegate(1, ["gpt-4o-mini"], [], 100), {"grant": {"purpose": "support"}})
		with data.approvals.grant_purposes as ["support"]
}
