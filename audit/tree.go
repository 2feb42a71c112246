package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"
)

// hashesFile holds the RFC 6962 tree's stored hashes, beside segments/.
const hashesFile = "hashes"

// indexFile holds, for record n at byte offset 8*n, the big-endian uint64
// byte offset of its line in its segment.
const indexFile = "index"

// indexEntry is the size of one index entry.
const indexEntry = 8

// tree is the writer's view of the Merkle tree: the stored-hash file in
// sumdb/tlog's layout (hash i at byte offset 32*i, in StoredHashIndex order)
// and the hashes computed for records not yet written to it. The hashes of
// a new record come from mt, which keeps the tree's right edge in memory, so
// appending never reads the file back.
//
// The file is derived data: it is fsync'd when a segment is finished and at
// Close, and Open recomputes whatever the newest segment holds, so a crash
// never leaves a stale or torn hash in use.
//
// It also keeps the seq -> offset index (dir/index) the same way: entries
// for records before n-len(ipend)/8 are in the file, the rest in ipend.
type tree struct {
	f      *os.File
	n      int64  // records hashed (in the file or in pend)
	stored int64  // hashes in the file
	pend   []byte // hashes with indexes stored, stored+1, ..., 32 bytes each
	mt     *memTree
	idx    *os.File
	ipend  []byte // index entries not yet written
}

// ReadHashes implements tlog.HashReader over the file and pend.
func (t *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	npend := int64(len(t.pend) / HashSize)
	for i, x := range idx {
		switch {
		case x >= t.stored && x < t.stored+npend:
			copy(out[i][:], t.pend[(x-t.stored)*HashSize:])
		case x < t.stored:
			if _, err := t.f.ReadAt(out[i][:], x*HashSize); err != nil {
				return nil, fmt.Errorf("audit: read stored hash %d: %w", x, err)
			}
		default:
			return nil, fmt.Errorf("audit: stored hash %d not yet computed", x)
		}
	}
	return out, nil
}

// loadEdge sets mt to the tree of the first t.n records from the stored
// hashes: the roots of its complete subtrees, largest first.
func (t *tree) loadEdge() error {
	t.mt = newMemTree()
	var idx []int64
	start := int64(0)
	for level := 63; level >= 0; level-- {
		if t.n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	edge, err := t.ReadHashes(idx)
	if err != nil {
		return err
	}
	t.mt.n, t.mt.edge = t.n, edge
	return nil
}

// add hashes the next record's line, which starts at byte off of its segment.
func (t *tree) add(line []byte, off int64) error {
	hs, err := t.mt.add(line)
	if err != nil {
		return fmt.Errorf("audit: tree: %w", err)
	}
	for i := range hs {
		t.pend = append(t.pend, hs[i][:]...)
	}
	t.ipend = binary.BigEndian.AppendUint64(t.ipend, uint64(off))
	t.n++
	return nil
}

// flush writes the pending hashes and index entries to their files (no fsync).
func (t *tree) flush() error {
	if len(t.pend) == 0 {
		return nil
	}
	if _, err := t.f.WriteAt(t.pend, t.stored*HashSize); err != nil {
		return fmt.Errorf("write %s: %w", hashesFile, err)
	}
	first := t.n - int64(len(t.ipend)/indexEntry)
	if _, err := t.idx.WriteAt(t.ipend, first*indexEntry); err != nil {
		return fmt.Errorf("write %s: %w", indexFile, err)
	}
	t.stored += int64(len(t.pend) / HashSize)
	t.pend = t.pend[:0]
	t.ipend = t.ipend[:0]
	return nil
}

// sync fsyncs both files.
func (t *tree) sync() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", hashesFile, err)
	}
	if err := t.idx.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", indexFile, err)
	}
	return nil
}

// close closes both files.
func (t *tree) close() error {
	return errors.Join(t.f.Close(), t.idx.Close())
}

// fileHashReader reads stored hashes straight from the file; it is what
// readers other than the writer use, below the durable size.
type fileHashReader struct{ f io.ReaderAt }

func (r fileHashReader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if _, err := r.f.ReadAt(out[i][:], x*HashSize); err != nil {
			return nil, fmt.Errorf("audit: read stored hash %d: %w", x, err)
		}
	}
	return out, nil
}

// recordsCovered returns how many records' stored hashes fit entirely in
// the first h hashes.
func recordsCovered(h int64) int64 {
	lo, hi := int64(0), h // StoredHashCount(n) >= n
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if tlog.StoredHashCount(mid) <= h {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// openTree opens dir/hashes and dir/index and brings them level with the
// segments: it keeps the entries of records before the newest segment that
// both files fully hold and recomputes the rest from the segments. segs is
// the segment list Open found and recovered; the log holds n records.
func (l *Log) openTree(segs []segment, n uint64) (err error) {
	f, err := os.OpenFile(filepath.Join(l.dir, hashesFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	idx, err := os.OpenFile(filepath.Join(l.dir, indexFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open index: %w", err)
	}
	t := &tree{f: f, idx: idx}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	ii, err := idx.Stat()
	if err != nil {
		return fmt.Errorf("audit: open index: %w", err)
	}
	keep := min(recordsCovered(fi.Size()/HashSize), ii.Size()/indexEntry, int64(segs[len(segs)-1].first))
	t.n, t.stored = keep, tlog.StoredHashCount(keep)
	if err := f.Truncate(t.stored * HashSize); err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	if err := idx.Truncate(keep * indexEntry); err != nil {
		return fmt.Errorf("audit: open index: %w", err)
	}
	if err := t.loadEdge(); err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].first <= uint64(t.n) {
			continue // wholly kept
		}
		if err := l.hashSegment(t, s); err != nil {
			return err
		}
	}
	if t.n != int64(n) {
		return &corruptError{&VerifyError{Segment: segs[len(segs)-1].name, Seq: -1, Reason: fmt.Sprintf("tree rebuild reached %d records, the log has %d", t.n, n)}}
	}
	if err := t.flush(); err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	if !l.opts.NoSync {
		if err := t.sync(); err != nil {
			return fmt.Errorf("audit: open tree: %w", err)
		}
	}
	l.w.tree = t
	return nil
}

// hashSegment adds to t the records of s from seq t.n on.
func (l *Log) hashSegment(t *tree, s segment) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	defer f.Close()
	end, _, err := logicalSize(f)
	if err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	sc := newLineScanner(io.NewSectionReader(f, 0, end))
	seq := s.first
	for {
		line, off, terminated, err := sc.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil || !terminated {
			return &corruptError{&VerifyError{Segment: s.name, Line: sc.line, Seq: -1, Reason: "unreadable record while rebuilding the tree"}}
		}
		if seq >= uint64(t.n) {
			if err := t.add(line, off); err != nil {
				return err
			}
			if len(t.pend) >= 1<<21 {
				if err := t.flush(); err != nil {
					return fmt.Errorf("audit: open tree: %w", err)
				}
			}
		}
		seq++
	}
}
