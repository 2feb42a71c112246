package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestCallsNondeterministic: only a bundle calling a builtin with effects
// gets the timeout as a context deadline (eval), others a cheaper timer.
func TestCallsNondeterministic(t *testing.T) {
	for _, tt := range []struct {
		name, rego string
		want       bool
	}{
		{"pure", `package p
x := concat("", ["a", input.b])`, false},
		{"http.send", `package p
x := http.send({"method": "get", "url": input.u})`, true},
		{"time.now_ns in a function", `package p
f(y) := time.now_ns() + y`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ast.NewCompiler()
			if c.Compile(map[string]*ast.Module{"p.rego": ast.MustParseModule(tt.rego)}); c.Failed() {
				t.Fatal(c.Errors)
			}
			if got := callsNondeterministic(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
