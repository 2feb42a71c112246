package policy_test

import (
	"context"
	"fmt"

	"github.com/portcullis-dev/portcullis/policy"
)

func ExampleEngine_Decide() {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{}) // the embedded default bundle
	if err != nil {
		panic(err)
	}
	agent := policy.Principal{
		SPIFFEID: "spiffe://example.org/acme/agent/triage",
		Kind:     "agent", Tenant: "acme", Name: "triage",
	}
	for _, model := range []string{"gpt-4o-mini", "gpt-4o"} {
		d, err := eng.Decide(ctx, &policy.Input{
			Action:    "llm.invoke",
			Principal: agent,
			// Agents act only under a task grant (policy/bundle/grants.rego).
			Grant: &policy.Grant{ID: "g1", Task: "t1", Purpose: "support", Tenant: "acme",
				Scopes: policy.Scopes{Models: []string{"gpt-4o-mini", "gpt-4o"}}},
			Request: &policy.Request{API: "chat.completions", Model: model, MaxTokens: 4000},
		})
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allow, d.Reasons, "max_tokens:", d.Obligations.MaxTokens)
	}
	// Output:
	// true [model gpt-4o-mini is allowed for agents of tenant acme under grant g1] max_tokens: 1024
	// false [model gpt-4o is not allowed for agents of tenant acme] max_tokens: 0
}
