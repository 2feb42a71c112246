package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRecoversTornTail(t *testing.T) {
	tests := []struct {
		name string
		torn string // appended to a clean 5-record segment
	}{
		{"partial line", `{"seq":5,"time":"2026-03-14T15:09:26.54Z","prev":"ab`},
		{"zeros, then part of a line", "\x00\x00\x00\x00\x00\x00{\"se"},
		{"complete line, bad JSON", `{"seq":5,"time":"2026-03-14T15:09:26.54Z","pr` + "\n"},
		{"zeroed lines then partial", "\x00\x00\n\x00\x00\n{\"se"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := openTest(t, Options{})
			appendN(t, l, 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			seg := firstSegment(dir)
			clean := readFile(t, seg)
			writeFile(t, seg, append(append([]byte(nil), clean...), tt.torn...))
			if _, err := Verify(dir); err == nil {
				t.Fatal("Verify accepts a torn tail")
			}

			l, err := Open(dir, Options{NoSync: true, Clock: stepClock(0)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := l.Size(); got != 6 {
				t.Errorf("Size after recovery: got %d, want 6 (5 records + recovery)", got)
			}
			appendN(t, l, 2)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(dir)
			if err != nil {
				t.Fatalf("Verify after recovery: %v", err)
			}
			if rep.Records != 8 {
				t.Errorf("records: got %d, want 8", rep.Records)
			}
			data := readFile(t, seg)
			if !bytes.HasPrefix(data, clean) {
				t.Fatal("recovery changed records before the torn tail")
			}
			rec, err := ParseRecord(data[len(clean) : len(clean)+bytes.IndexByte(data[len(clean):], '\n')])
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(tt.torn))
			d := rec.Event.Detail
			if rec.Seq != 5 || rec.Event.Type != "recovery" ||
				d["cut_bytes"] != float64(len(tt.torn)) || d["cut_sha256"] != hex.EncodeToString(sum[:]) ||
				d["offset"] != float64(len(clean)) || d["segment"] != segmentName(0) {
				t.Errorf("recovery record: got seq %d %+v, want seq 5 type recovery cut_bytes %d cut_sha256 %x offset %d",
					rec.Seq, rec.Event, len(tt.torn), sum, len(clean))
			}
			saved := readFile(t, filepath.Join(dir, d["saved_as"].(string)))
			if string(saved) != tt.torn {
				t.Errorf("saved torn bytes: got %q, want %q", saved, tt.torn)
			}
		})
	}
}

func TestOpenRecoversEmptyLastSegment(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 400})
	appendN(t, l, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash right after rotation leaves an empty newest segment; a crash
	// during its first write leaves only a torn line in it.
	writeFile(t, filepath.Join(dir, segmentsDir, segmentName(7)), []byte(`{"seq":7,"ti`))
	l, err := Open(dir, Options{NoSync: true, SegmentMaxBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 9 {
		t.Errorf("records: got %d, want 9", rep.Records)
	}
}

func TestOpenRefusesCorruption(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(lines [][]byte) [][]byte
		want   string
	}{
		{
			name: "modified record before the tail",
			tamper: func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte("req-1"), []byte("req-9"), 1)
				return l
			},
			want: "line 3 (seq 2): prev mismatch",
		},
		{
			name:   "removed record",
			tamper: func(l [][]byte) [][]byte { return append(l[:1:1], l[2:]...) },
			want:   "line 2 (seq 2): seq mismatch: want 1, got 2",
		},
		{
			name: "bad line followed by a good one",
			tamper: func(l [][]byte) [][]byte {
				l[2] = []byte("garbage\n")
				return l
			},
			want: "line 3: line does not start with {\"seq\" and a colon, yet a record follows at line 4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := openTest(t, Options{})
			appendN(t, l, 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			editLines(t, firstSegment(dir), tt.tamper)
			before := readFile(t, firstSegment(dir))
			_, err := Open(dir, Options{NoSync: true})
			var verr *VerifyError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &verr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: got %v, want ErrCorrupt and a VerifyError containing %q", err, tt.want)
			}
			if after := readFile(t, firstSegment(dir)); !bytes.Equal(before, after) {
				t.Error("Open changed a corrupt log")
			}
		})
	}
}

func TestOpenIsExclusive(t *testing.T) {
	_, dir := openTest(t, Options{})
	if _, err := Open(dir, Options{NoSync: true}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: got %v, want an in-use error", err)
	}
}

func TestOpenContinuesChain(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 500})
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		l, err := Open(dir, Options{NoSync: true, SegmentMaxBytes: 500})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := l.Size(), uint64(10+5*round); got != want {
			t.Errorf("round %d: Size got %d, want %d", round, got, want)
		}
		appendN(t, l, 5)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 25 {
		t.Errorf("records: got %d, want 25", rep.Records)
	}
	if _, err := os.Stat(filepath.Join(dir, tornDir)); !errors.Is(err, os.ErrNotExist) {
		t.Error("clean reopen created a torn/ directory")
	}
}
