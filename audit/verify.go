package audit

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Report summarizes a verified log.
type Report struct {
	Records  uint64 // records verified (= seq of the next record)
	Segments int
	Head     string // hex hash of the last line; 64 zeros for an empty log (the prev the next record must carry)
	Root     string // base64 RFC 6962 root of all Records records, as in a checkpoint
	Stored   uint64 // records whose stored hashes (dir/hashes) were present and matched

	Checkpoints int        // stored checkpoints (dir/checkpoints) whose roots matched the log
	Signed      bool       // their signatures were checked too (VerifyOptions.Key was set)
	Latest      Checkpoint // the newest stored checkpoint, if any
}

// VerifyOptions add checkpoints to a verification.
type VerifyOptions struct {
	// Key, when set, checks every stored checkpoint's signature and that its
	// origin is the key's name. Without it stored checkpoints are checked
	// against the log's tree but their signatures are not.
	Key note.Verifier
	// Checkpoint is a signed checkpoint the auditor kept (it needs Key): the
	// log must be an extension of it.
	Checkpoint []byte
	// Extends are tree heads the caller opened itself (a signature checked
	// or not, as it chose): for each, the log must hold at least Size
	// records and the tree of its first Size records must have Root.
	Extends []NamedCheckpoint
}

// NamedCheckpoint is a tree head the log must extend, and what errors call
// it (e.g. the file it came from).
type NamedCheckpoint struct {
	Name string
	Checkpoint
}

// VerifyError names the first record (or segment) that failed verification.
// Line is 1-based within Segment (0 when the problem is the segment itself);
// Seq is the seq the line claims, or -1 when unknown; Offset is the byte
// offset of the line in the segment file. Error names the offset, e.g.
// "audit: segment 00000000000000000000.log at byte 812, line 5 (seq 4): …".
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
	// Line 1 is at byte 0; an Offset of 0 on a later line means unknown.
	if e.Offset > 0 || e.Line == 1 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
		if e.Line > 0 {
			b.WriteByte(',')
		}
	}
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
	return VerifyWith(dir, VerifyOptions{})
}

// VerifyWithCheckpoint is Verify plus a checkpoint the auditor kept: the
// signed note msg must verify with v, the log must hold at least its size
// records, and the tree of its first size records must have its root. This
// catches records cut from the end and any rewrite below the checkpoint,
// which a hash chain alone cannot.
func VerifyWithCheckpoint(dir string, msg []byte, v note.Verifier) (Report, error) {
	return VerifyWith(dir, VerifyOptions{Key: v, Checkpoint: msg})
}

// VerifyWith is Verify with options. Besides the records, it checks every
// checkpoint in dir/checkpoints: it parses (and with o.Key, its signature
// verifies), sizes never decrease, the log holds at least its size records,
// and the tree of its first size records has its root. With o.Checkpoint,
// the same for the auditor's own checkpoint.
func VerifyWith(dir string, o VerifyOptions) (Report, error) {
	var targets []rootTarget
	if o.Checkpoint != nil {
		if o.Key == nil {
			return Report{}, errors.New("audit: verify: a kept checkpoint needs a verifier key")
		}
		c, err := OpenCheckpoint(o.Checkpoint, o.Key)
		if err != nil {
			return Report{}, err
		}
		targets = append(targets, rootTarget{c: c, what: "the checkpoint you kept"})
	}
	for _, e := range o.Extends {
		targets = append(targets, rootTarget{c: e.Checkpoint, what: e.Name})
	}
	stored, latest, err := storedTargets(dir, o.Key)
	if err != nil {
		return Report{}, err
	}
	targets = append(targets, stored...)
	slices.SortStableFunc(targets, func(a, b rootTarget) int { return cmp.Compare(a.c.Size, b.c.Size) })
	rep, err := verify(dir, targets)
	rep.Checkpoints, rep.Signed, rep.Latest = len(stored), o.Key != nil && len(stored) > 0, latest
	return rep, err
}

// rootTarget is a checkpoint the tree must match when it reaches its size.
type rootTarget struct {
	c    Checkpoint
	what string
}

