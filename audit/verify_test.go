package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tamperLog writes n records into a fresh log and returns its directory.
func tamperLog(t *testing.T, n int, opts Options) string {
	t.Helper()
	l, dir := openTest(t, opts)
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatalf("untampered log fails: %v", err)
	}
	// The chain must stand on its own: the stored tree hashes are derived
	// data an attacker can delete (TestVerifyStoredHashesNameRecord covers
	// what they add).
	if err := os.Remove(filepath.Join(dir, hashesFile)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerifyStoredHashesNameRecord(t *testing.T) {
	l, dir := openTest(t, Options{})
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	editLines(t, firstSegment(dir), func(l [][]byte) [][]byte {
		l[3] = bytes.Replace(l[3], []byte(`"req-3"`), []byte(`"req-X"`), 1)
		return l
	})
	checkVerifyError(t, dir, VerifyError{Segment: segmentName(0), Line: 4, Seq: 3, Reason: "stored hash 4 (dir/hashes) differs from the recomputed tree"})
}

// editLines rewrites a segment through f, which gets its lines with their
// newlines.
func editLines(t *testing.T, path string, f func(lines [][]byte) [][]byte) {
	t.Helper()
	lines := bytes.SplitAfter(readFile(t, path), []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the last '\n'
	writeFile(t, path, bytes.Join(f(lines), nil))
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(lines [][]byte) [][]byte
		want   VerifyError // Offset is not compared
	}{
		{
			name: "modified byte, JSON still valid",
			tamper: func(l [][]byte) [][]byte {
				l[3] = bytes.Replace(l[3], []byte(`"req-3"`), []byte(`"req-X"`), 1)
				return l
			},
			want: VerifyError{Line: 5, Seq: 4, Reason: "prev mismatch"},
		},
		{
			name: "modified byte, JSON broken",
			tamper: func(l [][]byte) [][]byte {
				l[3] = bytes.Replace(l[3], []byte(`"req-3"`), []byte(`"req-3 `), 1)
				return l
			},
			want: VerifyError{Line: 4, Seq: 3, Reason: "not valid JSON"},
		},
		{
			name:   "removed line",
			tamper: func(l [][]byte) [][]byte { return append(l[:3:3], l[4:]...) },
			want:   VerifyError{Line: 4, Seq: 4, Reason: "seq mismatch: want 3, got 4"},
		},
		{
			name: "inserted line that chains",
			tamper: func(l [][]byte) [][]byte {
				prev := HashLine(bytes.TrimSuffix(l[3], []byte("\n")))
				forged := appendLine(nil, 4, stepClock(0)(), &prev, []byte(`"type":"forged"}`))
				forged = append(forged, '\n')
				return append(l[:4:4], append([][]byte{forged}, l[4:]...)...)
			},
			want: VerifyError{Line: 6, Seq: 4, Reason: "seq mismatch: want 5, got 4"},
		},
		{
			name: "inserted copy of a line",
			tamper: func(l [][]byte) [][]byte {
				return append(l[:4:4], append([][]byte{l[7]}, l[4:]...)...)
			},
			want: VerifyError{Line: 5, Seq: 7, Reason: "seq mismatch: want 4, got 7"},
		},
		{
			name:   "reordered lines",
			tamper: func(l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l },
			want:   VerifyError{Line: 4, Seq: 4, Reason: "seq mismatch: want 3, got 4"},
		},
		{
			name:   "duplicated line",
			tamper: func(l [][]byte) [][]byte { return append(l[:4:4], append([][]byte{l[3]}, l[4:]...)...) },
			want:   VerifyError{Line: 5, Seq: 3, Reason: "seq mismatch: want 4, got 3"},
		},
		{
			name: "truncated mid-line tail",
			tamper: func(l [][]byte) [][]byte {
				l[9] = l[9][:len(l[9])/2]
				return l
			},
			want: VerifyError{Line: 10, Seq: -1, Reason: "torn tail"},
		},
		{
			name: "newline removed between two lines",
			tamper: func(l [][]byte) [][]byte {
				l[3] = bytes.TrimSuffix(l[3], []byte("\n"))
				return l
			},
			want: VerifyError{Line: 4, Seq: 3, Reason: "not valid JSON"},
		},
		{
			name: "first record's prev not zero",
			tamper: func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`"prev":"0`), []byte(`"prev":"1`), 1)
				return l
			},
			want: VerifyError{Line: 1, Seq: 0, Reason: "prev mismatch"},
		},
		{
			name: "CRLF line ending",
			tamper: func(l [][]byte) [][]byte {
				l[2] = append(bytes.TrimSuffix(l[2], []byte("\n")), '\r', '\n')
				return l
			},
			want: VerifyError{Line: 3, Seq: 2, Reason: "after the record's closing }"},
		},
		{
			name: "space after the record",
			tamper: func(l [][]byte) [][]byte {
				l[5] = append(bytes.TrimSuffix(l[5], []byte("\n")), ' ', '\n')
				return l
			},
			want: VerifyError{Line: 6, Seq: 5, Reason: "after the record's closing }"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tamperLog(t, 10, Options{})
			editLines(t, firstSegment(dir), tt.tamper)
			tt.want.Segment = segmentName(0)
			checkVerifyError(t, dir, tt.want)
		})
	}
}

