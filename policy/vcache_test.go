package policy

import (
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestVirtualCache(t *testing.T) {
	ref := func(s string) ast.Ref { return ast.MustParseRef(s) }
	c := newVirtualCache()
	if v, undef := c.Get(ref("data.p.a")); v != nil || undef {
		t.Fatalf("empty cache: got %v, %v; want nil, false", v, undef)
	}
	one := ast.InternedTerm(1)
	c.Put(ref("data.p.a"), one)
	c.Put(ref("data.p.u"), nil)
	tests := []struct {
		ref       string
		want      *ast.Term
		wantUndef bool
	}{
		{"data.p.a", one, false},
		{"data.p.u", nil, true},
		{"data.p.b", nil, false},
		{"data.p", nil, false},
		{"data.p.a.x", nil, false},
	}
	for _, tt := range tests {
		got, undef := c.Get(ref(tt.ref))
		if got != tt.want || undef != tt.wantUndef {
			t.Errorf("Get(%s): got %v, %v; want %v, %v", tt.ref, got, undef, tt.want, tt.wantUndef)
		}
	}

	// A `with` scope sees nothing of the outer one, and popping it restores it.
	c.Push()
	if v, undef := c.Get(ref("data.p.a")); v != nil || undef {
		t.Errorf("pushed frame: got %v, %v; want nil, false", v, undef)
	}
	c.Put(ref("data.p.a"), ast.InternedTerm(2))
	if v, _ := c.Get(ref("data.p.a")); v != ast.InternedTerm(2) {
		t.Errorf("pushed frame: got %v, want 2", v)
	}
	c.Pop()
	if v, _ := c.Get(ref("data.p.a")); v != one {
		t.Errorf("after pop: got %v, want 1", v)
	}

	// The cache keeps its own copy of a ref the caller reuses.
	r := ref("data.p.c")
	c.Put(r, one)
	r[2] = ast.StringTerm("z")
	if v, _ := c.Get(ref("data.p.c")); v != one {
		t.Errorf("after the caller's ref changed: got %v, want 1", v)
	}

	// Past linearMax entries lookups go through the hash index.
	for i := range 3 * linearMax {
		c.Put(ref(fmt.Sprintf("data.q[%d]", i)), ast.InternedTerm(i))
	}
	c.Put(ref("data.q[7]"), nil)
	for i := range 3 * linearMax {
		got, undef := c.Get(ref(fmt.Sprintf("data.q[%d]", i)))
		want, wantUndef := ast.InternedTerm(i), false
		if i == 7 {
			want, wantUndef = nil, true
		}
		if got != want || undef != wantUndef {
			t.Errorf("Get(data.q[%d]): got %v, %v; want %v, %v", i, got, undef, want, wantUndef)
		}
	}
	if got, want := len(c.Keys()), 3+3*linearMax; got != want {
		t.Errorf("Keys: got %d refs, want %d", got, want)
	}
	c.Pop()
	c.Pop() // popping past the last frame is harmless
	if v, undef := c.Get(ref("data.p.a")); v != nil || undef || c.Keys() != nil {
		t.Errorf("no frame: got %v, %v, keys %v; want nothing", v, undef, c.Keys())
	}
}
