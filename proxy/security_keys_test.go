package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestUniqueKeys(t *testing.T) {
	many := "{"
	for i := 0; i < 40; i++ {
		many += `"k` + strings.Repeat("x", i) + `":1,`
	}
	tests := []struct {
		name, doc string
		want      error // nil, errAmbiguousKeys, or errMalformed (any other error)
	}{
		{"plain", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}`, nil},
		{"same key in sibling objects", `[{"id":1},{"id":2}]`, nil},
		{"duplicate", `{"tool_calls":[],"tool_calls":[]}`, errAmbiguousKeys},
		{"nested duplicate", `{"a":[{"function":{"name":"x","arguments":"{}","name":"y"}}]}`, errAmbiguousKeys},
		{"case variant", `{"tool_calls":[],"Tool_Calls":[]}`, errAmbiguousKeys},
		{"escaped", `{"name":"x","n\u0061me":"y"}`, errAmbiguousKeys},
		{"long s", "{\"tool_calls\":[],\"tool_call\u017f\":[]}", errAmbiguousKeys},
		{"kelvin", "{\"k\":1,\"\u212a\":2}", errAmbiguousKeys},
		{"past the linear bound", many + `"KXXXXXXXXXXXXXXXXXXXX":2}`, errAmbiguousKeys},
		{"many distinct", many + `"z":2}`, nil},
		{"keys inside strings", `{"a":"{\"a\":1,\"a\":2}"}`, nil},
		{"malformed", `{"a":1,`, errMalformed},
		{"trailing", `{"a":1} x`, errMalformed},
		{"too deep", strings.Repeat("[", maxScanDepth+2) + strings.Repeat("]", maxScanDepth+2), errMalformed},
	}
	for _, tt := range tests {
		err := uniqueKeys([]byte(tt.doc))
		var got error
		switch {
		case errors.Is(err, errAmbiguousKeys):
			got = errAmbiguousKeys
		case err != nil:
			got = errMalformed
		}
		if got != tt.want {
			t.Errorf("%s: uniqueKeys = %v, want %v", tt.name, err, tt.want)
		}
	}
}

var errMalformed = errors.New("malformed")

// referenceAmbiguous is an independent check with encoding/json's tokenizer:
// per object, any two keys equal under bytes.EqualFold.
func referenceAmbiguous(doc []byte) (ambiguous, ok bool) {
	if !json.Valid(doc) {
		return false, false
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		obj    bool
		keys   []string
		expect bool // next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, true
		}
		if err != nil {
			return false, false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expect {
			if d, isDelim := tok.(json.Delim); isDelim && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expect = true
				}
				continue
			}
			k := tok.(string)
			for _, p := range top.keys {
				if strings.EqualFold(p, k) {
					return true, true
				}
			}
			top.keys = append(top.keys, k)
			top.expect = false
			continue
		}
		switch d, isDelim := tok.(json.Delim); {
		case isDelim && (d == '{' || d == '['):
			stack = append(stack, &frame{obj: d == '{', expect: d == '{'})
		case isDelim: // ']' ('}' is handled above)
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].expect = true
			}
		default:
			if top != nil && top.obj {
				top.expect = true
			}
		}
	}
}

// FuzzUniqueKeys holds uniqueKeys to the reference on well-formed
// documents within its depth bound, and to refusing malformed ones.
func FuzzUniqueKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"a":{"b":[1,{"c":1,"c":2}]}}`, `{"n\u0061me":1,"name":2}`, `[{"x":1},{"x":1}]`, `{"ſ":1,"s":2}`, `{}`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkCheckedCompletion(t, doc) // its verdict on the keys is uniqueKeys's
		err := uniqueKeys(doc)
		amb, ok := referenceAmbiguous(doc)
		if !ok {
			if err == nil {
				t.Fatalf("%q: accepted, but encoding/json refuses it", doc)
			}
			return
		}
		if errors.Is(err, errAmbiguousKeys) != amb {
			if err != nil && !errors.Is(err, errAmbiguousKeys) && bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) > maxScanDepth {
				return // too deep to check: refused, which is safe
			}
			t.Fatalf("%q: uniqueKeys = %v, reference ambiguous = %v", doc, err, amb)
		}
	})
}