func checkVerifyError(t *testing.T, dir string, want VerifyError) {
	t.Helper()
	_, err := Verify(dir)
	var got *VerifyError
	if !errors.As(err, &got) {
		t.Fatalf("Verify: got %v, want a *VerifyError", err)
	}
	if got.Segment != want.Segment || got.Line != want.Line || got.Seq != want.Seq || !strings.Contains(got.Reason, want.Reason) {
		t.Errorf("got %q\nwant segment %s line %d seq %d reason containing %q", err, want.Segment, want.Line, want.Seq, want.Reason)
	}
}

func TestVerifyAcrossSegments(t *testing.T) {
	opts := Options{SegmentMaxBytes: 600} // about four records per segment
	segs := func(dir string) []string {
		ents, err := os.ReadDir(filepath.Join(dir, segmentsDir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, filepath.Join(dir, segmentsDir, e.Name()))
		}
		return names
	}
	t.Run("untampered", func(t *testing.T) {
		dir := tamperLog(t, 30, opts)
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records != 30 || rep.Segments != len(segs(dir)) || rep.Segments < 5 {
			t.Errorf("got %+v with %d segment files, want 30 records in all of them (>= 5)", rep, len(segs(dir)))
		}
		for _, p := range segs(dir) {
			if fi, _ := os.Stat(p); fi.Size() > 600 {
				t.Errorf("%s is %d bytes, over SegmentMaxBytes", p, fi.Size())
			}
		}
	})
	t.Run("last line of a segment modified", func(t *testing.T) {
		dir := tamperLog(t, 30, opts)
		s := segs(dir)
		editLines(t, s[0], func(l [][]byte) [][]byte {
			l[len(l)-1] = bytes.Replace(l[len(l)-1], []byte(`"decision"`), []byte(`"decisioN"`), 1)
			return l
		})
		next := filepath.Base(s[1])
		first, _ := parseSegmentName(next)
		checkVerifyError(t, dir, VerifyError{Segment: next, Line: 1, Seq: int64(first), Reason: "prev mismatch"})
	})
	t.Run("middle segment removed", func(t *testing.T) {
		dir := tamperLog(t, 30, opts)
		s := segs(dir)
		if err := os.Remove(s[2]); err != nil {
			t.Fatal(err)
		}
		want, _ := parseSegmentName(filepath.Base(s[2]))
		checkVerifyError(t, dir, VerifyError{Segment: filepath.Base(s[3]), Seq: -1, Reason: "segment gap: want a segment starting at seq " + strconv.FormatUint(want, 10)})
	})
	t.Run("first segment removed", func(t *testing.T) {
		dir := tamperLog(t, 30, opts)
		s := segs(dir)
		if err := os.Remove(s[0]); err != nil {
			t.Fatal(err)
		}
		checkVerifyError(t, dir, VerifyError{Segment: filepath.Base(s[1]), Seq: -1, Reason: "want a segment starting at seq 0"})
	})
	t.Run("empty segment in the middle", func(t *testing.T) {
		dir := tamperLog(t, 30, opts)
		s := segs(dir)
		writeFile(t, s[1], nil)
		checkVerifyError(t, dir, VerifyError{Segment: filepath.Base(s[1]), Seq: -1, Reason: "empty segment before the last one"})
	})
	t.Run("misnamed segment file", func(t *testing.T) {
		dir := tamperLog(t, 3, opts)
		writeFile(t, filepath.Join(dir, segmentsDir, "1.log"), nil)
		checkVerifyError(t, dir, VerifyError{Segment: "1.log", Seq: -1, Reason: "not a segment file"})
	})
}

