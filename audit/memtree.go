package audit

import (
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// memTree computes the RFC 6962 tree of a stream of records with sumdb/tlog
// while keeping only the hashes later records can need: the roots of the
// complete subtrees on the tree's right edge (at most 64).
type memTree struct {
	n      int64
	hashes map[int64]tlog.Hash
}

func newMemTree() *memTree { return &memTree{hashes: make(map[int64]tlog.Hash)} }

// ReadHashes implements tlog.HashReader.
func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := m.hashes[x]
		if !ok {
			return nil, errHashNotKept
		}
		out[i] = h
	}
	return out, nil
}

var errHashNotKept = tlogError("stored hash is not on the tree's right edge")

type tlogError string

func (e tlogError) Error() string { return "audit: " + string(e) }

// add appends a record and returns the hashes tlog stores for it, in
// StoredHashIndex order starting at tlog.StoredHashCount(n).
func (m *memTree) add(line []byte) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashes(m.n, line, m)
	if err != nil {
		return nil, err
	}
	base := tlog.StoredHashCount(m.n)
	for i, h := range hs {
		m.hashes[base+int64(i)] = h
	}
	m.n++
	// Keep only the right edge of the tree of n records.
	keep := make(map[int64]bool, 64)
	start := int64(0)
	for level := bits.Len64(uint64(m.n)) - 1; level >= 0; level-- {
		if m.n&(1<<level) != 0 {
			keep[tlog.StoredHashIndex(level, start>>level)] = true
			start += 1 << level
		}
	}
	for x := range m.hashes {
		if !keep[x] {
			delete(m.hashes, x)
		}
	}
	return hs, nil
}

// root returns the tree hash of the records added so far.
func (m *memTree) root() (tlog.Hash, error) { return tlog.TreeHash(m.n, m) }
