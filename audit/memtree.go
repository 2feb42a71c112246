package audit

import (
	"crypto/sha256"
	"hash"

	"golang.org/x/mod/sumdb/tlog"
)

// memTree computes the RFC 6962 tree of a stream of records while keeping
// only what later records need: the roots of the complete subtrees on the
// tree's right edge (at most 64), oldest first. add returns exactly the
// hashes tlog.StoredHashes would store for the record, and root equals
// tlog.TreeHash; TestMemTreeMatchesTlog holds it to sumdb/tlog.
type memTree struct {
	n     int64
	edge  []tlog.Hash // complete subtree roots, largest (leftmost) first
	out   []tlog.Hash // reused by add
	leafH hash.Hash
	buf   [1]byte
	sum   tlog.Hash // leafH.Sum's destination: a field, so it does not escape per call
}

func newMemTree() *memTree { return &memTree{leafH: sha256.New()} }

// add appends a record and returns the hashes tlog stores for it, in
// StoredHashIndex order starting at tlog.StoredHashCount(n): the leaf hash,
// then each subtree the leaf completes. The slice is reused by the next add.
func (m *memTree) add(line []byte) ([]tlog.Hash, error) {
	m.leafH.Reset()
	m.leafH.Write(m.buf[:]) // 0x00, the RFC 6962 leaf prefix
	m.leafH.Write(line)
	m.leafH.Sum(m.sum[:0])
	return m.addLeaf(m.sum), nil
}

// addLeaf is add for a record whose leaf hash, SHA-256(0x00 ‖ line), is
// already known.
func (m *memTree) addLeaf(h tlog.Hash) []tlog.Hash {
	m.out = append(m.out[:0], h)
	for i := m.n; i&1 == 1; i >>= 1 {
		left := m.edge[len(m.edge)-1]
		m.edge = m.edge[:len(m.edge)-1]
		h = tlog.NodeHash(left, h)
		m.out = append(m.out, h)
	}
	m.edge = append(m.edge, h)
	m.n++
	return m.out
}

// root returns the tree hash of the records added so far.
func (m *memTree) root() (tlog.Hash, error) {
	if len(m.edge) == 0 {
		return tlog.TreeHash(0, nil)
	}
	h := m.edge[len(m.edge)-1]
	for i := len(m.edge) - 2; i >= 0; i-- {
		h = tlog.NodeHash(m.edge[i], h)
	}
	return h, nil
}
