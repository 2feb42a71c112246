package audit

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestSignCheckpointStoresServesAndVerifies(t *testing.T) {
	l, dir := openTest(t, Options{SegmentMaxBytes: 600})
	s, v := testSigner(t, "gw-1", 1)
	if l.LatestCheckpoint() != nil {
		t.Fatal("a new log has a checkpoint")
	}
	empty, err := l.SignCheckpoint(s) // size 0 is a checkpoint too
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 7)
	first, err := l.SignCheckpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.SignCheckpoint(s)
	if err != nil || !bytes.Equal(again, first) {
		t.Errorf("signing an idle log: got a new checkpoint (%v)", err)
	}
	appendN(t, l, 5)
	second, err := l.SignCheckpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.LatestCheckpoint(); !bytes.Equal(got, second) {
		t.Errorf("LatestCheckpoint = %q, want %q", got, second)
	}
	c, err := OpenCheckpoint(second, v)
	if err != nil || c.Size != 12 {
		t.Fatalf("latest checkpoint: %+v, %v", c, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	stored, err := ReadCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{empty, first, second}; len(stored) != len(want) || !bytes.Equal(stored[0], want[0]) || !bytes.Equal(stored[2], want[2]) {
		t.Fatalf("stored checkpoints:\n%q\nwant\n%q", stored, want)
	}
	rep, err := VerifyWith(dir, VerifyOptions{Key: v})
	if err != nil || rep.Checkpoints != 3 || !rep.Signed || rep.Latest.Size != 12 {
		t.Fatalf("VerifyWith: %+v, %v", rep, err)
	}
	l2, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.LatestCheckpoint(); !bytes.Equal(got, second) {
		t.Errorf("after reopen LatestCheckpoint = %q", got)
	}
	l2.Close()

	// Another key: every stored signature is refused.
	_, other := testSigner(t, "gw-1", 2)
	var ce *CheckpointError
	if _, err := VerifyWith(dir, VerifyOptions{Key: other}); !errors.As(err, &ce) || ce.Index != 0 {
		t.Errorf("wrong key: got %v, want a CheckpointError for checkpoint 0", err)
	}
}

// TestStoredCheckpointCatchesRewrite: a log rewritten after a checkpoint was
// stored fails Verify even without a key and without a kept checkpoint.
func TestStoredCheckpointCatchesRewrite(t *testing.T) {
	l, dir := openTest(t, Options{})
	s, _ := testSigner(t, "gw-1", 1)
	appendN(t, l, 6)
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	l.Close()
	editLines(t, firstSegment(dir), func(lines [][]byte) [][]byte { return lines[:5] })
	if _, err := Verify(dir); err == nil || !strings.Contains(err.Error(), "removed from the end") {
		t.Errorf("truncated log: got %v", err)
	}
}

func TestCheckpointLogTornAndDamaged(t *testing.T) {
	l, dir := openTest(t, Options{})
	s, _ := testSigner(t, "gw-1", 1)
	appendN(t, l, 3)
	good, err := l.SignCheckpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := filepath.Join(dir, checkpointsFile)

	// A torn second note is cut by Open and refused by Verify until then.
	writeFile(t, path, append(bytes.Clone(good), good[:len(good)-20]...))
	var ce *CheckpointError
	if _, err := Verify(dir); !errors.As(err, &ce) || ce.Index != 1 {
		t.Errorf("Verify with a torn checkpoint: got %v", err)
	}
	l, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := readFile(t, path); !bytes.Equal(got, good) {
		t.Errorf("after Open the checkpoint log is %q, want %q", got, good)
	}

	// Damage followed by a good note is not a torn tail: Open refuses.
	writeFile(t, path, append([]byte("gw-1\n3\nAAAA\n\nnot a signature\n"), good...))
	if _, err := Open(dir, Options{NoSync: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with a damaged checkpoint log: got %v, want ErrCorrupt", err)
	}
	// A note of the right shape whose body is not a checkpoint: Verify names it.
	writeFile(t, path, append(append(bytes.Clone(good), "junk\n\n— gw-1 AAAA\n"...), good...))
	if _, err := Verify(dir); !errors.As(err, &ce) || ce.Index != 1 {
		t.Errorf("Verify with a junk checkpoint: got %v", err)
	}
}

func TestSplitCheckpoints(t *testing.T) {
	n1 := "gw\n1\nAAAA\n\n— gw sig1\n"
	n2 := "gw\n2\nBBBB\next\n\n— gw sig2\n— other sig3\n"
	for _, tc := range []struct {
		in    string
		notes int
		bad   int64
	}{
		{"", 0, -1},
		{n1, 1, -1},
		{n1 + n2, 2, -1},
		{n1 + n2[:10], 1, int64(len(n1))},
		{n1 + "gw\n2\nBBBB\n\n", 1, int64(len(n1))},
		{n1 + "\n" + n2, 1, int64(len(n1))},
		{"gw\n1\nAAAA\n\nnot a signature\n", 0, 0},
		{n1[:len(n1)-1], 0, 0},
	} {
		notes, bad := splitCheckpoints([]byte(tc.in))
		if len(notes) != tc.notes || bad != tc.bad {
			t.Errorf("%q: got %d notes, bad %d; want %d, %d", tc.in, len(notes), bad, tc.notes, tc.bad)
		}
	}
}

// FuzzSplitCheckpoints: no panics; when nothing is bad, the notes are the
// input exactly, each a note that note.Open could parse the shape of.
func FuzzSplitCheckpoints(f *testing.F) {
	f.Add([]byte("gw\n1\nAAAA\n\n— gw sig1\ngw\n2\nBBBB\n\n— gw sig2\n"))
	f.Add([]byte("gw\n1\n\n\n— \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		notes, bad := splitCheckpoints(b)
		var all []byte
		for _, n := range notes {
			if !bytes.Contains(n.msg, []byte("\n\n— ")) {
				t.Fatalf("note without a signature: %q", n.msg)
			}
			all = append(all, n.msg...)
		}
		if bad < 0 && !bytes.Equal(all, b) {
			t.Fatalf("notes %q do not add up to %q", all, b)
		}
		if bad >= 0 && !bytes.Equal(all, b[:bad]) {
			t.Fatalf("notes %q do not add up to the first %d bytes of %q", all, bad, b)
		}
	})
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k", "signing.key")
	vkey, err := GenerateKeyFile(path, "gw.example/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKeyFile(path, "gw.example/1"); err == nil {
		t.Error("GenerateKeyFile overwrote an existing key")
	}
	s, got, err := LoadKeyFile(path)
	if err != nil || got != vkey || s.Name() != "gw.example/1" {
		t.Fatalf("LoadKeyFile: %v %q %v; want vkey %q", s, got, err, vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hi\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("the derived verifier refuses the signer's note: %v", err)
	}
	// The derivation agrees with note.GenerateKey's own verifier key.
	skey, want, _ := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), "portcullis.example/gw-1")
	if got, err := VerifierKey(skey); err != nil || got != want {
		t.Errorf("VerifierKey = %q, %v; want %q", got, err, want)
	}
	if _, _, err := LoadOrGenerateKeyFile(path, "other"); err == nil {
		t.Error("a key named for another origin was accepted")
	}
	if _, _, err := LoadOrGenerateKeyFile(filepath.Join(dir, "new.key"), "gw-2"); err != nil {
		t.Errorf("LoadOrGenerateKeyFile on a new path: %v", err)
	}
	writeFile(t, path, []byte("PRIVATE+KEY+x+00000000+AAAA\n"))
	if _, _, err := LoadKeyFile(path); err == nil {
		t.Error("a malformed key file was accepted")
	}
}
