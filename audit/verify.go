package audit

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Report summarizes a verified log.
type Report struct {
	Records  uint64 // records verified (= seq of the next record)
	Segments int
	Head     string // hex hash of the last line; 64 zeros for an empty log (the prev the next record must carry)
	Root     string // base64 RFC 6962 root of all Records records, as in a checkpoint
	Stored   uint64 // records whose stored hashes (dir/hashes) were present and matched
}

// VerifyError names the first record (or segment) that failed verification.
// Line is 1-based within Segment (0 when the problem is the segment itself);
// Seq is the seq the line claims, or -1 when unknown; Offset is the byte
// offset of the line in the segment file.
type VerifyError struct {
	Segment string
	Line    int
	Seq     int64
	Offset  int64
	Reason  string
}

func (e *VerifyError) Error() string { return "audit: " + e.detail() }

func (e *VerifyError) detail() string {
	var b strings.Builder
	b.WriteString("segment ")
	b.WriteString(e.Segment)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Seq >= 0 {
		fmt.Fprintf(&b, " (seq %d)", e.Seq)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Verify checks the log in dir offline, without opening it for writing:
// segment names are contiguous (each named by the seq of its first record,
// the first one 0, only the last one may be empty); every line ends in '\n',
// is at most MaxLineBytes and parses; seq counts up by one from 0; prev is the
// hex SHA-256 of the previous line (newline excluded; 64 zeros for seq 0),
// across segment boundaries. It returns what it verified and, on failure, a
// *VerifyError naming the first bad record.
//
// A hash chain alone cannot show that records were cut from the end, or that
// the last record was rewritten: compare Report.Head with a head kept
// elsewhere.
func Verify(dir string) (Report, error) {
	return verify(dir, nil)
}

// VerifyWithCheckpoint is Verify plus a checkpoint the auditor kept: the
// signed note msg must verify with v, the log must hold at least its size
// records, and the tree of its first size records must have its root. This
// catches records cut from the end and any rewrite below the checkpoint,
// which a hash chain alone cannot.
func VerifyWithCheckpoint(dir string, msg []byte, v note.Verifier) (Report, error) {
	c, err := OpenCheckpoint(msg, v)
	if err != nil {
		return Report{}, err
	}
	return verify(dir, &c)
}

// verifyState is what Verify carries from record to record.
type verifyState struct {
	seq    uint64
	prev   Hash
	tree   *memTree
	hashes *bufio.Reader // dir/hashes, nil once it ended or is missing
	stored uint64
	ckpt   *Checkpoint
	buf    [HashSize]byte
}

func verify(dir string, ckpt *Checkpoint) (Report, error) {
	var rep Report
	st := &verifyState{tree: newMemTree(), ckpt: ckpt}
	rep.Head = st.prev.String()
	segs, err := listSegments(dir)
	if err != nil {
		return rep, err
	}
	if len(segs) == 0 {
		return rep, &VerifyError{Segment: segmentsDir, Seq: -1, Reason: "no segment files"}
	}
	if f, err := os.Open(filepath.Join(dir, hashesFile)); err == nil {
		defer f.Close()
		st.hashes = bufio.NewReaderSize(f, 64<<10)
	}
	if ckpt != nil && ckpt.Size == 0 {
		if err := st.checkRoot(segs[0].name, 0); err != nil {
			return rep, err
		}
	}
	for i, s := range segs {
		if s.first != st.seq {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: fmt.Sprintf("segment gap: want a segment starting at seq %d", st.seq)}
		}
		n, err := st.segment(s)
		rep.Records, rep.Head, rep.Stored = st.seq, st.prev.String(), st.stored
		if err != nil {
			return rep, err
		}
		rep.Segments++
		if n == 0 && i != len(segs)-1 {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: "empty segment before the last one"}
		}
	}
	if ckpt != nil && st.seq < ckpt.Size {
		return rep, &VerifyError{Segment: segs[len(segs)-1].name, Seq: -1, Reason: fmt.Sprintf("log has %d records, the checkpoint covers %d: records were removed from the end", st.seq, ckpt.Size)}
	}
	root, err := st.tree.root()
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Root = base64.StdEncoding.EncodeToString(root[:])
	return rep, nil
}

// segment checks one segment, advancing the state, and returns the number
// of records in it.
func (st *verifyState) segment(s segment) (int, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	sc := newLineScanner(f)
	n := 0
	for {
		line, off, terminated, err := sc.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		bad := func(seq int64, format string, args ...any) error {
			return &VerifyError{Segment: s.name, Line: sc.line, Seq: seq, Offset: off, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case errors.Is(err, errLineTooLong):
			return n, bad(-1, "line is longer than %d bytes", MaxLineBytes)
		case err != nil:
			return n, fmt.Errorf("audit: verify: read %s: %w", s.name, err)
		case !terminated:
			return n, bad(-1, "torn tail: last line is not terminated by a newline (%d bytes)", len(line))
		}
		h, err := parseHeader(line)
		if err != nil {
			return n, bad(-1, "%v", err)
		}
		if h.seq != st.seq {
			return n, bad(int64(h.seq), "seq mismatch: want %d, got %d", st.seq, h.seq)
		}
		if h.prev != st.prev {
			return n, bad(int64(h.seq), "prev mismatch: want %s, got %s", st.prev, h.prev)
		}
		hs, err := st.tree.add(line)
		if err != nil {
			return n, fmt.Errorf("audit: verify: %w", err)
		}
		if st.hashes != nil {
			for i, want := range hs {
				if _, err := io.ReadFull(st.hashes, st.buf[:]); err != nil {
					st.hashes = nil // the file stops here: a log not yet reopened after a crash
					break
				}
				if st.buf != want {
					return n, bad(int64(h.seq), "stored hash %d (dir/%s) differs from the recomputed tree", tlog.StoredHashCount(int64(h.seq))+int64(i), hashesFile)
				}
			}
			if st.hashes != nil {
				st.stored++
			}
		}
		st.prev = HashLine(line)
		st.seq++
		n++
		if st.ckpt != nil && st.seq == st.ckpt.Size {
			if err := st.checkRoot(s.name, sc.line); err != nil {
				return n, err
			}
		}
	}
}

// checkRoot compares the tree so far with the checkpoint.
func (st *verifyState) checkRoot(seg string, line int) error {
	root, err := st.tree.root()
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	if root != st.ckpt.Root {
		return &VerifyError{Segment: seg, Line: line, Seq: int64(st.seq) - 1, Reason: fmt.Sprintf("tree of %d records has root %s, the checkpoint says %s: the log was rewritten", st.seq, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(st.ckpt.Root[:]))}
	}
	return nil
}
