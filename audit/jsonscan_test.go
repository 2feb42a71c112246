package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// bodyOracle is checkBody's rule written with encoding/json: valid UTF-8,
// json.Valid, and distinct, unescaped top-level names that are not the
// header's. b is the event part of a line (after the header's `,`).
func bodyOracle(b []byte) bool {
	obj := append([]byte(`{"seq":0,`), b...)
	if !utf8.Valid(b) || !json.Valid(obj) {
		return false
	}
	if bytes.HasSuffix(b, []byte{' '}) || bytes.HasSuffix(b, []byte{'\t'}) || bytes.HasSuffix(b, []byte{'\r'}) || bytes.HasSuffix(b, []byte{'\n'}) {
		return false // nothing follows the closing }, not even whitespace
	}
	if bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("}")) {
		return false // the header's trailing comma needs a member after it
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		name := tok.(string)
		raw := obj[off:dec.InputOffset()]
		if bytes.IndexByte(raw, '\\') >= 0 || seen[name] || name == "time" || name == "prev" {
			return false
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

func TestCheckBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`"type":"x"}`, true},
		{` "type" : "x" , "detail" : {"a":[1,-2.5e+3,true,false,null,"\u00e9\n"]} }`, true},
		{`"type":"x"} `, false}, // nothing follows the object, not even whitespace
		{`"type":"x"}` + "\r", false},
		{`"type":"x"}` + "\t\n", false},
		{`"type":"x","detail":{"type":1,"type":2}}`, true}, // nested duplicates are JSON's business
		{`"type":"x","type":"y"}`, false},
		{`"type":"x","seq":1}`, false},
		{`"type":"x","prev":"0"}`, false},
		{`"type":"x","\u0074ype":"y"}`, false},
		{`"type":"x"`, false},
		{`"type":"x"}}`, false},
		{`"type":"x"},`, false},
		{`"type":01}`, false},
		{`"type":1.}`, false},
		{`"type":"a` + "\x01" + `"}`, false},
		{`"type":"` + "\xff" + `"}`, false},
		{`"type":[1,]}`, false},
		{`"type":{"a"}}`, false},
		{`"type":"\x"}`, false},
		{`"type":tru}`, false},
		{`"type":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`, false},
		{`"type":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`, true},
	} {
		err := checkBody([]byte(tc.body))
		if got := err == nil; got != tc.ok {
			t.Errorf("checkBody(%.60q) = %v, want ok=%v", tc.body, err, tc.ok)
		}
		if got := bodyOracle([]byte(tc.body)); got != tc.ok {
			t.Errorf("oracle(%.60q) = %v, want %v", tc.body, got, tc.ok)
		}
	}
}

// FuzzCheckBody holds the hand-written recognizer to encoding/json.
func FuzzCheckBody(f *testing.F) {
	for _, line := range goldenSeeds(f) {
		if i := bytes.Index(line, []byte(`"type"`)); i > 0 {
			f.Add(bytes.TrimSuffix(line[i:], []byte("\n")))
		}
	}
	f.Add([]byte(`"type":"x","a":{"b":[1e5,"\ud800"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := checkBody(b) == nil, bodyOracle(b); got != want {
			t.Fatalf("checkBody(%q) ok=%v, encoding/json says %v", b, got, want)
		}
	})
}

// FuzzParseCanonicalTime holds the fast time parser to time.Parse plus
// re-formatting, the rule it replaces.
func FuzzParseCanonicalTime(f *testing.F) {
	for _, s := range []string{"2026-03-14T15:09:26.5365Z", "2026-03-14T15:09:26Z", "2024-02-29T00:00:00.000000001Z", "2023-02-29T00:00:00Z", "2026-03-14T15:09:26.50Z", "2026-03-14T15:09:26+00:00", "0000-01-01T00:00:00Z", "2026-12-31T23:59:60Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseCanonicalTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		wantOK := err == nil && want.Location() == time.UTC && want.Format(time.RFC3339Nano) == s
		if ok != wantOK || (ok && !got.Equal(want)) {
			t.Fatalf("%q: got %v %v, want %v %v (%v)", s, got, ok, want, wantOK, err)
		}
	})
}

// TestMemTreeMatchesTlog checks the verifier's streaming tree against
// sumdb/tlog's StoredHashes and TreeHash, leaf by leaf.
func TestMemTreeMatchesTlog(t *testing.T) {
	m := newMemTree()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for n := range int64(300) {
		root, err := m.root()
		if err != nil {
			t.Fatal(err)
		}
		want, err := tlog.TreeHash(n, r)
		if err != nil {
			t.Fatal(err)
		}
		if root != want {
			t.Fatalf("root of %d leaves: got %x, want %x", n, root, want)
		}
		line := []byte(strings.Repeat("x", int(n)))
		wantHashes, err := tlog.StoredHashes(n, line, r)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.add(line)
		if len(got) != len(wantHashes) {
			t.Fatalf("leaf %d: %d stored hashes, want %d", n, len(got), len(wantHashes))
		}
		for i := range got {
			if got[i] != wantHashes[i] {
				t.Fatalf("leaf %d hash %d differs", n, i)
			}
		}
		stored = append(stored, wantHashes...)
	}
}
