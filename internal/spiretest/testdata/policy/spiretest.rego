# The integration suite's policy: it allows exactly the workloads registered
# in SPIRE for the test, by the principal the gateway resolved from their
# SVIDs (SPIFFE ID, trust domain, kind, tenant and name all checked), and
# the user the gateway verified from a JWT-SVID, so a wrong resolution shows
# as a deny. The default bundle's grant rules are tested elsewhere.
package portcullis

default decision := {
	"allow": false,
	"reasons": ["no rule allows this principal this model"],
	"obligations": {},
}

decision := {
	"allow": true,
	"reasons": [concat("", [input.principal.kind, " ", input.principal.name, " may use ", input.request.model])],
	"obligations": {"max_tokens": 0, "require_approval": false, "provider": ""},
} if allowed

allowed if {
	input.action == "llm.invoke"
	input.principal.spiffe_id == "spiffe://example.org/tenant/acme/app/demo-app"
	input.principal.trust_domain == "example.org"
	input.principal.kind == "application"
	input.principal.tenant == "acme"
	input.principal.name == "demo-app"
	input.request.model in {"gpt-4o-mini", "gpt-4o"}
}

allowed if {
	input.action == "llm.invoke"
	input.principal.spiffe_id == "spiffe://example.org/tenant/acme/agent/demo-agent"
	input.principal.trust_domain == "example.org"
	input.principal.kind == "agent"
	input.principal.tenant == "acme"
	input.principal.name == "demo-agent"
	input.request.model == "gpt-4o-mini"
}

# o3-mini: only for the app acting for a human whose JWT-SVID the gateway
# verified (Portcullis-User-Token).
allowed if {
	input.action == "llm.invoke"
	input.principal.spiffe_id == "spiffe://example.org/tenant/acme/app/demo-app"
	input.request.model == "o3-mini"
	input.user.subject == "spiffe://example.org/tenant/acme/human/alice"
	input.user.kind == "human"
}

# A caller of the federated trust domain partner.test: the trust domain is
# part of the principal.
allowed if {
	input.action == "llm.invoke"
	input.principal.spiffe_id == "spiffe://partner.test/tenant/globex/app/partner-app"
	input.principal.trust_domain == "partner.test"
	input.principal.kind == "application"
	input.principal.tenant == "globex"
	input.request.model == "gpt-4o-mini"
}