// storedTargets reads and checks dir/checkpoints.
func storedTargets(dir string, v note.Verifier) ([]rootTarget, Checkpoint, error) {
	var out []rootTarget
	var latest Checkpoint
	b, err := os.ReadFile(filepath.Join(dir, checkpointsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, latest, nil
	}
	if err != nil {
		return nil, latest, fmt.Errorf("audit: verify: %w", err)
	}
	notes, bad := splitCheckpoints(b)
	for i, n := range notes {
		fail := func(format string, args ...any) error {
			return &CheckpointError{Index: i, Offset: n.offset, Reason: fmt.Sprintf(format, args...)}
		}
		var c Checkpoint
		if v != nil {
			if c, err = OpenCheckpoint(n.msg, v); err != nil {
				return nil, latest, fail("%s", unprefixed(err))
			}
		} else {
			body, _ := splitNote(n.msg)
			if c, err = ParseCheckpoint(body); err != nil {
				return nil, latest, fail("%s", unprefixed(err))
			}
		}
		if i > 0 {
			prev := out[len(out)-1].c
			if c.Origin != prev.Origin {
				return nil, latest, fail("origin %q, earlier checkpoints say %q", c.Origin, prev.Origin)
			}
			if c.Size < prev.Size {
				return nil, latest, fail("size %d is below the previous checkpoint's %d", c.Size, prev.Size)
			}
		}
		out = append(out, rootTarget{c: c, what: fmt.Sprintf("stored checkpoint %d (dir/%s)", i, checkpointsFile)})
		latest = c
	}
	if bad >= 0 {
		return nil, latest, &CheckpointError{Index: len(notes), Offset: bad, Reason: "incomplete or damaged note"}
	}
	return out, latest, nil
}

// unprefixed is err's text without the package prefix, for a reason inside
// an error that has it already.
func unprefixed(err error) string { return strings.TrimPrefix(err.Error(), "audit: ") }

// verifyState is what Verify carries from record to record.
type verifyState struct {
	seq     uint64
	prev    Hash
	tree    *memTree
	hashes  *bufio.Reader // dir/hashes, nil once it ended or is missing
	stored  uint64
	index   *bufio.Reader // dir/index, nil once it ended or is missing
	targets []rootTarget  // sorted by size; targets[0] is the next to check
	buf     [HashSize]byte
}

func verify(dir string, targets []rootTarget) (Report, error) {
	var rep Report
	st := &verifyState{tree: newMemTree(), targets: targets}
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
	if f, err := os.Open(filepath.Join(dir, indexFile)); err == nil {
		defer f.Close()
		st.index = bufio.NewReaderSize(f, 64<<10)
	}
	if err := st.checkRoots(segs[0].name, 0, 0); err != nil {
		return rep, err
	}
	p := startVerifyPipeline(segs)
	defer p.close()
	n := 0 // records in the current segment
	for c := range p.out {
		s := segs[c.seg]
		if c.first {
			if s.first != st.seq {
				return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: fmt.Sprintf("segment gap: want a segment starting at seq %d", st.seq)}
			}
			n = 0
		}
		k, err := st.chunk(s, c)
		n += k
		last, seg := c.last, c.seg
		p.release(c) // c is the reader's again

		rep.Records, rep.Head, rep.Stored = st.seq, st.prev.String(), st.stored
		if err != nil {
			return rep, err
		}
		if last {
			rep.Segments++
			if n == 0 && seg != len(segs)-1 {
				return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: "empty segment before the last one"}
			}
		}
	}
	if len(st.targets) > 0 {
		t := st.targets[len(st.targets)-1]
		return rep, &VerifyError{Segment: segs[len(segs)-1].name, Seq: -1, Reason: fmt.Sprintf("log has %d records, %s covers %d: records were removed from the end", st.seq, t.what, t.c.Size)}
	}
	root, err := st.tree.root()
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Root = base64.StdEncoding.EncodeToString(root[:])
	return rep, nil
}

// checkIndex compares the next entry of dir/index, when there is one, with
// where record seq actually is: a reader (prove, check-proof's input) finds
// records through it, so a wrong entry is a damaged log even though the
// records are intact. A short or missing index is allowed, like a short
// dir/hashes: the writer completes it when it next opens the log.
func (st *verifyState) checkIndex(seq uint64, off int64) string {
	if st.index == nil {
		return ""
	}
	var ent [indexEntry]byte
	if _, err := io.ReadFull(st.index, ent[:]); err != nil {
		st.index = nil
		return ""
	}
	if got := binary.BigEndian.Uint64(ent[:]); got != uint64(off) {
		return fmt.Sprintf("index entry %d (dir/%s) says byte %d, the record is at byte %d", seq, indexFile, got, off)
	}
	return ""
}

// checkRoots compares the tree so far with every checkpoint of its size.
func (st *verifyState) checkRoots(seg string, line int, off int64) error {
	for len(st.targets) > 0 && st.targets[0].c.Size == st.seq {
		t := st.targets[0]
		root, err := st.tree.root()
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		if root != t.c.Root {
			return &VerifyError{Segment: seg, Line: line, Seq: int64(st.seq) - 1, Offset: off, Reason: fmt.Sprintf("tree of %d records has root %s, %s says %s: the log was rewritten", st.seq, base64.StdEncoding.EncodeToString(root[:]), t.what, base64.StdEncoding.EncodeToString(t.c.Root[:]))}
		}
		st.targets = st.targets[1:]
	}
	return nil
}
