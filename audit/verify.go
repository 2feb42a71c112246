package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Report summarizes a verified log.
type Report struct {
	Records  uint64 // records verified (= seq of the next record)
	Segments int
	Head     string // hex hash of the last line; 64 zeros for an empty log (the prev the next record must carry)
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
	var rep Report
	var prev Hash
	rep.Head = prev.String()
	segs, err := listSegments(dir)
	if err != nil {
		return rep, err
	}
	if len(segs) == 0 {
		return rep, &VerifyError{Segment: segmentsDir, Seq: -1, Reason: "no segment files"}
	}
	var seq uint64
	for i, s := range segs {
		if s.first != seq {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: fmt.Sprintf("segment gap: want a segment starting at seq %d", seq)}
		}
		n, err := verifySegment(s, &seq, &prev)
		rep.Records, rep.Head = seq, prev.String()
		if err != nil {
			return rep, err
		}
		rep.Segments++
		if n == 0 && i != len(segs)-1 {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: "empty segment before the last one"}
		}
	}
	return rep, nil
}

// verifySegment checks one segment, advancing seq and prev, and returns the
// number of records in it.
func verifySegment(s segment, seq *uint64, prev *Hash) (int, error) {
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
		if h.seq != *seq {
			return n, bad(int64(h.seq), "seq mismatch: want %d, got %d", *seq, h.seq)
		}
		if h.prev != *prev {
			return n, bad(int64(h.seq), "prev mismatch: want %s, got %s", *prev, h.prev)
		}
		*prev = HashLine(line)
		*seq++
		n++
	}
}
