package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// signedLog writes n records to a fresh log, signs a checkpoint of all of
// them, closes the log and returns its directory, segment path and
// checkpoint log contents.
func signedLog(t *testing.T, n int) (dir, seg string, ckpts []byte) {
	t.Helper()
	l, dir := openTest(t, Options{})
	s, _ := testSigner(t, "gw-1", 1)
	appendN(t, l, n)
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, firstSegment(dir), readFile(t, filepath.Join(dir, checkpointsFile))
}

// rechain rewrites the prev of every line so the chain is valid again, as
// someone rewriting a record and rebuilding the hashes would.
func rechain(t *testing.T, lines [][]byte) [][]byte {
	t.Helper()
	var prev Hash
	out := make([][]byte, len(lines))
	for i, ln := range lines {
		line := bytes.TrimSuffix(ln, []byte("\n"))
		h, err := parseHeader(line)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		nl := appendLine(nil, h.seq, h.time, &prev, line[h.body:])
		prev = HashLine(nl)
		out[i] = append(nl, '\n')
	}
	return out
}

// TestOpenRefusesToCutSignedRecords: damage or loss of records that a
// stored checkpoint covers makes Open refuse the log with ErrCorrupt,
// naming where and why, and leave every file as it was.
func TestOpenRefusesToCutSignedRecords(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, lines [][]byte) [][]byte
		want   []string // substrings of the error
	}{
		{
			name: "last signed record lost its closing brace",
			tamper: func(_ *testing.T, l [][]byte) [][]byte {
				last := l[len(l)-1]
				l[len(l)-1] = append(bytes.Clone(last[:len(last)-2]), '\n')
				return l
			},
			want: []string{"segment " + segmentName(0), "line 8", "seq 7", "checkpoint of size 8 covers seq 7", "not a torn tail"},
		},
		{
			name: "signed record overwritten by zeros",
			tamper: func(_ *testing.T, l [][]byte) [][]byte {
				l[6] = append(make([]byte, len(l[6])-1), '\n')
				return l
			},
			want: []string{"line 7", "seq 6", "checkpoint of size 8 covers seq 6"},
		},
		{
			name:   "truncated below the checkpoint",
			tamper: func(_ *testing.T, l [][]byte) [][]byte { return l[:3] },
			want:   []string{"holds 3 records but checkpoint 8 was signed for 8", "truncated after checkpoint 8 was signed", "operator must investigate"},
		},
		{
			name:   "everything removed",
			tamper: func(_ *testing.T, l [][]byte) [][]byte { return nil },
			want:   []string{"holds 0 records but checkpoint 8"},
		},
		{
			name: "record rewritten, chain rebuilt",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[3] = bytes.Replace(l[3], []byte(`"req-3"`), []byte(`"req-X"`), 1)
				return rechain(t, l)
			},
			want: []string{"tree hash at size 8", "rewritten after checkpoint 8 was signed", "operator must investigate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, seg, ckpts := signedLog(t, 8)
			editLines(t, seg, func(l [][]byte) [][]byte { return tt.tamper(t, l) })
			if tt.name == "record rewritten, chain rebuilt" {
				os.Remove(filepath.Join(dir, hashesFile))
				os.Remove(filepath.Join(dir, indexFile))
			}
			before := readFile(t, seg)

			l, err := Open(dir, Options{NoSync: true})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a log that lost or changed signed records")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open: got %v, want ErrCorrupt", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not say %q", err, w)
				}
			}
			if got := readFile(t, seg); !bytes.Equal(got, before) {
				t.Errorf("Open changed the segment:\ngot  %q\nwant %q", got, before)
			}
			if got := readFile(t, filepath.Join(dir, checkpointsFile)); !bytes.Equal(got, ckpts) {
				t.Errorf("Open changed the checkpoint log")
			}
			if _, err := os.Stat(filepath.Join(dir, tornDir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Open saved a torn tail: %v", err)
			}
		})
	}
}

// TestOpenCutsTornTailBeyondCheckpoint: records written after the latest
// checkpoint are still a torn tail when damaged, and recovery signs on.
func TestOpenCutsTornTailBeyondCheckpoint(t *testing.T) {
	l, dir := openTest(t, Options{})
	s, v := testSigner(t, "gw-1", 1)
	appendN(t, l, 5)
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2)
	l.Close()
	editLines(t, firstSegment(dir), func(l [][]byte) [][]byte {
		last := l[len(l)-1]
		l[len(l)-1] = append(bytes.Clone(last[:len(last)-2]), '\n') // seq 6: unsigned
		return l
	})
	l, err := Open(dir, Options{NoSync: true, Verifier: v})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, want := l.Size(), uint64(7); got != want { // 6 records + recovery
		t.Errorf("Size after recovery: got %d, want %d", got, want)
	}
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep, err := VerifyWith(dir, VerifyOptions{Key: v})
	if err != nil || rep.Checkpoints != 2 || rep.Latest.Size != 7 {
		t.Fatalf("VerifyWith after recovery: %+v, %v", rep, err)
	}
}

// TestOpenChecksCheckpointKey: with Options.Verifier, a latest checkpoint
// signed by another key is refused (ErrKeyMismatch); the right key opens.
func TestOpenChecksCheckpointKey(t *testing.T) {
	dir, _, _ := signedLog(t, 3)
	tests := []struct {
		name string
		seed byte
		key  string
		ok   bool
	}{
		{"same key", 1, "gw-1", true},
		{"new key, same name", 2, "gw-1", false},
		{"other name", 1, "gw-2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v := testSigner(t, tt.key, tt.seed)
			l, err := Open(dir, Options{NoSync: true, Verifier: v})
			if tt.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				l.Close()
				return
			}
			if err == nil {
				l.Close()
				t.Fatal("Open accepted checkpoints signed by another key")
			}
			var ke *KeyError
			if !errors.Is(err, ErrKeyMismatch) || !errors.As(err, &ke) || ke.Size != 3 {
				t.Errorf("Open: got %v, want a KeyError for size 3", err)
			}
		})
	}
}
