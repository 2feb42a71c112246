package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func goldenSeeds(f *testing.F) [][]byte {
	data, err := os.ReadFile(filepath.Join("testdata", "chain.golden"))
	if err != nil {
		f.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))
}

// FuzzParseHeader checks that the strict line parser never panics and that
// anything it accepts is exactly what the writer would have produced.
func FuzzParseHeader(f *testing.F) {
	for _, line := range goldenSeeds(f) {
		f.Add(bytes.TrimSuffix(line, []byte("\n")))
	}
	f.Add([]byte(`{"seq":0,"time":"2026-03-14T15:09:26Z","prev":"0000000000000000000000000000000000000000000000000000000000000000","type":""}`))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"9999-12-31T23:59:59.999999999Z","prev":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","type":"x","seq":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		h, err := parseHeader(line)
		if err != nil {
			return
		}
		again := appendLine(nil, h.seq, h.time, &h.prev, line[h.body:])
		if !bytes.Equal(again, line) {
			t.Fatalf("accepted line is not canonical:\n in: %q\nout: %q", line, again)
		}
		// Event fields of the wrong JSON type are allowed by the format;
		// ParseRecord may refuse them, but must not panic.
		_, _ = ParseRecord(line)
	})
}

// FuzzVerify feeds arbitrary bytes as a one-segment log: Verify must not
// panic, and whatever Verify accepts, Open must accept unchanged.
func FuzzVerify(f *testing.F) {
	var all []byte
	for _, line := range goldenSeeds(f) {
		all = append(all, line...)
		f.Add(append([]byte(nil), all...))
	}
	f.Add(append(append([]byte(nil), all...), "{\"seq\":3"...))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, segmentsDir), 0o700); err != nil {
			t.Fatal(err)
		}
		seg := firstSegment(dir)
		if err := os.WriteFile(seg, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir)
		wantRep, wantErr := verifySeq(dir, nil)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || rep != wantRep {
			t.Fatalf("parallel Verify: got %+v, %v\nwant (one-pass reference) %+v, %v", rep, err, wantRep, wantErr)
		}
		if err != nil {
			return
		}
		l, err := Open(dir, Options{NoSync: true})
		if err != nil {
			t.Fatalf("Verify accepts what Open refuses: %v", err)
		}
		defer l.Close()
		if l.Size() != rep.Records {
			t.Fatalf("Open sees %d records, Verify %d", l.Size(), rep.Records)
		}
		if got, _ := os.ReadFile(seg); !bytes.Equal(got, data) {
			t.Fatal("Open changed a log that verifies")
		}
	})
}

// FuzzParseCheckpoint checks the checkpoint body parser: no panics, and an
// accepted body re-formats to itself (extension lines aside).
func FuzzParseCheckpoint(f *testing.F) {
	f.Add("gw-1\n3\n7l1/XDoInJZYOTX/aHvfXtHNq8pWwbdVcbSyOIfzRDY=\n")
	f.Add("gw-1\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextension\n")
	f.Add("gw-1\n03\nAAAA\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCheckpoint(text)
		if err != nil {
			return
		}
		if got := c.Text(); !strings.HasPrefix(text, got) {
			t.Fatalf("accepted %q, re-formats as %q", text, got)
		}
	})
}
