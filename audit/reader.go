package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Reader reads records, tree hashes and proofs from a log directory without
// locking or writing it, so it works beside a running gateway. It finds a
// record with two reads: its offset from dir/index (8 bytes per record),
// then its line from the segment named by the largest first seq not above
// it. Tree hashes come from dir/hashes.
//
// A Reader from OpenReader sees the records whose index entries and stored
// hashes were written when it was opened (Size); a Log's own reader follows
// the log as it grows.
type Reader struct {
	dir    string
	hashes *os.File
	index  *os.File
	size   func() uint64

	mu   sync.Mutex
	segs []segment // refreshed when a record is not where the list says
}

// OpenReader opens the log in dir for reading. It does not take the
// directory lock. Its Size is the number of records that both dir/index and
// dir/hashes cover, which is every durable record of a log that was closed
// cleanly, and at most a batch behind on a live one.
func OpenReader(dir string) (*Reader, error) {
	r, err := openReader(dir, nil)
	if err != nil {
		return nil, err
	}
	hi, err := r.hashes.Stat()
	if err == nil {
		var ii os.FileInfo
		if ii, err = r.index.Stat(); err == nil {
			n := uint64(min(recordsCovered(hi.Size()/HashSize), ii.Size()/indexEntry))
			r.size = func() uint64 { return n }
		}
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("audit: open reader: %w", err)
	}
	return r, nil
}

func openReader(dir string, size func() uint64) (*Reader, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	h, err := os.Open(filepath.Join(dir, hashesFile))
	if err != nil {
		return nil, fmt.Errorf("audit: open reader: %w", err)
	}
	x, err := os.Open(filepath.Join(dir, indexFile))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("audit: open reader: %w (a log written before the index existed gets one when the gateway next opens it)", err)
	}
	return &Reader{dir: dir, hashes: h, index: x, size: size, segs: segs}, nil
}

// Close closes the reader's files.
func (r *Reader) Close() error { return errors.Join(r.hashes.Close(), r.index.Close()) }

// Size returns the number of records the reader can serve.
func (r *Reader) Size() uint64 { return r.size() }

// Dir returns the log directory.
func (r *Reader) Dir() string { return r.dir }

// ReadHashes implements tlog.HashReader over dir/hashes.
func (r *Reader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	return fileHashReader{r.hashes}.ReadHashes(idx)
}

// segmentFor returns the segment that should hold seq.
func (r *Reader) segmentFor(seq uint64, refresh bool) (segment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if refresh {
		segs, err := listSegments(r.dir)
		if err != nil {
			return segment{}, err
		}
		r.segs = segs
	}
	i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].first > seq })
	if i == 0 {
		return segment{}, fmt.Errorf("audit: record %d: no segment holds it", seq)
	}
	return r.segs[i-1], nil
}

// Record returns the line of record seq, without its newline.
func (r *Reader) Record(seq uint64) ([]byte, error) {
	if seq >= r.Size() {
		return nil, fmt.Errorf("audit: record %d: the log has %d records", seq, r.Size())
	}
	var ent [2 * indexEntry]byte
	n, err := r.index.ReadAt(ent[:], int64(seq)*indexEntry)
	if n < indexEntry {
		return nil, fmt.Errorf("audit: record %d: read %s: %w", seq, indexFile, err)
	}
	off := binary.BigEndian.Uint64(ent[:])
	want := -1 // line length, when the next entry is in the same segment
	if n == len(ent) && seq+1 < r.Size() {
		if next := binary.BigEndian.Uint64(ent[indexEntry:]); next > off && next-off-1 <= MaxLineBytes {
			want = int(next - off - 1)
		}
	}
	for refresh := false; ; refresh = true {
		s, err := r.segmentFor(seq, refresh)
		if err != nil {
			return nil, err
		}
		line, err := readLineAt(s.path, int64(off), want)
		if err == nil {
			if h, perr := parseHeader(line); perr == nil && h.seq == seq {
				return line, nil
			}
			err = fmt.Errorf("the line at offset %d is not record %d", off, seq)
		}
		if refresh {
			return nil, &VerifyError{Segment: s.name, Seq: int64(seq), Offset: int64(off), Reason: fmt.Sprintf("index: %v", err)}
		}
		// A segment created since the list was read; look again once.
	}
}

// readLineAt reads the '\n'-terminated line at off in the file at path.
// want is its length when known, else -1.
func readLineAt(path string, off int64, want int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := 4 << 10
	if want >= 0 {
		size = want + 1
	}
	for {
		buf := make([]byte, size)
		n, err := f.ReadAt(buf, off)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return buf[:i], nil
		}
		if err != nil || size > MaxLineBytes {
			return nil, fmt.Errorf("no complete line at offset %d", off)
		}
		size = min(size*4, MaxLineBytes+1)
	}
}

// TreeHash returns the root of the tree of the first n records (n <= Size).
func (r *Reader) TreeHash(n uint64) (tlog.Hash, error) {
	if n > r.Size() {
		return tlog.Hash{}, fmt.Errorf("audit: tree hash: size %d is beyond the log's %d records", n, r.Size())
	}
	h, err := tlog.TreeHash(int64(n), r)
	if err != nil {
		return h, fmt.Errorf("audit: tree hash: %w", err)
	}
	return h, nil
}

// Prove returns the inclusion proof of record seq in the tree of the first
// size records (seq < size <= Size()).
func (r *Reader) Prove(seq, size uint64) (*Proof, error) {
	if seq >= size || size > r.Size() {
		return nil, fmt.Errorf("audit: prove: need seq %d < size %d <= %d records", seq, size, r.Size())
	}
	line, err := r.Record(seq)
	if err != nil {
		return nil, err
	}
	rp, err := tlog.ProveRecord(int64(size), int64(seq), r)
	if err != nil {
		return nil, fmt.Errorf("audit: prove: %w", err)
	}
	return &Proof{Seq: seq, Record: string(line), TreeSize: size, Inclusion: rp}, nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// the first newSize records extends the tree of the first oldSize.
func (r *Reader) ProveConsistency(oldSize, newSize uint64) (tlog.TreeProof, error) {
	if oldSize > newSize || newSize > r.Size() {
		return nil, fmt.Errorf("audit: consistency: need %d <= %d <= %d records", oldSize, newSize, r.Size())
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil // every tree extends the empty tree
	}
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), r)
	if err != nil {
		return nil, fmt.Errorf("audit: consistency: %w", err)
	}
	return p, nil
}
