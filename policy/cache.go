package policy

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
)

// The decision cache maps a 64-bit maphash of the decision-relevant input
// fields and the bundle's content hash to the decision. A hit also compares
// the stored input field by field, so a hash collision is a miss, never a
// wrong answer. The key leaves out Grant.ExpiresAt (it would make every key
// unique); callers check expiry, and policies must not read it. It never
// includes wall-clock time.

type cacheEntry struct {
	bundle   [32]byte // content hash of the bundle that decided
	input    Input    // deep copy, Grant.ExpiresAt zeroed
	decision Decision
}

func newCacheEntry(st *state, in *Input, d Decision) *cacheEntry {
	d.Reasons = slices.Clip(d.Reasons)
	d.Obligations.Tools = slices.Clip(d.Obligations.Tools)
	return &cacheEntry{bundle: st.hash, input: copyInput(in), decision: d}
}

func (c *cacheEntry) matches(st *state, in *Input) bool {
	return c.bundle == st.hash && sameInput(&c.input, in)
}

// key hashes the bundle and the input. Each string is followed by its length
// so that field boundaries cannot shift; optional parts write a presence byte.
func (e *Engine) key(st *state, in *Input) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.Write(st.hash[:])
	hstr(&h, in.Action)
	p := &in.Principal
	hstr(&h, p.SPIFFEID)
	hstr(&h, p.TrustDomain)
	hstr(&h, p.Kind)
	hstr(&h, p.Tenant)
	hstr(&h, p.Name)
	if u := in.User; u != nil {
		h.WriteByte(1)
		hstr(&h, u.Subject)
		hstr(&h, u.Issuer)
		hstr(&h, u.Kind)
	} else {
		h.WriteByte(0)
	}
	hstrs(&h, in.Chain)
	if g := in.Grant; g != nil {
		h.WriteByte(1)
		hstr(&h, g.ID)
		hstr(&h, g.Task)
		hstr(&h, g.Purpose)
		hstr(&h, g.Tenant)
		hstrs(&h, g.Scopes.Models)
		hstrs(&h, g.Scopes.Tools)
		hint(&h, int64(g.Scopes.MaxTokens))
		// ExpiresAt deliberately left out.
	} else {
		h.WriteByte(0)
	}
	if r := in.Request; r != nil {
		h.WriteByte(1)
		hstr(&h, r.API)
		hstr(&h, r.Model)
		hstr(&h, r.Provider)
		if r.Stream {
			h.WriteByte(1)
		} else {
			h.WriteByte(0)
		}
		hstrs(&h, r.Tools)
		hstrs(&h, r.ToolResults)
		hint(&h, int64(r.MaxTokens))
		hint(&h, int64(r.Prompt.Bytes))
		hint(&h, int64(r.Prompt.Messages))
	} else {
		h.WriteByte(0)
	}
	if t := in.Tool; t != nil {
		h.WriteByte(1)
		hstr(&h, t.Name)
		hstr(&h, t.Server)
	} else {
		h.WriteByte(0)
	}
	if a := in.Approval; a != nil {
		h.WriteByte(1)
		hstr(&h, a.ID)
		hstr(&h, a.Requester)
	} else {
		h.WriteByte(0)
	}
	return h.Sum64()
}

func hstr(h *maphash.Hash, s string) {
	h.WriteString(s)
	hint(h, int64(len(s)))
}

func hstrs(h *maphash.Hash, ss []string) {
	for _, s := range ss {
		hstr(h, s)
	}
	hint(h, int64(len(ss)))
}

func hint(h *maphash.Hash, n int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

// sameInput reports whether a and b evaluate alike: equal in every field but
// Grant.ExpiresAt, with nil and empty lists equal (both encode as []).
func sameInput(a, b *Input) bool {
	if a.Action != b.Action || a.Principal != b.Principal || !slices.Equal(a.Chain, b.Chain) {
		return false
	}
	if !samePtr(a.User, b.User) || !samePtr(a.Tool, b.Tool) || !samePtr(a.Approval, b.Approval) {
		return false
	}
	if (a.Grant == nil) != (b.Grant == nil) || (a.Request == nil) != (b.Request == nil) {
		return false
	}
	if ag, bg := a.Grant, b.Grant; ag != nil {
		if ag.ID != bg.ID || ag.Task != bg.Task || ag.Purpose != bg.Purpose || ag.Tenant != bg.Tenant ||
			ag.Scopes.MaxTokens != bg.Scopes.MaxTokens ||
			!slices.Equal(ag.Scopes.Models, bg.Scopes.Models) || !slices.Equal(ag.Scopes.Tools, bg.Scopes.Tools) {
			return false
		}
	}
	if ar, br := a.Request, b.Request; ar != nil {
		if ar.API != br.API || ar.Model != br.Model || ar.Provider != br.Provider || ar.Stream != br.Stream ||
			ar.MaxTokens != br.MaxTokens || ar.Prompt != br.Prompt ||
			!slices.Equal(ar.Tools, br.Tools) || !slices.Equal(ar.ToolResults, br.ToolResults) {
			return false
		}
	}
	return true
}

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// copyInput deep-copies in for the cache, dropping Grant.ExpiresAt.
func copyInput(in *Input) Input {
	c := *in
	c.Chain = slices.Clone(in.Chain)
	if in.User != nil {
		u := *in.User
		c.User = &u
	}
	if in.Grant != nil {
		g := *in.Grant
		g.ExpiresAt = 0
		g.Scopes.Models = slices.Clone(g.Scopes.Models)
		g.Scopes.Tools = slices.Clone(g.Scopes.Tools)
		c.Grant = &g
	}
	if in.Request != nil {
		r := *in.Request
		r.Tools = slices.Clone(r.Tools)
		r.ToolResults = slices.Clone(r.ToolResults)
		c.Request = &r
	}
	if in.Tool != nil {
		t := *in.Tool
		c.Tool = &t
	}
	if in.Approval != nil {
		a := *in.Approval
		c.Approval = &a
	}
	return c
}
