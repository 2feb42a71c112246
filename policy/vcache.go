package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// virtualCache is a topdown.VirtualCache for one evaluation: it memoizes
// the value (or undefinedness) of each rule ref evaluated, as OPA's own
// does, in a frame per `with` scope. OPA's keeps a tree of hash maps, one
// level per ref element, and costs ~18 allocations per decision of the
// default bundle; a decision evaluates a handful of refs, so this one keeps
// a frame's entries in a slice and compares refs, and only indexes them by
// hash once a frame grows past linearMax entries.
type virtualCache struct {
	frames []vcFrame
	first  [1]vcFrame
	slots  [8]vcEntry
}

type vcFrame struct {
	entries []vcEntry
	index   map[int][]int // ref hash -> entries; nil while small
}

type vcEntry struct {
	ref   ast.Ref
	value *ast.Term // nil: undefined
}

// linearMax is the frame size past which lookups go through a hash index.
const linearMax = 16

var _ topdown.VirtualCache = (*virtualCache)(nil)

func newVirtualCache() *virtualCache {
	c := &virtualCache{}
	c.frames = c.first[:1:1]
	c.frames[0].entries = c.slots[:0]
	return c
}

func (c *virtualCache) top() *vcFrame { return &c.frames[len(c.frames)-1] }

// Push opens an empty frame (a `with` scope).
func (c *virtualCache) Push() { c.frames = append(c.frames, vcFrame{}) }

// Pop drops the top frame and its entries.
func (c *virtualCache) Pop() {
	if len(c.frames) > 0 {
		c.frames[len(c.frames)-1] = vcFrame{}
		c.frames = c.frames[:len(c.frames)-1]
	}
}

// find returns the index of ref in f, or -1.
func (f *vcFrame) find(ref ast.Ref) int {
	if f.index == nil {
		for i := range f.entries {
			if f.entries[i].ref.Equal(ref) {
				return i
			}
		}
		return -1
	}
	for _, i := range f.index[ref.Hash()] {
		if f.entries[i].ref.Equal(ref) {
			return i
		}
	}
	return -1
}

// Get returns ref's value, or (nil, true) when it was recorded undefined,
// or (nil, false) when it is not cached.
func (c *virtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if len(c.frames) == 0 {
		return nil, false
	}
	f := c.top()
	i := f.find(ref)
	if i < 0 {
		return nil, false
	}
	if v := f.entries[i].value; v != nil {
		return v, false
	}
	return nil, true
}

// Put records ref's value; nil records it undefined.
func (c *virtualCache) Put(ref ast.Ref, value *ast.Term) {
	if len(c.frames) == 0 {
		c.Push()
	}
	f := c.top()
	if i := f.find(ref); i >= 0 {
		f.entries[i].value = value
		return
	}
	// The caller may reuse ref's backing array: keep a copy.
	f.entries = append(f.entries, vcEntry{ref: ref.Copy(), value: value})
	switch n := len(f.entries); {
	case f.index != nil:
		h := ref.Hash()
		f.index[h] = append(f.index[h], n-1)
	case n > linearMax:
		f.index = make(map[int][]int, 2*n)
		for i := range f.entries {
			h := f.entries[i].ref.Hash()
			f.index[h] = append(f.index[h], i)
		}
	}
}

// Keys returns the refs cached in the top frame.
func (c *virtualCache) Keys() []ast.Ref {
	if len(c.frames) == 0 {
		return nil
	}
	f := c.top()
	keys := make([]ast.Ref, len(f.entries))
	for i := range f.entries {
		keys[i] = f.entries[i].ref
	}
	return keys
}
