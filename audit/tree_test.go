package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// refRoot is an independent RFC 6962 Merkle Tree Hash (section 2.1), written
// from the RFC, not from sumdb/tlog.
func refRoot(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := refRoot(leaves[:k]), refRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// segmentLines returns every record line of dir, newline excluded.
func segmentLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, s := range segs {
		for _, l := range bytes.SplitAfter(readFile(t, s.path), []byte("\n")) {
			if len(l) > 0 {
				lines = append(lines, bytes.TrimSuffix(l, []byte("\n")))
			}
		}
	}
	return lines
}

// testSigner returns a deterministic Ed25519 note signer and its verifier.
func testSigner(t testing.TB, name string, seed byte) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestTreeMatchesReference(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 1000, MaxBatch: 3})
	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen twice so the stored hashes go through rebuild and rotation.
	for range 2 {
		var err error
		if l, err = Open(dir, Options{NoSync: true, SegmentMaxBytes: 1000, MaxBatch: 3}); err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 16)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(dir, Options{NoSync: true, SegmentMaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lines := segmentLines(t, dir)
	if len(lines) != 37 {
		t.Fatalf("got %d lines, want 37", len(lines))
	}
	for n := range uint64(len(lines) + 1) {
		got, err := l.TreeHash(n)
		if err != nil {
			t.Fatal(err)
		}
		if want := refRoot(lines[:n]); got != tlog.Hash(want) {
			t.Errorf("tree of %d records: got %x, want %x", n, got, want)
		}
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := refRoot(lines)
	if rep.Root != base64.StdEncoding.EncodeToString(want[:]) || rep.Stored != rep.Records {
		t.Errorf("Verify: got root %s stored %d/%d, want root %x and all stored", rep.Root, rep.Stored, rep.Records, want)
	}
}

func TestStoredHashesRebuiltAndChecked(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 800})
	appendN(t, l, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	hashes := filepath.Join(dir, hashesFile)
	good := readFile(t, hashes)

	// A flipped bit in the stored hashes is reported.
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	writeFile(t, hashes, bad)
	if _, err := Verify(dir); err == nil || !strings.Contains(err.Error(), "stored hash") {
		t.Errorf("Verify with a corrupted hash file: got %v, want a stored hash error", err)
	}

	// A missing or short file is rebuilt by Open (it is derived data).
	for _, content := range [][]byte{nil, good[:len(good)/3]} {
		writeFile(t, hashes, content)
		l, err := Open(dir, Options{NoSync: true, SegmentMaxBytes: 800})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, hashes); !bytes.Equal(got, good) {
			t.Errorf("rebuilt hash file (from %d bytes) differs", len(content))
		}
	}
}

