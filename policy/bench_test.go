package policy

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time. On a shared, busy machine
// wall-clock ns/op mostly measures the neighbours; CPU time per op does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports CPU µs/op next to ns/op.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Microsecond)/float64(n), "cpu-µs/op")
}

// BenchmarkDecideCacheHit: a repeated input answered from the cache.
func BenchmarkDecideCacheHit(b *testing.B) {
	e := newEngine(b, Options{})
	ctx := context.Background()
	in := withGrant(llm("agent", "acme", "gpt-4o-mini"), Grant{ID: "g1", Tenant: "acme", Purpose: "support",
		Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 512}})
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	loop(b, func() {
		d, err := e.Decide(ctx, in)
		if err != nil || !d.CacheHit {
			b.Fatalf("got cache_hit=%v err=%v", d.CacheHit, err)
		}
	})
}

// BenchmarkDecideUncached: a full evaluation of the default bundle, on the
// allow paths (the fast branches of decision: agent and grant, human; and
// the general ones: a user, tools offered, a tool call) and on denies
// (reasons computed).
func BenchmarkDecideUncached(b *testing.B) {
	for _, bc := range []struct {
		name  string
		in    *Input
		allow bool
	}{
		{"allow/agent", agentLLM("gpt-4o-mini"), true},
		{"allow/human", llm("human", "acme", "gpt-4o"), true},
		{"allow/grant", withGrant(llm("agent", "acme", "gpt-4o-mini"), Grant{ID: "g1", Tenant: "acme", Purpose: "support",
			Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 512}}), true},
		{"allow/user", func() *Input {
			in := llm("human", "acme", "gpt-4o-mini")
			in.User = &User{Subject: "spiffe://dev.portcullis.local/human/alice", Kind: "human"}
			return in
		}(), true},
		{"allow/tools", func() *Input { in := llm("human", "acme", "gpt-4o"); in.Request.Tools = []string{"search"}; return in }(), true},
		{"allow/tool.call", &Input{Action: "tool.call", Principal: llm("human", "acme", "").Principal, Tool: &Tool{Name: "search"}}, true},
		{"deny/agent", llm("agent", "acme", "gpt-4o"), false},
		{"deny/human", llm("human", "globex", "gpt-4o"), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, Options{CacheSize: -1, Timeout: 10 * time.Second})
			ctx := context.Background()
			loop(b, func() {
				d, err := e.Decide(ctx, bc.in)
				if err != nil || d.Allow != bc.allow {
					b.Fatalf("got allow=%v err=%v", d.Allow, err)
				}
			})
		})
	}
}

// BenchmarkInputValue: building the input document as an ast.Value.
func BenchmarkInputValue(b *testing.B) {
	in := fullInput()
	loop(b, func() { _ = in.value() })
}

// BenchmarkDecideTrivialBundle is the floor: a one-rule constant decision,
// so the default bundle's figure can be read against the engine's overhead.
func BenchmarkDecideTrivialBundle(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "policy.rego", `package portcullis

decision := {"allow": true, "reasons": ["ok"], "obligations": {}} if input.action == "llm.invoke"
`)
	e := newEngine(b, Options{BundleDir: dir, CacheSize: -1, Timeout: 10 * time.Second})
	ctx := context.Background()
	in := llm("agent", "acme", "gpt-4o-mini")
	loop(b, func() {
		if d, err := e.Decide(ctx, in); err != nil || !d.Allow {
			b.Fatalf("got allow=%v err=%v", d.Allow, err)
		}
	})
}

// BenchmarkCacheKey: hashing a full input for the cache.
func BenchmarkCacheKey(b *testing.B) {
	e := newEngine(b, Options{})
	st := e.state.Load()
	in := fullInput()
	var sink uint64
	loop(b, func() { sink += e.key(st, in) })
	_ = sink
}

// BenchmarkDecideUncachedFresh: as DecideUncached/allow/grant, but every
// decision comes with a grant the engine has not built an input value for
// (there are more of them than it keeps), so the grant's part of the input
// and the whole input are built anew: a workload's first request under a
// new grant. new-principal: each from a workload not seen before, too.
func BenchmarkDecideUncachedFresh(b *testing.B) {
	for _, newPrincipal := range []bool{false, true} {
		name := "new-grant"
		if newPrincipal {
			name = "new-principal"
		}
		b.Run(name, func(b *testing.B) { benchFresh(b, newPrincipal) })
	}
}

func benchFresh(b *testing.B, newPrincipal bool) {
	ins := make([]*Input, 2*maxParts)
	for i := range ins {
		in := withGrant(llm("agent", "acme", "gpt-4o-mini"), Grant{ID: "g" + strconv.Itoa(i), Tenant: "acme", Purpose: "support",
			Scopes: Scopes{Models: []string{"gpt-4o-mini"}, Tools: []string{"search"}, MaxTokens: 512}})
		if newPrincipal {
			in.Principal.Name += strconv.Itoa(i)
			in.Principal.SPIFFEID += strconv.Itoa(i)
		}
		ins[i] = in
	}
	e := newEngine(b, Options{CacheSize: -1, Timeout: 10 * time.Second})
	ctx := context.Background()
	i := 0
	loop(b, func() {
		d, err := e.Decide(ctx, ins[i%len(ins)])
		if err != nil || !d.Allow {
			b.Fatalf("got allow=%v err=%v", d.Allow, err)
		}
		i++
	})
}
