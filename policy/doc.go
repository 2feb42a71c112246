// Package policy is Portcullis's policy decision point: OPA v1 embedded as a
// Go library, one compiled query (data.portcullis.decision) for every action
// the gateway authorizes, a decision cache, and hot reload of the bundle.
//
// Start an engine on the embedded default bundle, or on a directory of
// .rego modules and data.json / data.yaml files:
//
//	eng, err := policy.New(ctx, policy.Options{BundleDir: "/etc/portcullis/policy"})
//	if err != nil {
//		return err // a bundle that does not parse, compile or define the decision
//	}
//
// Describe the request with an Input (its JSON names are the documented
// contract, see docs/policy.md) and ask:
//
//	d, err := eng.Decide(ctx, &policy.Input{
//		Action:    "llm.invoke",
//		Principal: policy.Principal{SPIFFEID: id, Kind: "agent", Tenant: "acme", Name: "triage"},
//		Request:   &policy.Request{API: "chat.completions", Model: "gpt-4o-mini", MaxTokens: 4000},
//	})
//	if err != nil || !d.Allow {
//		// deny: d.Reasons says why; err (if any) is for the log, not the client
//	}
//	// apply d.Obligations: cap max tokens, narrow tools, park for approval, pin provider
//
// Decide fails closed: an engine error, a timeout (Options.Timeout, 50ms by
// default), an undefined or malformed decision, a nil input or even a panic
// all return a deny and an error wrapping ErrEval, ErrTimeout, ErrUndefined,
// ErrMalformed or ErrInput. The deny's reason names the class of failure
// only; the error carries the detail.
//
// Repeated inputs are answered from an LRU cache keyed on every input field
// except Grant.ExpiresAt, plus the bundle's content hash; a hit compares the
// stored input field by field, so a hash collision is a miss, never a wrong
// answer. Because expiry is not in the key, callers check grant expiry and
// revocation before calling Decide, and bundles must not read expires_at.
//
// Reload re-reads the bundle and swaps it in atomically; a bundle that fails
// to load never replaces the running one. Call it on SIGHUP, or let Watch
// poll the directory:
//
//	go eng.Watch(ctx, 2*time.Second)
//
// The default bundle (DefaultBundle, the files under policy/bundle) is the
// place to start a custom one: copy it, edit data.json, and run its Rego tests
// with `opa test` or the way TestRego does with OPA's tester package.
//
// The engine builds only the input fields the bundle's rules refer to, and
// reuses the values of principals, users, grants and requests it has built
// before (and whole inputs once those repeat); a bundle sees every field it
// reads (docs/policy.md, "Input").
//
// Rules in TablesPackage (data.portcullis.tables) are lookup tables derived
// from data alone: the engine evaluates them once per load and serves them as
// data, so decisions look answers up instead of re-deriving them per request.
package policy
