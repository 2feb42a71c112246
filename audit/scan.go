package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// RawRecord is one record as stored: its exact line (without the newline)
// and the fields of its fixed header.
type RawRecord struct {
	Segment string
	Seq     uint64
	Time    time.Time
	Line    []byte // valid only during the callback
}

// ScanRecords calls fn with every record of the log in dir, in seq order,
// reading without locking. Each line must be a well-formed record (as in
// Verify's step 4) or the scan stops with a *VerifyError naming it; the
// chain and the tree are not checked (Verify does that). An error from fn
// stops the scan and is returned.
func ScanRecords(dir string, fn func(RawRecord) error) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := scanSegment(s, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanSegment(s segment, fn func(RawRecord) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit: scan: %w", err)
	}
	defer f.Close()
	end, _, err := logicalSize(f)
	if err != nil {
		return fmt.Errorf("audit: scan %s: %w", s.name, err)
	}
	sc := newLineScanner(io.NewSectionReader(f, 0, end))
	for {
		line, off, terminated, err := sc.next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errLineTooLong):
			return &VerifyError{Segment: s.name, Line: sc.line, Seq: -1, Offset: off, Reason: fmt.Sprintf("line is longer than %d bytes", MaxLineBytes)}
		case err != nil:
			return fmt.Errorf("audit: scan %s: %w", s.name, err)
		case !terminated:
			return &VerifyError{Segment: s.name, Line: sc.line, Seq: -1, Offset: off, Reason: "torn tail: last line is not terminated by a newline"}
		}
		h, err := parseHeader(line)
		if err != nil {
			return &VerifyError{Segment: s.name, Line: sc.line, Seq: -1, Offset: off, Reason: err.Error()}
		}
		if err := fn(RawRecord{Segment: s.name, Seq: h.seq, Time: h.time, Line: line}); err != nil {
			return err
		}
	}
}
