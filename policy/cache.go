package policy

import (
	"hash/maphash"
	"math/bits"
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

// key hashes the bundle and the input: each field is hashed on its own with
// the engine's random seed (maphash.String, the runtime's string hash) and
// folded into the key. Lists fold in their length, optional parts a presence
// marker, so that field boundaries cannot shift.
func (e *Engine) key(st *state, in *Input) uint64 {
	k := keyer{seed: e.seed, h: st.seed}
	k.str(in.Action)
	p := &in.Principal
	k.str(p.SPIFFEID)
	k.str(p.TrustDomain)
	k.str(p.Kind)
	k.str(p.Tenant)
	k.str(p.Name)
	if u := in.User; u != nil {
		k.int(1)
		k.str(u.Subject)
		k.str(u.Issuer)
		k.str(u.Kind)
	} else {
		k.int(0)
	}
	k.strs(in.Chain)
	if g := in.Grant; g != nil {
		k.int(1)
		k.str(g.ID)
		k.str(g.Task)
		k.str(g.Purpose)
		k.str(g.Tenant)
		k.strs(g.Scopes.Models)
		k.strs(g.Scopes.Tools)
		k.int(uint64(g.Scopes.MaxTokens))
		// ExpiresAt deliberately left out.
	} else {
		k.int(0)
	}
	if r := in.Request; r != nil {
		k.int(1)
		k.str(r.API)
		k.str(r.Model)
		k.str(r.Provider)
		if r.Stream {
			k.int(1)
		} else {
			k.int(0)
		}
		k.strs(r.Tools)
		k.strs(r.ToolResults)
		k.int(uint64(r.MaxTokens))
		k.int(uint64(r.Prompt.Bytes))
		k.int(uint64(r.Prompt.Messages))
	} else {
		k.int(0)
	}
	if t := in.Tool; t != nil {
		k.int(1)
		k.str(t.Name)
		k.str(t.Server)
	} else {
		k.int(0)
	}
	if a := in.Approval; a != nil {
		k.int(1)
		k.str(a.ID)
		k.str(a.Requester)
		k.str(a.Tenant)
		k.str(a.Action)
		k.str(a.User)
	} else {
		k.int(0)
	}
	return k.h
}

type keyer struct {
	seed maphash.Seed
	h    uint64
}

// mix folds x into the key (a multiply-rotate step; the per-field values are
// already seeded hashes, so an adversary cannot aim at a collision, and a
// collision would only be a miss).
func (k *keyer) mix(x uint64) {
	k.h = bits.RotateLeft64((k.h^x)*0x9e3779b97f4a7c15, 31)
}

func (k *keyer) str(s string) { k.mix(maphash.String(k.seed, s)) }

func (k *keyer) int(n uint64) { k.mix(n ^ 0x5bd1e9955bd1e995) }

func (k *keyer) strs(ss []string) {
	for _, s := range ss {
		k.str(s)
	}
	k.int(uint64(len(ss)))
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
