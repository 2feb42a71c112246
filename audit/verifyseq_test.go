package audit

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"
)

// verifySeq is the one-goroutine verifier the parallel one replaced, kept
// as the reference it is held to (same report, same first error).
func verifySeq(dir string, targets []rootTarget) (Report, error) {
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
	for i, s := range segs {
		if s.first != st.seq {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: fmt.Sprintf("segment gap: want a segment starting at seq %d", st.seq)}
		}
		n, err := st.segmentSeq(s)
		rep.Records, rep.Head, rep.Stored = st.seq, st.prev.String(), st.stored
		if err != nil {
			return rep, err
		}
		rep.Segments++
		if n == 0 && i != len(segs)-1 {
			return rep, &VerifyError{Segment: s.name, Seq: -1, Reason: "empty segment before the last one"}
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

// segmentSeq checks one segment, advancing the state, and returns the number
// of records in it.
func (st *verifyState) segmentSeq(s segment) (int, error) {
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
			return n, bad(claimedSeq(line), "%v", err)
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
		if msg := st.checkIndex(h.seq, off); msg != "" {
			return n, bad(int64(h.seq), "%s", msg)
		}
		st.prev = HashLine(line)
		st.seq++
		n++
		if len(st.targets) > 0 && st.seq == st.targets[0].c.Size {
			if err := st.checkRoots(s.name, sc.line, off); err != nil {
				return n, err
			}
		}
	}
}
