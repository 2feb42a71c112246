package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"
)

// hashesFile holds the RFC 6962 tree's stored hashes, beside segments/.
const hashesFile = "hashes"

// tree is the writer's view of the Merkle tree: the stored-hash file in
// sumdb/tlog's layout (hash i at byte offset 32*i, in StoredHashIndex order)
// and the hashes computed for records not yet written to it.
//
// The file is derived data: it is fsync'd when a segment is finished and at
// Close, and Open recomputes whatever the newest segment holds, so a crash
// never leaves a stale or torn hash in use.
type tree struct {
	f      *os.File
	n      int64       // records hashed (in the file or in pend)
	stored int64       // hashes in the file
	pend   []tlog.Hash // hashes with indexes stored, stored+1, ...
}

// ReadHashes implements tlog.HashReader for the writer.
func (t *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		switch {
		case x >= t.stored && x < t.stored+int64(len(t.pend)):
			out[i] = t.pend[x-t.stored]
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

// add hashes the next record's line.
func (t *tree) add(line []byte) error {
	hs, err := tlog.StoredHashes(t.n, line, t)
	if err != nil {
		return fmt.Errorf("audit: tree: %w", err)
	}
	t.pend = append(t.pend, hs...)
	t.n++
	return nil
}

// flush writes the pending hashes to the file (no fsync).
func (t *tree) flush() error {
	if len(t.pend) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(t.pend)*HashSize)
	for _, h := range t.pend {
		buf = append(buf, h[:]...)
	}
	if _, err := t.f.WriteAt(buf, t.stored*HashSize); err != nil {
		return fmt.Errorf("write %s: %w", hashesFile, err)
	}
	t.stored += int64(len(t.pend))
	t.pend = t.pend[:0]
	return nil
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

// openTree opens dir/hashes and brings it level with the segments: it keeps
// the hashes of records before the newest segment that the file fully holds
// and recomputes the rest from the segments. segs is the segment list Open
// found and recovered; the log holds n records.
func (l *Log) openTree(segs []segment, n uint64) error {
	f, err := os.OpenFile(filepath.Join(l.dir, hashesFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open tree: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open tree: %w", err)
	}
	keep := recordsCovered(fi.Size() / HashSize)
	if last := int64(segs[len(segs)-1].first); keep > last {
		keep = last
	}
	t := &tree{f: f, n: keep, stored: tlog.StoredHashCount(keep)}
	if err := f.Truncate(t.stored * HashSize); err != nil {
		f.Close()
		return fmt.Errorf("audit: open tree: %w", err)
	}
	for _, s := range segs {
		if s.first > uint64(t.n) {
			break
		}
		if err := l.hashSegment(t, s); err != nil {
			f.Close()
			return err
		}
	}
	if t.n != int64(n) {
		f.Close()
		return &corruptError{&VerifyError{Segment: segs[len(segs)-1].name, Seq: -1, Reason: fmt.Sprintf("tree rebuild reached %d records, the log has %d", t.n, n)}}
	}
	if err := t.flush(); err != nil {
		f.Close()
		return fmt.Errorf("audit: open tree: %w", err)
	}
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
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
	sc := newLineScanner(f)
	seq := s.first
	for {
		line, _, terminated, err := sc.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil || !terminated {
			return &corruptError{&VerifyError{Segment: s.name, Line: sc.line, Seq: -1, Reason: "unreadable record while rebuilding the tree"}}
		}
		if seq >= uint64(t.n) {
			if err := t.add(line); err != nil {
				return err
			}
			if len(t.pend) >= 1<<16 {
				if err := t.flush(); err != nil {
					return fmt.Errorf("audit: open tree: %w", err)
				}
			}
		}
		seq++
	}
}
