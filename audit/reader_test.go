package audit

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestIndexOffsets checks dir/index against the segments byte by byte: entry
// n is the offset of record n's line in its segment, across rotations and
// reopens, and a missing or short index is rebuilt by Open.
func TestIndexOffsets(t *testing.T) {
	opts := Options{SegmentMaxBytes: 700}
	l, dir := openTest(t, opts)
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts.NoSync = true
	l, err := Open(dir, opts) // reopen: the newest segment's entries are recomputed
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 15)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("got %d segments, want rotation into at least 5", len(segs))
	}
	for _, s := range segs {
		off := 0
		for _, line := range bytes.SplitAfter(readFile(t, s.path), []byte("\n")) {
			if len(line) > 0 {
				want = binary.BigEndian.AppendUint64(want, uint64(off))
				off += len(line)
			}
		}
	}
	idx := filepath.Join(dir, indexFile)
	if got := readFile(t, idx); !bytes.Equal(got, want) {
		t.Fatalf("index:\n got %x\nwant %x", got, want)
	}
	for _, content := range [][]byte{nil, want[:len(want)/2], append(bytes.Clone(want[:16]), 0xff)} {
		writeFile(t, idx, content)
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, idx); !bytes.Equal(got, want) {
			t.Errorf("index rebuilt from %d bytes differs", len(content))
		}
	}
}

// TestReaderBesideWriter reads records and proves them from a second,
// lock-free reader while the log is open, across many segments: the first,
// a middle and the last record.
func TestReaderBesideWriter(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 1500})
	appendN(t, l, 60)
	s, v := testSigner(t, "gw-1", 1)
	msg, err := l.Checkpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 60 {
		t.Fatalf("reader size: got %d, want 60", r.Size())
	}
	lines := segmentLines(t, dir)
	for _, seq := range []uint64{0, 1, 29, 58, 59} {
		got, err := r.Record(seq)
		if err != nil {
			t.Fatalf("Record(%d): %v", seq, err)
		}
		if !bytes.Equal(got, lines[seq]) {
			t.Errorf("Record(%d) = %q, want %q", seq, got, lines[seq])
		}
		p, err := r.Prove(seq, 60)
		if err != nil {
			t.Fatal(err)
		}
		p.Checkpoint = string(msg)
		if _, err := CheckProof(p, v); err != nil {
			t.Errorf("proof of %d: %v", seq, err)
		}
	}
	if _, err := r.Record(60); err == nil {
		t.Error("Record beyond the reader's size succeeded")
	}
	// The writer rotates on; the log's own reader follows it.
	appendN(t, l, 30)
	for _, seq := range []uint64{60, 89} {
		if got, err := l.Record(seq); err != nil || !bytes.Equal(got, segmentLines(t, dir)[seq]) {
			t.Errorf("Log.Record(%d) = %q, %v", seq, got, err)
		}
	}
}

// TestReaderNamesBadIndex: an index entry pointing at the wrong line is an
// error naming the record, never a wrong record.
func TestReaderNamesBadIndex(t *testing.T) {
	l, dir := openTest(t, Options{})
	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, indexFile)
	b := readFile(t, idx)
	copy(b[3*indexEntry:], b[2*indexEntry:3*indexEntry]) // record 3 -> record 2's line
	writeFile(t, idx, b)
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Record(3); err == nil {
		t.Fatal("Record(3) with a bad index entry succeeded")
	}
	if _, err := r.Record(4); err != nil {
		t.Errorf("Record(4): %v", err)
	}
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReader(dir); err == nil {
		t.Error("OpenReader without an index succeeded")
	}
}

// TestRotateByAge: a record a SegmentMaxAge newer than its segment's first
// starts a new segment, also after a reopen; the chain runs across them.
func TestRotateByAge(t *testing.T) {
	opts := Options{Clock: stepClock(time.Minute), SegmentMaxAge: 3 * time.Minute}
	l, dir := openTest(t, opts)
	appendN(t, l, 7) // minutes 0..6: segments start at 0, 3, 6
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts.NoSync = true
	opts.Clock = func() time.Time { return time.Date(2026, 3, 14, 15, 16, 26, 535000000, time.UTC) } // minute 7
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2) // minute 7, 7: still in the segment started at minute 6
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, s := range segs {
		got = append(got, s.first)
	}
	if want := []uint64{0, 3, 6}; !slices.Equal(got, want) {
		t.Errorf("segments start at %v, want %v", got, want)
	}
	if rep, err := Verify(dir); err != nil || rep.Records != 9 {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}
