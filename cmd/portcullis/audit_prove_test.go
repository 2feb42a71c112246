package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
)

// storedCheckpoint writes the log's stored checkpoint i to a file.
func (tl *testLog) storedCheckpoint(t *testing.T, i int) string {
	t.Helper()
	ckpts, err := audit.ReadCheckpoints(tl.dir)
	if err != nil || len(ckpts) <= i {
		t.Fatalf("checkpoint %d: %v", i, err)
	}
	path := filepath.Join(t.TempDir(), "kept.checkpoint")
	if err := os.WriteFile(path, ckpts[i], 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAuditConsistencyTampering runs consistency over logs whose records
// were changed while the derived dir/hashes (and index and checkpoints) were
// left as they were: the records are checked, not only the hashes, so each
// fails and names the segment and the reason.
func TestAuditConsistencyTampering(t *testing.T) {
	lastSegment := func(t *testing.T, tl *testLog) int { paths, _ := tl.segmentLines(t); return len(paths) - 1 }
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, tl *testLog)
		args    func(old, nw string) []string
		wantErr []string
	}{
		{"modify", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"req-`), []byte(`"REQ-`), 1)
				return l
			})
		}, nil, []string{"NOT intact", "segment 000", "(seq 7)", "stored hash"}},
		{"delete", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) })
		}, nil, []string{"NOT intact", "segment 000", "seq mismatch"}},
		{"truncate tail", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, lastSegment(t, tl), func(l [][]byte) [][]byte { return l[:len(l)-5] })
		}, nil, []string{"NOT intact", "segment 000", "has 31 records", "records were removed from the end"}},
		{"truncate tail, sizes", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, lastSegment(t, tl), func(l [][]byte) [][]byte { return l[:len(l)-5] })
			os.Remove(filepath.Join(tl.dir, "checkpoints"))
		}, func(_, _ string) []string { return []string{"20", "34"} }, []string{"NEW size 34 is beyond the log's 31 records"}},
		{"fork", func(t *testing.T, tl *testLog) {
			// Another log's records, a valid chain of their own, in place of
			// these; dir/hashes, index and checkpoints left as they were.
			other := newTestLog(t, 0)
			other.appendRecords(t, 0, 35, "forged-")
			if err := os.RemoveAll(filepath.Join(tl.dir, "segments")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(other.dir, "segments"), filepath.Join(tl.dir, "segments")); err != nil {
				t.Fatal(err)
			}
		}, func(_, _ string) []string { return []string{"5", "34"} }, []string{"NOT intact", "segment 000", "(seq 0)", "stored hash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTestLog(t, 35)
			old, nw := tl.storedCheckpoint(t, 0), tl.keep(t)
			args := []string{old, nw}
			if tc.args != nil {
				args = tc.args(old, nw)
			}
			// The untouched log passes.
			if out, err := runCLI(t, "", append([]string{"audit", "consistency", tl.dir}, args...)...); err != nil {
				t.Fatalf("before tampering: %v\n%s", err, out)
			}
			tc.tamper(t, tl)
			out, err := runCLI(t, "", append([]string{"audit", "consistency", tl.dir}, args...)...)
			if err == nil {
				t.Fatalf("consistency over a tampered log succeeded:\n%s", out)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestAuditProveStaleHashes: prove checks the proved record's own line
// against the checkpoint, so a record changed under an unchanged dir/hashes
// cannot be proved.
func TestAuditProveStaleHashes(t *testing.T) {
	tl := newTestLog(t, 25)
	tl.editSegment(t, 1, func(l [][]byte) [][]byte {
		l[1] = bytes.Replace(l[1], []byte(`"req-`), []byte(`"REQ-`), 1)
		return l
	})
	_, segs := tl.segmentLines(t)
	seq := len(segs[0]) // segment 0 holds len-1 records: this is segment 1's second
	if _, err := runCLI(t, "", "audit", "prove", tl.dir, "--seq", strconv.Itoa(seq)); err == nil || !strings.Contains(err.Error(), "does not match its latest checkpoint") {
		t.Fatalf("prove of a changed record: %v", err)
	}
}

// TestAuditCheckProofTrailingData: a proof file is one JSON object and
// nothing after it but whitespace.
func TestAuditCheckProofTrailingData(t *testing.T) {
	tl := newTestLog(t, 12)
	proof, err := runCLI(t, "", "audit", "prove", tl.dir, "--seq", "4")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin, wantErr string
	}{
		{"as printed", proof, ""},
		{"trailing whitespace", proof + "\n \t\r\n", ""},
		{"trailing garbage", proof + "garbage", "data after the proof"},
		{"a second object", proof + "{}", "data after the proof"},
		{"a second proof", proof + proof, "data after the proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, tc.stdin, "audit", "check-proof", "-", "--key", tl.vkey)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error %q", err, tc.wantErr)
			}
		})
	}
}
