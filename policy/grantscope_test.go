package policy

import (
	"context"
	"reflect"
	"testing"
)

// TestGrantScopedMatchesReference: at the edges of a grant's scopes (caps
// around the kind's, negative or beyond maxNumber, tools unsorted or
// repeated, no tools), a grant_scoped decision completed by the engine is
// the one the reference bundle computes in Rego, error class included.
func TestGrantScopedMatchesReference(t *testing.T) {
	ref := referenceEngine(t)
	cur := newEngine(t, Options{CacheSize: -1})
	ctx := context.Background()
	scoped := 0
	for _, kind := range []string{"human", "application", "agent"} {
		for _, model := range []string{"gpt-4o-mini", "gpt-4o", "o3-mini"} {
			for _, cap := range []int{-5, -1, 0, 1, 1023, 1024, 1025, 4096, maxNumber, maxNumber + 1} {
				for _, tools := range [][]string{nil, {}, {"search"}, {"search", "browse", "search"}, {"zeta", "Alpha", "alpha"}} {
					for _, purpose := range []string{"support", "research"} {
						in := withGrant(llm(kind, "acme", model), Grant{ID: "g-" + purpose, Task: "t", Purpose: purpose, Tenant: "acme",
							Scopes: Scopes{Models: []string{"o3-mini", model}, Tools: tools, MaxTokens: cap}})
						want, wantErr := ref.Decide(ctx, in)
						got, gotErr := cur.Decide(ctx, in)
						want.Revision, got.Revision = "", ""
						if !reflect.DeepEqual(got, want) || errClass(gotErr) != errClass(wantErr) {
							t.Errorf("%s cap=%d tools=%q: got %+v (err %v), want %+v (err %v)", describe(in), cap, tools, got, gotErr, want, wantErr)
						}
						if want.Allow {
							scoped++
						}
					}
				}
			}
		}
	}
	if scoped == 0 {
		t.Fatal("no input allowed: the table does not reach grant_scoped decisions")
	}
}
