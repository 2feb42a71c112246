package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCanonicalArgs(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{``, `{}`, false},
		{`null`, `{}`, false},
		{` {} `, `{}`, false},
		{`{"b":1,"a":"x"}`, `{"a":"x","b":1}`, false},
		{"{\n \"a\" : [ 1.50, 2e3 ] }", `{"a":[1.50,2e3]}`, false},
		{`{"a":{"z":true,"y":null}}`, `{"a":{"y":null,"z":true}}`, false},
		{`{"html":"<b>&</b>","u":"\u00e9"}`, `{"html":"<b>&</b>","u":"é"}`, false},
		{`[1,2]`, ``, true},
		{`"s"`, ``, true},
		{`{"a":1} {"b":2}`, ``, true},
		{`{"a":1`, ``, true},
		{`{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, ``, true},
	}
	for _, tt := range tests {
		got, err := canonicalArgs([]byte(tt.in))
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("canonicalArgs(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzCanonicalArgs: the canonical form is a JSON object equal to the
// input, and canonical again (idempotent).
func FuzzCanonicalArgs(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,{"d":2,"c":3}],"a":"\u003c"}`, `null`, `{"a":1e400}`, `{"a":"\ud800"}`, `[]`, `{"a":-0.0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := canonicalArgs(in)
		if err != nil {
			return
		}
		again, err := canonicalArgs(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("canonical form %q is not canonical: %q, %v", got, again, err)
		}
		var a, b any
		if len(bytes.TrimSpace(in)) == 0 || string(bytes.TrimSpace(in)) == "null" {
			return
		}
		if decodeNumbers(in, &a) != nil || decodeNumbers(got, &b) != nil {
			t.Fatalf("canonicalArgs accepted %q as %q, which encoding/json rejects", in, got)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("canonicalArgs(%q) = %q changes the value", in, got)
		}
	})
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
