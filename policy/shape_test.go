package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestInputShape(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rego      string
		keep, not []fieldMask
	}{
		{"leaf", `r if input.request.model == "m"`,
			[]fieldMask{fRequest, fRequestModel}, []fieldMask{fRequestAPI, fRequestPrompt, fPrincipal, fAction}},
		{"naked ref keeps the object, not its fields", `r if input.grant`,
			[]fieldMask{fGrant}, []fieldMask{fGrantID, fGrantScopes, fGrantExpiresAt}},
		{"negated naked ref", `r if not input.user`,
			[]fieldMask{fUser}, []fieldMask{fUserSubject}},
		{"bound to a variable: the whole object", `r if { g := input.grant; g.id == "x" }`,
			[]fieldMask{fGrant, fGrantID, fGrantScopes, fGrantScopesTools, fGrantExpiresAt}, []fieldMask{fRequest}},
		{"compared whole", `r if input.request.prompt == {"bytes": 1, "messages": 1}`,
			[]fieldMask{fRequest, fRequestPrompt, fRequestPromptBytes, fRequestPromptMessages}, []fieldMask{fRequestModel}},
		{"variable key: the whole object", `r if input.principal[k] == "x"`,
			[]fieldMask{fPrincipal, fPrincipalName, fPrincipalTrustDomain}, []fieldMask{fUser}},
		{"naked ref with a variable key", `r if input.request.tools[_]`,
			[]fieldMask{fRequestTools}, []fieldMask{fRequestModel}},
		{"input in a key of another ref", `r if data.x[input.tool.name]`,
			[]fieldMask{fTool, fToolName}, []fieldMask{fToolServer}},
		{"bare input", `r if object.get(input, "chain", []) == []`,
			[]fieldMask{allFields}, nil},
		{"builtin argument", `r if count(input.approval) > 1`,
			[]fieldMask{fApproval, fApprovalUser, fApprovalID}, []fieldMask{fChain}},
		{"with target", `r if { s with input.action as "x" }
s if true`, []fieldMask{fAction}, []fieldMask{fPrincipal}},
		{"rule head", `r := input.tool.name`,
			[]fieldMask{fTool, fToolName}, []fieldMask{fToolServer}},
		{"function argument", `f(x) := x
r := f(input.approval.id)`, []fieldMask{fApproval, fApprovalID}, []fieldMask{fApprovalUser}},
		{"deeper than the contract", `r if input.request.model.x`,
			[]fieldMask{fRequestModel}, []fieldMask{fRequestAPI}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ast.NewCompiler()
			c.Compile(map[string]*ast.Module{"x.rego": ast.MustParseModule("package p\n\n" + tc.rego)})
			if c.Failed() {
				t.Fatal(c.Errors)
			}
			got := inputShape(c.Modules)
			for _, f := range tc.keep {
				if !got.has(f) {
					t.Errorf("got shape %#x without %#x, want it kept", got, f)
				}
			}
			for _, f := range tc.not {
				if got&f != 0 {
					t.Errorf("got shape %#x with %#x, want it left out", got, f)
				}
			}
		})
	}
}

// TestDefaultBundleShape: the default bundle reads neither the prompt's
// metadata nor the grant's expiry, so the engine leaves them out. It reads
// the API, to tell a token count from a call (counts_tokens).
func TestDefaultBundleShape(t *testing.T) {
	got := newEngine(t, Options{}).state.Load().shape
	for _, f := range []fieldMask{fRequestPrompt, fGrantExpiresAt, fPrincipalName} {
		if got&f != 0 {
			t.Errorf("got default shape %#x with %#x, want it left out", got, f)
		}
	}
	for _, f := range []fieldMask{fAction, fGrantScopesModels, fChain, fRequestModel, fRequestAPI, fRequestTools, fToolServer, fApprovalUser} {
		if !got.has(f) {
			t.Errorf("got default shape %#x without %#x", got, f)
		}
	}
}

// TestCustomBundleSeesFieldsItReads: a bundle that reads fields the default
// one does not (the prompt's size, the API, the principal's name, the user's
// issuer, the whole request) sees them, although the default bundle's
// engine leaves them out.
func TestCustomBundleSeesFieldsItReads(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "policy.rego", `package portcullis

decision := {"allow": true, "reasons": [concat(" ", [
	input.principal.name,
	input.principal.trust_domain,
	input.request.api,
	input.user.issuer,
	format_int(input.request.prompt.bytes, 10),
	format_int(count(input.request), 10),
])]} if {
	input.request.prompt.messages == 3
	input.request.stream
} else := {"allow": false, "reasons": ["no"]}
`)
	e := newEngine(t, Options{BundleDir: dir, CacheSize: -1})
	in := llm("agent", "acme", "gpt-4o-mini")
	in.Principal.Name = "triage"
	in.Principal.TrustDomain = "example.org"
	in.Request.API = "responses"
	in.Request.Stream = true
	in.Request.Prompt = Prompt{Bytes: 1234, Messages: 3}
	in.User = &User{Subject: "alice", Issuer: "https://idp.example", Kind: "human"}
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := "triage example.org responses https://idp.example 1234 8"
	if !d.Allow || len(d.Reasons) != 1 || d.Reasons[0] != want {
		t.Errorf("got allow=%v reasons=%q, want allow with %q", d.Allow, d.Reasons, want)
	}
}
