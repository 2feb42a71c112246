package policy

import (
	"context"
	"sync"
	"testing"
)

// TestPartsMatchValue: an input built with the parts cache, on a miss and
// then on a hit, is the value built without it; a grant that keeps its ID
// but changes a field is a miss.
func TestPartsMatchValue(t *testing.T) {
	pc := newParts()
	in := fullInput()
	for _, round := range []string{"miss", "hit"} {
		if got, want := in.valueOf(allFields, pc), in.value(); got.Compare(want) != 0 {
			t.Fatalf("%s: got %v, want %v", round, got, want)
		}
	}
	if got := len(pc.principals) + len(pc.users) + len(pc.grants) + len(pc.requests); got != 4 {
		t.Fatalf("got %d cached parts, want 4", got)
	}
	in.Grant.Scopes.Tools[0] = "browse" // same ID, other scopes
	in.Principal.Name = "b"
	in.User.Issuer = "https://other"
	in.Request.Tools[0] = "browse"
	if got, want := in.valueOf(allFields, pc), in.value(); got.Compare(want) != 0 {
		t.Fatalf("changed parts: got %v, want %v", got, want)
	}
}

// TestPartsWholeInput: an input without a chain is reused whole once its
// parts repeat, and each
// field outside the cached parts (action, tool, approval) tells two inputs
// apart; one with a chain is built anew.
func TestPartsWholeInput(t *testing.T) {
	pc := newParts()
	in := fullInput()
	in.Chain = nil
	for _, change := range []struct {
		name string
		f    func()
	}{
		{"first", func() {}},
		{"again", func() {}},
		{"action", func() { in.Action = "tool.call" }},
		{"tool", func() { in.Tool.Server = "other" }},
		{"approval", func() { in.Approval.User = "bob" }},
		{"no tool", func() { in.Tool = nil }},
		{"chain", func() { in.Chain = []string{"spiffe://td/x"} }},
	} {
		change.f()
		if got, want := in.valueOf(allFields, pc), in.value(); got.Compare(want) != 0 {
			t.Fatalf("%s: got %v, want %v", change.name, got, want)
		}
		if change.name == "first" && len(pc.inputs) != 0 {
			t.Errorf("first: got %d whole inputs cached, want none until the parts repeat", len(pc.inputs))
		}
	}
	if got, want := len(pc.inputs), 5; got != want {
		t.Errorf("got %d whole inputs cached, want %d", got, want)
	}
}

// TestPartsRequestByShape: a shape that leaves out the prompt and
// max_tokens reuses a request's value across prompts; one that keeps them
// does not.
func TestPartsRequestByShape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape fieldMask
		want  bool
	}{
		{"prompt left out", allFields &^ (fRequestPrompt | fRequestPromptBytes | fRequestPromptMessages | fRequestMaxTokens), true},
		{"prompt kept", allFields, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := newParts()
			in := fullInput()
			first := in.valueOf(tc.shape, pc)
			in.Request.Prompt.Bytes++
			in.Request.MaxTokens++
			second := in.valueOf(tc.shape, pc)
			if got := first.Compare(second) == 0; got != tc.want {
				t.Errorf("got same value %v, want %v", got, tc.want)
			}
			if got, want := second, in.valueOf(tc.shape, nil); got.Compare(want) != 0 {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestPartsBounded(t *testing.T) {
	pc := newParts()
	for i := range maxParts + 10 {
		pc.putPrincipal(Principal{Name: string(rune('a' + i%26)), Tenant: string(rune(i))}, nil)
	}
	if got := len(pc.principals); got > maxParts {
		t.Errorf("got %d principals cached, want at most %d", got, maxParts)
	}
}

// TestDecideConcurrentSharedParts: decisions in parallel share cached
// principal and grant values (run with -race).
func TestDecideConcurrentSharedParts(t *testing.T) {
	e := newEngine(t, Options{CacheSize: -1})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				in := withGrant(llm("agent", "acme", "gpt-4o-mini"), Grant{ID: "g1", Tenant: "acme", Purpose: "support",
					Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 512}})
				in.Request.MaxTokens = i*100 + j
				d, err := e.Decide(ctx, in)
				if err != nil || !d.Allow || d.Obligations.MaxTokens != 512 {
					t.Errorf("got allow=%v max_tokens=%d err=%v, want allow capped at 512", d.Allow, d.Obligations.MaxTokens, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