func TestVerifyEmptyLog(t *testing.T) {
	l, dir := openTest(t, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Records: 0, Segments: 1, Head: strings.Repeat("0", 64), Root: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="} // SHA-256("")
	if rep != want {
		t.Errorf("got %+v, want %+v", rep, want)
	}
	if _, err := Verify(t.TempDir()); err == nil {
		t.Error("Verify of a directory with no segments succeeded")
	}
}

func TestVerifyErrorWording(t *testing.T) {
	tests := []struct {
		err  VerifyError
		want string
	}{
		{VerifyError{Segment: "000000.log", Line: 17, Seq: 16, Reason: "prev mismatch: want a, got b"}, "audit: segment 000000.log line 17 (seq 16): prev mismatch: want a, got b"},
		{VerifyError{Segment: "x.log", Line: 3, Seq: -1, Reason: "line is not valid JSON"}, "audit: segment x.log line 3: line is not valid JSON"},
		{VerifyError{Segment: "x.log", Seq: -1, Reason: "segment gap"}, "audit: segment x.log: segment gap"},
		{VerifyError{Segment: "x.log", Line: 5, Seq: 4, Offset: 812, Reason: "prev mismatch"}, "audit: segment x.log at byte 812, line 5 (seq 4): prev mismatch"},
		{VerifyError{Segment: "x.log", Line: 1, Seq: 0, Reason: "prev mismatch"}, "audit: segment x.log at byte 0, line 1 (seq 0): prev mismatch"},
		{VerifyError{Segment: "x.log", Seq: -1, Offset: 1030, Reason: "10 bytes of NUL padding"}, "audit: segment x.log at byte 1030: 10 bytes of NUL padding"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestVerifyErrorNamesOffset: a failure names the segment byte offset of
// the bad line, as docs/audit-format.md says, for a record and for a
// checkpoint, each with the package prefix once.
func TestVerifyErrorNamesOffset(t *testing.T) {
	l, dir := openTest(t, Options{})
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var off int
	editLines(t, firstSegment(dir), func(l [][]byte) [][]byte {
		for _, line := range l[:5] {
			off += len(line)
		}
		l[5] = bytes.Replace(l[5], []byte(`"req-5"`), []byte(`"req-X"`), 1)
		return l
	})
	_, err := Verify(dir)
	want := fmt.Sprintf("audit: segment %s at byte %d, line 6 (seq 5): ", segmentName(0), off)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want it to begin %q", err, want)
	}
}

// TestVerifyCheckpointErrorPrefixedOnce: a stored checkpoint that does not
// verify is named once with the package prefix, not twice.
func TestVerifyCheckpointErrorPrefixedOnce(t *testing.T) {
	l, dir := openTest(t, Options{})
	appendN(t, l, 3)
	s, _ := testSigner(t, "gw-1", 1)
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, other := testSigner(t, "gw-1", 2)
	_, err := VerifyWith(dir, VerifyOptions{Key: other})
	if err == nil || strings.Count(err.Error(), "audit:") != 1 || !strings.Contains(err.Error(), "checkpoint 0 at byte 0: checkpoint:") {
		t.Errorf("got %v, want one audit: prefix and the checkpoint's position", err)
	}
}

// TestVerifyChecksIndex: readers find records through dir/index, so a
// wrong entry fails verify, naming the record; a short index (a crash
// before the writer completed it) does not.
func TestVerifyChecksIndex(t *testing.T) {
	l, dir := openTest(t, Options{})
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, indexFile)
	good := readFile(t, path)
	if len(good) != 10*indexEntry {
		t.Fatalf("index is %d bytes, want %d", len(good), 10*indexEntry)
	}
	bad := bytes.Clone(good)
	binary.BigEndian.PutUint64(bad[4*indexEntry:], binary.BigEndian.Uint64(good[5*indexEntry:]))
	writeFile(t, path, bad)
	checkVerifyError(t, dir, VerifyError{Segment: segmentName(0), Line: 5, Seq: 4, Reason: "index entry 4 (dir/index) says byte "})

	writeFile(t, path, good[:6*indexEntry])
	if rep, err := Verify(dir); err != nil || rep.Records != 10 {
		t.Errorf("short index: got %+v, %v", rep, err)
	}
}
