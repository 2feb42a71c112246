package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// tornDir holds the bytes Open cut from a torn tail, as evidence.
const tornDir = "torn"

// cut describes a torn tail that Open removed.
type cut struct {
	segment string
	offset  int64 // where the segment was truncated
	bytes   int64
	sum     Hash // SHA-256 of the cut bytes
	saved   string
}

// event is the "recovery" record written after a cut.
func (c *cut) event() *Event {
	return &Event{Type: "recovery", Detail: map[string]any{
		"reason":     "torn tail truncated at startup",
		"segment":    c.segment,
		"offset":     c.offset,
		"cut_bytes":  c.bytes,
		"cut_sha256": c.sum.String(),
		"saved_as":   c.saved,
	}}
}

// corruptError is Open's refusal: a VerifyError that also wraps ErrCorrupt.
type corruptError struct{ v *VerifyError }

func (e *corruptError) Error() string   { return "audit: log is corrupt: " + e.v.detail() }
func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.v} }

func corrupt(seg string, line int, seq int64, off int64, format string, args ...any) error {
	return &corruptError{&VerifyError{Segment: seg, Line: line, Seq: seq, Offset: off, Reason: fmt.Sprintf(format, args...)}}
}

// recover finds the chain head, repairs a torn tail in the last segment and
// leaves the writer positioned at the end of the log. It returns what it cut.
// signed is the size of the latest stored checkpoint: a record at a lower
// seq was acknowledged and signed for, so a bad line there is corruption,
// never a torn tail, and nothing is cut.
func (l *Log) recover(signed uint64) (*cut, error) {
	sdir := filepath.Join(l.dir, segmentsDir)
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := l.syncDir(l.dir); err != nil {
		return nil, err
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		var v *VerifyError
		if errors.As(err, &v) {
			return nil, &corruptError{v}
		}
		return nil, err
	}
	if len(segs) == 0 {
		return nil, l.createSegment(0)
	}
	last := segs[len(segs)-1]
	var prev Hash
	if len(segs) > 1 {
		p := segs[len(segs)-2]
		line, _, err := lastLine(p.path)
		if err != nil {
			return nil, corrupt(p.name, 0, -1, 0, "reading last record: %v", err)
		}
		h, err := parseHeader(line)
		if err != nil {
			return nil, corrupt(p.name, 0, -1, 0, "last record: %v", err)
		}
		if h.seq+1 != last.first {
			return nil, corrupt(last.name, 0, -1, 0, "segment starts at seq %d but %s ends at seq %d", last.first, p.name, h.seq)
		}
		prev = HashLine(line)
	} else if last.first != 0 {
		return nil, corrupt(last.name, 0, -1, 0, "first segment must start at seq 0")
	}

	f, err := os.OpenFile(last.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	end, size, err := logicalSize(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open: read %s: %w", last.name, err)
	}
	seq, good := last.first, int64(0)
	badOff, badLine, badReason := int64(-1), 0, ""
	sc := newLineScanner(io.NewSectionReader(f, 0, end))
	for {
		line, off, terminated, err := sc.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			f.Close()
			return nil, fmt.Errorf("audit: open: read %s: %w", last.name, err)
		}
		var h header
		var perr error
		switch {
		case err != nil:
			perr = err
		case !terminated:
			perr = errors.New("line is not terminated by a newline")
		default:
			h, perr = parseHeader(line)
		}
		if perr != nil {
			if seq < signed {
				f.Close()
				return nil, corrupt(last.name, sc.line, int64(seq), off,
					"%v, but a checkpoint of size %d covers seq %d: a damaged record inside the checkpointed range is corruption, not a torn tail (nothing was cut)",
					perr, signed, seq)
			}
			if badOff < 0 {
				badOff, badLine, badReason = off, sc.line, perr.Error()
			}
			if bytes.IndexByte(line, 0) >= 0 {
				// A NUL is never part of a record: this is a page of a
				// preallocated segment that the crash left unwritten, in
				// a group that was never acknowledged. Whatever follows
				// is of that group too.
				break
			}
			continue
		}
		if badOff >= 0 {
			f.Close()
			return nil, corrupt(last.name, badLine, -1, badOff, "%s, yet a record follows at line %d", badReason, sc.line)
		}
		if h.seq != seq {
			f.Close()
			return nil, corrupt(last.name, sc.line, int64(h.seq), off, "seq mismatch: want %d, got %d", seq, h.seq)
		}
		if h.prev != prev {
			f.Close()
			return nil, corrupt(last.name, sc.line, int64(h.seq), off, "prev mismatch: want %s, got %s", prev, h.prev)
		}
		if seq == last.first {
			l.w.segTime = h.time
		}
		prev = HashLine(line)
		seq++
		good = off + int64(len(line)) + 1
	}
	var c *cut
	padded := size > end
	if end > good {
		c, err = l.cut(f, last.name, good, end, padded)
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	if !padded {
		size = 0
	}
	l.setSegment(f, last.name, good, size)
	l.w.seq, l.w.prev = seq, prev
	return c, nil
}

// cut saves bytes [from, to) of the segment under dir/torn, then truncates
// the segment to from, or, in a preallocated segment (padded), overwrites
// them with zeros. Both steps are fsync'd before the log is used.
func (l *Log) cut(f *os.File, name string, from, to int64, padded bool) (*cut, error) {
	tdir := filepath.Join(l.dir, tornDir)
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: save torn tail: %w", err)
	}
	saved := filepath.Join(tornDir, fmt.Sprintf("%s.%d.torn", name, from))
	t, err := os.OpenFile(filepath.Join(l.dir, saved), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: save torn tail: %w", err)
	}
	hs := sha256.New()
	_, err = io.Copy(io.MultiWriter(t, hs), io.NewSectionReader(f, from, to-from))
	if err == nil && !l.opts.NoSync {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.syncDir(tdir)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open: save torn tail: %w", err)
	}
	if padded {
		if err := writeZeros(f, from, to); err != nil {
			return nil, fmt.Errorf("audit: open: clear torn tail: %w", err)
		}
	} else if err := f.Truncate(from); err != nil {
		return nil, fmt.Errorf("audit: open: truncate torn tail: %w", err)
	}
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("audit: open: truncate torn tail: %w", err)
		}
	}
	c := &cut{segment: name, offset: from, bytes: to - from, saved: saved}
	hs.Sum(c.sum[:0])
	return c, nil
}
