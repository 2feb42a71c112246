package policy

import (
	"context"
	"reflect"
	"testing"
)

func TestCacheHitOnRepeat(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	first, err := e.Decide(ctx, llm("agent", "acme", "gpt-4o-mini"))
	if err != nil || first.CacheHit {
		t.Fatalf("first: got cache_hit=%v err=%v, want a miss", first.CacheHit, err)
	}
	again, err := e.Decide(ctx, llm("agent", "acme", "gpt-4o-mini"))
	if err != nil || !again.CacheHit {
		t.Fatalf("repeat: got cache_hit=%v err=%v, want a hit", again.CacheHit, err)
	}
	again.CacheHit = false
	if !reflect.DeepEqual(again, first) {
		t.Errorf("hit returned %+v, want %+v", again, first)
	}
	if hits, misses := e.CacheStats(); hits != 1 || misses != 1 {
		t.Errorf("got %d hits %d misses, want 1 and 1", hits, misses)
	}
}

func TestCacheKeyIgnoresExpiresAt(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	g := Grant{ID: "g1", Tenant: "acme", Scopes: Scopes{Models: []string{"gpt-4o-mini"}}, ExpiresAt: 1700000000}
	if d, err := e.Decide(ctx, withGrant(llm("agent", "acme", "gpt-4o-mini"), g)); err != nil || d.CacheHit {
		t.Fatalf("first: got cache_hit=%v err=%v", d.CacheHit, err)
	}
	g.ExpiresAt = 1700000600
	if d, err := e.Decide(ctx, withGrant(llm("agent", "acme", "gpt-4o-mini"), g)); err != nil || !d.CacheHit {
		t.Errorf("same grant, later expiry: got cache_hit=%v err=%v, want a hit", d.CacheHit, err)
	}
}

