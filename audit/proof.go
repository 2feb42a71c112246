package audit

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Proof shows that one record is in the log: the record line, an RFC 6962
// inclusion proof in the tree of TreeSize records, and (when set) a signed
// checkpoint for that tree. It marshals to the JSON documented in
// docs/audit-format.md; hashes are base64.
type Proof struct {
	Seq        uint64      `json:"seq"`
	Record     string      `json:"record"` // the line, without its newline
	TreeSize   uint64      `json:"tree_size"`
	Inclusion  []tlog.Hash `json:"inclusion"`
	Checkpoint string      `json:"checkpoint,omitempty"` // signed note for TreeSize
}

// Prove returns the inclusion proof of record seq in the tree of the first
// size records (seq < size <= Size()). It costs two reads to find the record
// (dir/index, then its segment) and about log2(size) stored-hash reads.
func (l *Log) Prove(seq, size uint64) (*Proof, error) { return l.rd.Prove(seq, size) }

// Record returns the line of record seq (< Size()), without its newline.
func (l *Log) Record(seq uint64) ([]byte, error) { return l.rd.Record(seq) }

// ProveSigned is Prove against the current size, with a fresh checkpoint
// signed by s attached.
func (l *Log) ProveSigned(seq uint64, s note.Signer) (*Proof, error) {
	msg, err := l.Checkpoint(s)
	if err != nil {
		return nil, err
	}
	body, _ := splitNote(msg)
	c, err := ParseCheckpoint(body)
	if err != nil {
		return nil, err
	}
	p, err := l.Prove(seq, c.Size)
	if err != nil {
		return nil, err
	}
	p.Checkpoint = string(msg)
	return p, nil
}

// CheckProof verifies p offline: the checkpoint's signature with v, that the
// record line says it is record p.Seq, and that its leaf hash
// (SHA-256(0x00 || line)) is in the checkpoint's tree.
func CheckProof(p *Proof, v note.Verifier) (Checkpoint, error) {
	c, err := OpenCheckpoint([]byte(p.Checkpoint), v)
	if err != nil {
		return c, err
	}
	if c.Size != p.TreeSize {
		return c, fmt.Errorf("audit: proof: tree size %d, checkpoint size %d", p.TreeSize, c.Size)
	}
	h, err := parseHeader([]byte(p.Record))
	if err != nil {
		return c, fmt.Errorf("audit: proof: record: %s", err)
	}
	if h.seq != p.Seq {
		return c, fmt.Errorf("audit: proof: record says seq %d, proof is for %d", h.seq, p.Seq)
	}
	if p.Seq >= c.Size {
		return c, fmt.Errorf("audit: proof: seq %d is not below tree size %d", p.Seq, c.Size)
	}
	if err := tlog.CheckRecord(p.Inclusion, int64(c.Size), c.Root, int64(p.Seq), tlog.RecordHash([]byte(p.Record))); err != nil {
		return c, fmt.Errorf("audit: proof: record %d: %w", p.Seq, err)
	}
	return c, nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// the first newSize records extends the tree of the first oldSize.
func (l *Log) ProveConsistency(oldSize, newSize uint64) (tlog.TreeProof, error) {
	return l.rd.ProveConsistency(oldSize, newSize)
}

// CheckConsistency verifies that newer extends older using p.
func CheckConsistency(p tlog.TreeProof, older, newer Checkpoint) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("audit: consistency: origins differ: %q, %q", older.Origin, newer.Origin)
	}
	if older.Size > newer.Size {
		return fmt.Errorf("audit: consistency: older checkpoint is larger (%d > %d)", older.Size, newer.Size)
	}
	if older.Size == 0 {
		if empty, _ := tlog.TreeHash(0, nil); older.Root != empty || len(p) != 0 {
			return fmt.Errorf("audit: consistency: 0 -> %d: %w", newer.Size, errors.New("not the empty tree"))
		}
		return nil
	}
	if err := tlog.CheckTree(p, int64(newer.Size), newer.Root, int64(older.Size), older.Root); err != nil {
		return fmt.Errorf("audit: consistency: %d -> %d: %w", older.Size, newer.Size, err)
	}
	return nil
}
