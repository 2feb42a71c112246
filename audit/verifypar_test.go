package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyMatchesOnePass damages a log of several chunks in the ways
// that matter to the parallel verifier (bad lines far from the start, at
// chunk boundaries, overlong and torn lines, stored hashes) and holds its
// report and first error to the one-pass reference, verifySeq.
func TestVerifyMatchesOnePass(t *testing.T) {
	defer func(n int) { verifyChunkBytes = n }(verifyChunkBytes)
	verifyChunkBytes = 32 << 10
	l, dir := openTest(t, Options{SegmentMaxBytes: 250 << 10})
	ev := benchEvent()
	for range 600 { // ~430 KB: two segments, 14 chunks
		if _, err := l.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) != 2 {
		t.Fatalf("segments: %v, %v; want 2", segs, err)
	}
	seg0 := readFile(t, segs[0].path)
	seg1 := readFile(t, segs[1].path)
	hashes := readFile(t, filepath.Join(dir, hashesFile))
	nl := func(b []byte, k int) int { // offset just after the k-th newline
		off := 0
		for range k {
			off += bytes.IndexByte(b[off:], '\n') + 1
		}
		return off
	}
	line200 := nl(seg0, 199)                                           // beyond the first chunks
	at := line200 + bytes.Index(seg0[line200:], []byte(`"req-1"`)) + 1 // the r of req-1
	tests := []struct {
		name          string
		seg0, seg1    []byte
		hashes        []byte
		wantErrSubstr string
	}{
		{"intact", seg0, seg1, hashes, ""},
		{"no stored hashes", seg0, seg1, nil, ""},
		{"byte changed in chunk 2", flip(seg0, at, 'x'), seg1, nil, "prev mismatch"},
		{"byte changed, stored hash names it", flip(seg0, at, 'x'), seg1, hashes, "stored hash"},
		{"JSON broken in chunk 2", flip(seg0, at-1, 'x'), seg1, nil, "not valid JSON"},
		{"newline at a chunk boundary", flip(seg0, verifyChunkBytes-1, '\n'), seg1, nil, "00000000000000000000.log at byte"},
		{"newline just after a chunk boundary", flip(seg0, verifyChunkBytes, '\n'), seg1, nil, "00000000000000000000.log at byte"},
		{"record removed in segment 2", without(seg1, nl(seg1, 100), nl(seg1, 101)), nil, nil, "seq mismatch"},
		{"torn tail", seg0, seg1[:len(seg1)-10], hashes, "torn tail"},
		{"overlong line", seg0, append(bytes.Clone(seg1), bytes.Repeat([]byte("a"), MaxLineBytes+5)...), nil, "longer than"},
		{"overlong terminated line", seg0, append(append(bytes.Clone(seg1), bytes.Repeat([]byte("a"), MaxLineBytes+1)...), '\n'), nil, "longer than"},
		{"limit-sized unterminated tail", seg0, append(bytes.Clone(seg1), bytes.Repeat([]byte("a"), MaxLineBytes+1)...), nil, "torn tail"},
		{"empty first segment", nil, seg1, nil, "empty segment before the last one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.Mkdir(filepath.Join(d, segmentsDir), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(d, segmentsDir, segs[0].name), tc.seg0)
			if tc.seg1 != nil {
				writeFile(t, filepath.Join(d, segmentsDir, segs[1].name), tc.seg1)
			}
			if tc.hashes != nil {
				writeFile(t, filepath.Join(d, hashesFile), tc.hashes)
			}
			rep, err := Verify(d)
			want, wantErr := verifySeq(d, nil)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || rep != want {
				t.Fatalf("got %+v, %v\nwant %+v, %v", rep, err, want, wantErr)
			}
			if tc.wantErrSubstr == "" && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.wantErrSubstr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr)) {
				t.Fatalf("Verify: got %v, want an error containing %q", err, tc.wantErrSubstr)
			}
		})
	}
}

func flip(b []byte, i int, c byte) []byte {
	b = bytes.Clone(b)
	b[i] = c
	return b
}

func without(b []byte, from, to int) []byte {
	return append(bytes.Clone(b[:from]), b[to:]...)
}