func TestCheckpointGolden(t *testing.T) {
	l, _ := openTest(t, Options{Clock: stepClock(1500000)})
	for _, ev := range goldenEvents() {
		if _, err := l.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	s, v := testSigner(t, "portcullis.example/gw-1", 7)
	got, err := l.Checkpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "checkpoint.golden")
	if *update {
		writeFile(t, golden, got)
	}
	if want := readFile(t, golden); !bytes.Equal(got, want) {
		t.Errorf("checkpoint differs from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	c, err := OpenCheckpoint(got, v)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(readFile(t, filepath.Join("testdata", "chain.golden")), []byte("\n")), []byte("\n"))
	if want := refRoot(lines); c.Size != 3 || c.Root != tlog.Hash(want) || c.Origin != "portcullis.example/gw-1" {
		t.Errorf("got %+v, want size 3 root %x", c, want)
	}
}

func TestCheckpointRefusals(t *testing.T) {
	l, _ := openTest(t, Options{})
	appendN(t, l, 4)
	s, v := testSigner(t, "gw-1", 1)
	_, otherKey := testSigner(t, "gw-1", 2)
	_, otherName := testSigner(t, "gw-2", 1)
	msg, err := l.Checkpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  []byte
		v    note.Verifier
	}{
		{"wrong key", msg, otherKey},
		{"wrong key name", msg, otherName},
		{"size changed", bytes.Replace(msg, []byte("\n4\n"), []byte("\n5\n"), 1), v},
		{"signature changed", append(bytes.Clone(msg[:len(msg)-3]), 'A', 'A', '\n'), v},
		{"unsigned", msg[:bytes.Index(msg, []byte("\n\n"))+2], v},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenCheckpoint(tt.msg, tt.v); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := OpenCheckpoint(msg, v); err != nil {
		t.Errorf("good checkpoint refused: %v", err)
	}
}

func TestProveAndCheck(t *testing.T) {
	l, _ := openTest(t, Options{SegmentMaxBytes: 2000})
	appendN(t, l, 50)
	s, v := testSigner(t, "gw-1", 1)
	for _, seq := range []uint64{0, 1, 25, 48, 49} {
		p, err := l.ProveSigned(seq, s)
		if err != nil {
			t.Fatal(err)
		}
		// Round-trip through the documented JSON.
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q Proof
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckProof(&q, v); err != nil {
			t.Errorf("seq %d: %v", seq, err)
		}
		if r, _ := ParseRecord([]byte(q.Record)); r == nil || r.Seq != seq {
			t.Errorf("seq %d: proof carries the wrong record %q", seq, q.Record)
		}
		// A changed record, a different seq or another key fail.
		bad := q
		bad.Record = strings.Replace(q.Record, `"req-`, `"REQ-`, 1)
		if _, err := CheckProof(&bad, v); err == nil {
			t.Errorf("seq %d: altered record accepted", seq)
		}
		bad = q
		bad.Inclusion = append([]tlog.Hash(nil), q.Inclusion...)
		bad.Inclusion[0][0] ^= 1
		if _, err := CheckProof(&bad, v); err == nil {
			t.Errorf("seq %d: altered proof accepted", seq)
		}
		_, other := testSigner(t, "gw-1", 9)
		if _, err := CheckProof(&q, other); err == nil {
			t.Errorf("seq %d: wrong key accepted", seq)
		}
	}
	if _, err := l.Prove(50, 50); err == nil {
		t.Error("proof of a record beyond the tree accepted")
	}
}

func TestConsistency(t *testing.T) {
	l, dir := openTest(t, Options{})
	s, v := testSigner(t, "gw-1", 1)
	appendN(t, l, 7)
	oldMsg, _ := l.Checkpoint(s)
	appendN(t, l, 13)
	newMsg, _ := l.Checkpoint(s)
	older, err := OpenCheckpoint(oldMsg, v)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := OpenCheckpoint(newMsg, v)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.ProveConsistency(older.Size, newer.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(p, older, newer); err != nil {
		t.Errorf("consistent checkpoints: %v", err)
	}
	// A fork: same size as newer, different records after the old tree.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fork := filepath.Join(t.TempDir(), "fork")
	lf, err := Open(fork, Options{NoSync: true, Clock: stepClock(1e6)})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, lf, 7)
	for range 13 {
		if _, err := lf.Append(context.Background(), &Event{Type: "forged"}); err != nil {
			t.Fatal(err)
		}
	}
	forkMsg, _ := lf.Checkpoint(s)
	forked, _ := OpenCheckpoint(forkMsg, v)
	fp, err := lf.ProveConsistency(older.Size, forked.Size)
	if err != nil {
		t.Fatal(err)
	}
	if older.Root != refRootOf(t, dir, 7) {
		t.Fatal("old checkpoint root is not the reference root")
	}
	// The fork shares the first 7 records, so it extends the old checkpoint;
	// two checkpoints of one size with different roots are the evidence.
	if err := CheckConsistency(fp, older, forked); err != nil {
		t.Errorf("fork vs older: %v", err)
	}
	if forked.Size != newer.Size || forked.Root == newer.Root {
		t.Fatalf("fork: got size %d root %x, want size %d and a root other than %x", forked.Size, forked.Root, newer.Size, newer.Root)
	}
	if err := CheckConsistency(fp, older, newer); err == nil {
		t.Error("a proof from a forked log verified against the real newer checkpoint")
	}
	lf.Close()
}

func refRootOf(t *testing.T, dir string, n int) tlog.Hash {
	return tlog.Hash(refRoot(segmentLines(t, dir)[:n]))
}

func TestVerifyWithCheckpoint(t *testing.T) {
	s, v := testSigner(t, "gw-1", 1)
	setup := func(t *testing.T) (string, []byte) {
		l, dir := openTest(t, Options{SegmentMaxBytes: 900})
		appendN(t, l, 12)
		msg, err := l.Checkpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return dir, msg
	}
	t.Run("extension passes", func(t *testing.T) {
		dir, msg := setup(t)
		rep, err := VerifyWithCheckpoint(dir, msg, v)
		if err != nil || rep.Records != 15 {
			t.Fatalf("got %+v, %v", rep, err)
		}
	})
	t.Run("tail truncated", func(t *testing.T) {
		dir, msg := setup(t)
		truncateTo(t, dir, 10)
		if _, err := Verify(dir); err != nil {
			t.Fatalf("plain Verify should not see a clean truncation: %v", err)
		}
		_, err := VerifyWithCheckpoint(dir, msg, v)
		if err == nil || !strings.Contains(err.Error(), "removed from the end") {
			t.Fatalf("got %v, want a truncation error", err)
		}
	})
	t.Run("fork: truncated then re-appended", func(t *testing.T) {
		dir, msg := setup(t)
		truncateTo(t, dir, 9)
		l, err := Open(dir, Options{NoSync: true, SegmentMaxBytes: 900})
		if err != nil {
			t.Fatal(err)
		}
		for range 6 {
			if _, err := l.Append(context.Background(), &Event{Type: "forged"}); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		if _, err := Verify(dir); err != nil {
			t.Fatalf("plain Verify should not see a fork: %v", err)
		}
		_, err = VerifyWithCheckpoint(dir, msg, v)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Seq != 11 || !strings.Contains(ve.Reason, "rewritten") {
			t.Fatalf("got %v, want a root mismatch at seq 11", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		dir, msg := setup(t)
		_, other := testSigner(t, "gw-1", 3)
		if _, err := VerifyWithCheckpoint(dir, msg, other); err == nil {
			t.Fatal("accepted a checkpoint under the wrong key")
		}
	})
}

// truncateTo cuts the log in dir to its first n records, as an attacker
// with file access would, removing later segments and the hash file.
func truncateTo(t *testing.T, dir string, n uint64) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.first >= n && s.first > 0 {
			os.Remove(s.path)
			continue
		}
		lines := bytes.SplitAfter(readFile(t, s.path), []byte("\n"))
		keep := min(int(n-s.first), len(lines))
		writeFile(t, s.path, bytes.Join(lines[:keep], nil))
	}
	os.Remove(filepath.Join(dir, hashesFile))
}