func TestCacheMissAfterReload(t *testing.T) {
	dir := copyBundle(t, DefaultBundle())
	e := newEngine(t, Options{BundleDir: dir})
	ctx := context.Background()
	in := llm("human", "acme", "gpt-4o")
	e.Decide(ctx, in)
	if d, _ := e.Decide(ctx, in); !d.CacheHit {
		t.Fatal("no hit before reload")
	}
	old := e.Revision()
	writeFile(t, dir, "extra.rego", "package portcullis.extra\n\nx := 1\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(ctx, in)
	if err != nil || d.CacheHit || d.Revision == old || d.Revision != e.Revision() {
		t.Errorf("after reload: got cache_hit=%v revision=%s err=%v, want a miss decided by %s", d.CacheHit, d.Revision, err, e.Revision())
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newEngine(t, Options{CacheSize: -1})
	for range 2 {
		if d, err := e.Decide(context.Background(), llm("human", "acme", "gpt-4o")); err != nil || d.CacheHit {
			t.Fatalf("got cache_hit=%v err=%v, want no cache", d.CacheHit, err)
		}
	}
}

// TestCacheCallerMutation: changing an Input after Decide must not change
// what the cache answers for it.
func TestCacheCallerMutation(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	in := withGrant(llm("human", "acme", "gpt-4o"), Grant{ID: "g", Tenant: "acme", Purpose: "support", Scopes: Scopes{Models: []string{"gpt-4o"}}})
	if d, _ := e.Decide(ctx, in); !d.Allow {
		t.Fatal("want allow")
	}
	in.Grant.Scopes.Models[0] = "gpt-4o-mini" // now out of scope
	if d, _ := e.Decide(ctx, in); d.Allow || d.CacheHit {
		t.Errorf("mutated input: got allow=%v cache_hit=%v, want an evaluated deny", d.Allow, d.CacheHit)
	}
}

// fullInput sets every field of an Input to a non-zero value.
func fullInput() *Input {
	return &Input{
		Action:    "llm.invoke",
		Principal: Principal{SPIFFEID: "spiffe://td/acme/agent/a", TrustDomain: "td", Kind: "agent", Tenant: "acme", Name: "a"},
		User:      &User{Subject: "alice", Issuer: "https://idp", Kind: "human"},
		Chain:     []string{"spiffe://td/acme/human/alice", "spiffe://td/acme/agent/a"},
		Grant: &Grant{ID: "g", Task: "t", Purpose: "support", Tenant: "acme",
			Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 5}, ExpiresAt: 9},
		Request: &Request{API: "chat.completions", Model: "gpt-4o-mini", Provider: "openai", Stream: true,
			Tools: []string{"search"}, ToolResults: []string{"search"}, MaxTokens: 7, Prompt: Prompt{Bytes: 11, Messages: 3}},
		Tool:     &Tool{Name: "search", Server: "docs"},
		Approval: &Approval{ID: "ap", Requester: "spiffe://td/x", Tenant: "acme", Action: "llm.invoke", User: "alice"},
	}
}

// leaves calls f with a settable path to every scalar and list field
// reachable from v, and a function that changes it.
func leaves(v reflect.Value, path string, f func(path string, change func())) {
	switch v.Kind() {
	case reflect.Pointer:
		f(path+" (nil)", func() { v.Set(reflect.Zero(v.Type())) })
		leaves(v.Elem(), path, f)
	case reflect.Struct:
		for i := range v.NumField() {
			leaves(v.Field(i), path+"."+v.Type().Field(i).Name, f)
		}
	case reflect.Slice:
		f(path+" (appended)", func() { v.Set(reflect.Append(v, reflect.ValueOf("x"))) })
		f(path+"[0]", func() { v.Index(0).SetString(v.Index(0).String() + "x") })
	case reflect.String:
		f(path, func() { v.SetString(v.String() + "x") })
	case reflect.Int, reflect.Int64:
		f(path, func() { v.SetInt(v.Int() + 1) })
	case reflect.Bool:
		f(path, func() { v.SetBool(!v.Bool()) })
	default:
		panic("unhandled kind " + v.Kind().String() + " at " + path)
	}
}

// TestCacheKeyCoversEveryField changes each field of Input in turn: the key
// and the stored-input comparison must both see it, except ExpiresAt, which
// both must ignore. A field added to Input but not to the key fails here.
func TestCacheKeyCoversEveryField(t *testing.T) {
	e := newEngine(t, Options{})
	st := e.state.Load()
	base := fullInput()
	baseKey := e.key(st, base)
	ent := newCacheEntry(st, base, Decision{})
	n := 0
	leaves(reflect.ValueOf(fullInput()).Elem(), "Input", func(path string, _ func()) {
		n++
		// Build a fresh input and change the same leaf in it.
		in := fullInput()
		var change func()
		leaves(reflect.ValueOf(in).Elem(), "Input", func(p string, c func()) {
			if p == path {
				change = c
			}
		})
		change()
		ignored := path == "Input.Grant.ExpiresAt"
		if gotSame := e.key(st, in) == baseKey; gotSame != ignored {
			t.Errorf("%s changed: key equal = %v, want %v", path, gotSame, ignored)
		}
		if gotSame := ent.matches(st, in); gotSame != ignored {
			t.Errorf("%s changed: stored input matches = %v, want %v", path, gotSame, ignored)
		}
	})
	if n < 30 {
		t.Errorf("walked %d fields, want every field of Input", n)
	}
}

func TestCacheNilEqualsEmptyList(t *testing.T) {
	e := newEngine(t, Options{})
	st := e.state.Load()
	a := llm("human", "acme", "gpt-4o")
	b := llm("human", "acme", "gpt-4o")
	b.Request.Tools = []string{}
	if e.key(st, a) != e.key(st, b) || !newCacheEntry(st, a, Decision{}).matches(st, b) {
		t.Error("nil and empty tools lists differ in the cache; they evaluate alike")
	}
}
