package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segmentsDir is where segment files live, below the log directory.
const segmentsDir = "segments"

// segmentExt ends every segment file name.
const segmentExt = ".log"

// segmentName returns the file name of the segment whose first record is seq:
// 20 decimal digits, zero-padded, then ".log".
func segmentName(first uint64) string {
	return fmt.Sprintf("%020d%s", first, segmentExt)
}

// segment is one segment file found on disk.
type segment struct {
	name  string // base name, e.g. 00000000000000000000.log
	path  string
	first uint64
}

// parseSegmentName is the inverse of segmentName.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// listSegments returns the segment files in dir/segments in seq order.
// Files not ending in ".log" are ignored; a ".log" file with any other
// name is an error.
func listSegments(dir string) ([]segment, error) {
	sdir := filepath.Join(dir, segmentsDir)
	ents, err := os.ReadDir(sdir)
	if err != nil {
		return nil, fmt.Errorf("audit: list segments: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), segmentExt) {
			continue
		}
		first, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			return nil, &VerifyError{Segment: e.Name(), Seq: -1, Reason: "not a segment file (want 20 decimal digits + .log, regular file)"}
		}
		segs = append(segs, segment{name: e.Name(), path: filepath.Join(sdir, e.Name()), first: first})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

// lineScanner reads '\n'-terminated lines with a length cap.
type lineScanner struct {
	r    *bufio.Reader
	buf  []byte
	off  int64 // offset of the next line
	line int   // 1-based number of the last line returned
}

func newLineScanner(r io.Reader) *lineScanner {
	return &lineScanner{r: bufio.NewReaderSize(r, 256<<10)}
}

// errLineTooLong is returned (with the line's offset) for a line longer
// than MaxLineBytes; the scanner skips to the next newline.
var errLineTooLong = errors.New("line is longer than the limit")

// next returns the next line without its newline, its start offset and
// whether it was terminated by '\n'. It returns io.EOF when no bytes are left.
// The returned slice is valid until the next call.
func (s *lineScanner) next() (line []byte, off int64, terminated bool, err error) {
	off = s.off
	s.buf = s.buf[:0]
	long := false
	for {
		chunk, rerr := s.r.ReadSlice('\n')
		s.off += int64(len(chunk))
		if !long {
			if len(s.buf)+len(chunk) > MaxLineBytes+1 {
				long = true
				s.buf = s.buf[:0]
			} else if rerr == nil && len(s.buf) == 0 {
				// Fast path: the whole line is in the reader's buffer.
				s.line++
				return chunk[:len(chunk)-1], off, true, nil
			} else {
				s.buf = append(s.buf, chunk...)
			}
		}
		switch {
		case rerr == nil:
			s.line++
			if long {
				return nil, off, true, errLineTooLong
			}
			return s.buf[:len(s.buf)-1], off, true, nil
		case errors.Is(rerr, bufio.ErrBufferFull):
			continue
		case errors.Is(rerr, io.EOF):
			if s.off == off {
				return nil, off, false, io.EOF
			}
			s.line++
			if long {
				return nil, off, false, errLineTooLong
			}
			return s.buf, off, false, nil
		default:
			return nil, off, false, rerr
		}
	}
}

// lastLine returns the last '\n'-terminated line of the file at path
// (newline excluded) and the file's size. The file must end with '\n'.
func lastLine(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, 0, nil
	}
	n := min(size, int64(MaxLineBytes+2))
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return nil, size, err
	}
	if buf[n-1] != '\n' {
		return nil, size, errors.New("last line is not terminated by a newline")
	}
	buf = buf[:n-1]
	start := bytes.LastIndexByte(buf, '\n') + 1
	if start == 0 && n < size {
		return nil, size, errors.New("last line is longer than the limit")
	}
	return buf[start:], size, nil
}
