package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
)

// runCLI runs the portcullis command tree as main would; a non-nil error is
// exit status 1.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// testLog is an audit log of n records, one a minute from 2026-03-14T00:00Z,
// with a checkpoint signed after every 10 records and at the end.
type testLog struct {
	dir, keyFile, vkey string
	signer             note.Signer
	start              time.Time
}

func newTestLog(t *testing.T, n int) *testLog {
	t.Helper()
	base := t.TempDir()
	tl := &testLog{dir: filepath.Join(base, "audit"), keyFile: filepath.Join(base, "signing.key"),
		start: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)}
	var err error
	if tl.vkey, err = audit.GenerateKeyFile(tl.keyFile, "gw-1.example/audit"); err != nil {
		t.Fatal(err)
	}
	if tl.signer, _, err = audit.LoadKeyFile(tl.keyFile); err != nil {
		t.Fatal(err)
	}
	tl.appendRecords(t, 0, n, "req-")
	return tl
}

// appendRecords opens the log and appends records named prefix+i for i in
// [from, to), signing a checkpoint every 10 records and at the end.
func (tl *testLog) appendRecords(t *testing.T, from, to int, prefix string) {
	t.Helper()
	var mu sync.Mutex
	i := from
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return tl.start.Add(time.Duration(i) * time.Minute)
	}
	l, err := audit.Open(tl.dir, audit.Options{NoSync: true, Clock: clock, SegmentMaxBytes: 1200})
	if err != nil {
		t.Fatal(err)
	}
	for ; i < to; i++ {
		if _, err := l.Append(context.Background(), &audit.Event{Type: "decision", RequestID: prefix + strconv.Itoa(i), Action: "llm.invoke"}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%10 == 0 {
			if _, err := l.SignCheckpoint(tl.signer); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := l.SignCheckpoint(tl.signer); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// latest writes the newest stored checkpoint to a file, as an auditor keeps it.
func (tl *testLog) keep(t *testing.T) string {
	t.Helper()
	ckpts, err := audit.ReadCheckpoints(tl.dir)
	if err != nil || len(ckpts) == 0 {
		t.Fatalf("no checkpoints: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kept.checkpoint")
	if err := os.WriteFile(path, ckpts[len(ckpts)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (tl *testLog) segmentLines(t *testing.T) (paths []string, lines [][][]byte) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(tl.dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(tl.dir, "segments", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		lines = append(lines, bytes.SplitAfter(b, []byte("\n")))
	}
	return paths, lines
}

// editSegment rewrites segment i's lines with f.
func (tl *testLog) editSegment(t *testing.T, i int, f func(lines [][]byte) [][]byte) {
	t.Helper()
	paths, lines := tl.segmentLines(t)
	if err := os.WriteFile(paths[i], bytes.Join(f(lines[i]), nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dropEvidence removes what an attacker with disk access would remove or
// rebuild: the gateway's own checkpoints and derived hashes.
func (tl *testLog) dropEvidence(t *testing.T) {
	t.Helper()
	for _, f := range []string{"checkpoints", "hashes", "index"} {
		if err := os.Remove(filepath.Join(tl.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	tl := newTestLog(t, 25)
	kept := tl.keep(t)
	_, other, _ := note.GenerateKey(nil, "gw-1.example/audit")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"plain", []string{tl.dir}, "", "intact: 25 records"},
		{"stored checkpoints unsigned", []string{tl.dir}, "", "signatures NOT checked"},
		{"with key", []string{tl.dir, "--key", tl.vkey}, "", "3 stored checkpoints match the log, signatures verified; latest: size 25"},
		{"kept checkpoint", []string{tl.dir, "--checkpoint", kept, "--key", tl.vkey}, "", "extends the checkpoint"},
		{"wrong key", []string{tl.dir, "--key", other}, "checkpoint 0", ""},
		{"kept checkpoint, wrong key", []string{tl.dir, "--checkpoint", kept, "--key", other}, "no verifiable signatures", ""},
		{"kept checkpoint, no key", []string{tl.dir, "--checkpoint", kept}, "needs --key", ""},
		{"bad key", []string{tl.dir, "--key", "nonsense"}, "neither a verifier key nor a readable file", ""},
		{"no such dir", []string{filepath.Join(tl.dir, "nope")}, "NOT intact", ""},
		{"no args", nil, "accepts 1 arg", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"audit", "verify"}, tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got err %v\n%s", err, out)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("got output %q, want it to contain %q", out, tc.wantOut)
			}
		})
	}
}

// TestAuditVerifyTampering runs the tamper cases through
// `audit verify --checkpoint`, after the attacker also removed the gateway's
// stored checkpoints and derived hashes: the kept checkpoint alone catches
// each, and the error names the segment and record.
func TestAuditVerifyTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, tl *testLog)
		wantErr string
	}{
		{"modify", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"req-`), []byte(`"REQ-`), 1)
				return l
			})
		}, "prev mismatch"},
		{"delete", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) })
		}, "seq mismatch"},
		{"insert", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte { return append(l[:2], append([][]byte{l[1]}, l[2:]...)...) })
		}, "seq mismatch"},
		{"reorder", func(t *testing.T, tl *testLog) {
			tl.editSegment(t, 1, func(l [][]byte) [][]byte { l[0], l[1] = l[1], l[0]; return l })
		}, "seq mismatch"},
		{"truncate tail", func(t *testing.T, tl *testLog) {
			paths, _ := tl.segmentLines(t)
			tl.editSegment(t, len(paths)-1, func(l [][]byte) [][]byte { return l[:len(l)-2] })
		}, "records were removed from the end"},
		{"fork", func(t *testing.T, tl *testLog) {
			paths, _ := tl.segmentLines(t)
			tl.editSegment(t, len(paths)-1, func(l [][]byte) [][]byte { return l[:len(l)-2] })
			tl.dropEvidence(t)
			// Re-append as many records with other contents through the real
			// writer: a valid chain and tree, a different log.
			rep, err := audit.Verify(tl.dir)
			if err != nil {
				t.Fatal(err)
			}
			tl.appendRecords(t, int(rep.Records), 40, "forged-")
			for _, f := range []string{"checkpoints", "hashes", "index"} {
				os.Remove(filepath.Join(tl.dir, f))
			}
			if _, err := audit.Verify(tl.dir); err != nil {
				t.Fatalf("the forged log must pass a plain verify: %v", err)
			}
		}, "the log was rewritten"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTestLog(t, 25)
			kept := tl.keep(t)
			tc.tamper(t, tl)
			if tc.name != "fork" {
				tl.dropEvidence(t)
			}
			_, err := runCLI(t, "", "audit", "verify", tl.dir, "--checkpoint", kept, "--key", tl.vkey)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "segment 000") {
				t.Fatalf("got %v, want an error naming the segment and %q", err, tc.wantErr)
			}
		})
	}
}

func TestAuditProveAndCheckProof(t *testing.T) {
	tl := newTestLog(t, 25)
	proofFile := func(t *testing.T, seq int) string {
		t.Helper()
		out, err := runCLI(t, "", "audit", "prove", tl.dir, "--seq", strconv.Itoa(seq))
		if err != nil {
			t.Fatalf("prove %d: %v", seq, err)
		}
		var p audit.Proof
		if err := json.Unmarshal([]byte(out), &p); err != nil || p.Seq != uint64(seq) || p.TreeSize != 25 || !strings.Contains(p.Record, `"req-`+strconv.Itoa(seq)+`"`) {
			t.Fatalf("prove %d printed %s (%v)", seq, out, err)
		}
		path := filepath.Join(t.TempDir(), "proof.json")
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, seq := range []int{0, 12, 24} { // first, middle, last
		path := proofFile(t, seq)
		out, err := runCLI(t, "", "audit", "check-proof", path, "--key", tl.vkey)
		if err != nil || !strings.Contains(out, "proof OK: record "+strconv.Itoa(seq)+" is in the log gw-1.example/audit of 25 records") {
			t.Errorf("check-proof %d: %q, %v", seq, out, err)
		}
	}
	good := proofFile(t, 3)
	b, _ := os.ReadFile(good)
	altered := filepath.Join(t.TempDir(), "altered.json")
	os.WriteFile(altered, bytes.Replace(b, []byte(`req-3`), []byte(`req-9`), 1), 0o600)
	_, other, _ := note.GenerateKey(nil, "gw-1.example/audit")
	for _, tc := range []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"stdin", string(b), []string{"check-proof", "-", "--key", tl.vkey}, ""},
		{"wrong key", "", []string{"check-proof", good, "--key", other}, "NOT valid"},
		{"altered record", "", []string{"check-proof", altered, "--key", tl.vkey}, "NOT valid"},
		{"not json", "{", []string{"check-proof", "-", "--key", tl.vkey}, "unexpected EOF"},
		{"unknown field", `{"seq":1,"extra":2}`, []string{"check-proof", "-", "--key", tl.vkey}, "unknown field"},
		{"no key", "", []string{"check-proof", good}, "--key is required"},
		{"prove without --seq", "", []string{"prove", tl.dir}, "--seq is required"},
		{"prove beyond the checkpoint", "", []string{"prove", tl.dir, "--seq", "25"}, "not covered by the latest checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, tc.stdin, append([]string{"audit"}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error %q", err, tc.wantErr)
			}
		})
	}
	// No checkpoint at all.
	os.Remove(filepath.Join(tl.dir, "checkpoints"))
	if _, err := runCLI(t, "", "audit", "prove", tl.dir, "--seq", "1"); err == nil || !strings.Contains(err.Error(), "no signed checkpoint") {
		t.Errorf("prove without checkpoints: %v", err)
	}
}

func TestAuditConsistency(t *testing.T) {
	tl := newTestLog(t, 12)
	old := tl.keep(t)
	tl.appendRecords(t, 12, 31, "req-")
	nw := tl.keep(t)
	out, err := runCLI(t, "", "audit", "consistency", tl.dir, old, nw, "--key", tl.vkey)
	if err != nil {
		t.Fatal(err)
	}
	var got consistencyOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Old.Size != 12 || got.New.Size != 31 || len(got.Proof) == 0 {
		t.Fatalf("consistency printed %s (%v)", out, err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"sizes", []string{"5", "31"}, ""},
		{"size and file", []string{"0", nw}, ""},
		{"reversed", []string{nw, old}, "give the older one first"},
		{"beyond the log", []string{"5", "32"}, "beyond the log"},
		{"wrong key", []string{old, nw, "--key", "gw-1.example/audit+00000000+AQ=="}, "--key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, "", append([]string{"audit", "consistency", tl.dir}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error %q", err, tc.wantErr)
			}
		})
	}
	// A rewritten log no longer matches the old checkpoint.
	tl.editSegment(t, 0, func(l [][]byte) [][]byte {
		l[0] = bytes.Replace(l[0], []byte(`"req-0"`), []byte(`"req-X"`), 1)
		return l
	})
	tl.dropEvidence(t)
	tl.appendRecords(t, 31, 31, "req-") // reopen: rebuilds hashes from the rewritten records
	if _, err := runCLI(t, "", "audit", "consistency", tl.dir, old, nw); err == nil || !strings.Contains(err.Error(), "NOT intact") {
		t.Errorf("consistency over a rewritten log: %v", err)
	}
}

func TestAuditExport(t *testing.T) {
	tl := newTestLog(t, 30)
	_, segs := tl.segmentLines(t)
	var all [][]byte
	for _, s := range segs {
		for _, l := range s {
			if len(l) > 0 {
				all = append(all, l)
			}
		}
	}
	at := func(m int) string { return tl.start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	for _, tc := range []struct {
		name     string
		args     []string
		from, to int // expected records [from, to)
		wantErr  string
	}{
		{"all", nil, 0, 30, ""},
		{"since", []string{"--since", at(25)}, 25, 30, ""},
		{"until", []string{"--until", at(3)}, 0, 3, ""},
		{"window", []string{"--since", at(10), "--until", at(20)}, 10, 20, ""},
		{"empty window", []string{"--since", at(40)}, 0, 0, ""},
		{"bad time", []string{"--since", "yesterday"}, 0, 0, "--since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"audit", "export", tl.dir}, tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := string(bytes.Join(all[tc.from:tc.to], nil)); out != want {
				t.Errorf("got\n%s\nwant (records unchanged)\n%s", out, want)
			}
		})
	}
	tl.editSegment(t, 1, func(l [][]byte) [][]byte { l[0] = []byte("not a record\n"); return l })
	if _, err := runCLI(t, "", "audit", "export", tl.dir); err == nil || !strings.Contains(err.Error(), "segment 0") {
		t.Errorf("export of a damaged log: %v", err)
	}
}

func TestAuditKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	out, err := runCLI(t, "", "audit", "key", "--key-file", path, "--generate", "--origin", "gw-9.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(out)
	if _, err := note.NewVerifier(vkey); err != nil || !strings.HasPrefix(vkey, "gw-9.example/audit+") {
		t.Fatalf("printed %q: %v", out, err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{"print", []string{"--key-file", path}, vkey + "\n", ""},
		{"no file flag", nil, "", "--key-file is required"},
		{"missing file", []string{"--key-file", filepath.Join(dir, "nope")}, "", "no such file"},
		{"generate over existing", []string{"--key-file", path, "--generate", "--origin", "x"}, "", "exists"},
		{"generate without origin", []string{"--key-file", filepath.Join(dir, "k2"), "--generate"}, "", "needs --origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"audit", "key"}, tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.wantOut {
				t.Fatalf("got %q, %v; want %q", out, err, tc.wantOut)
			}
		})
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Error("the signing key was printed")
	}
}
