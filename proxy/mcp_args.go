package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// maxMCPArgsDepth bounds the nesting of tools/call arguments.
const maxMCPArgsDepth = 64

// canonicalArgs returns the canonical form of tools/call arguments, which
// digests and approvals are bound to: a JSON object (absent or null
// arguments are {}), object keys sorted, no insignificant whitespace,
// numbers as written, strings re-escaped the way encoding/json does without
// HTML escaping. Two encodings of the same object have the same canonical
// form. Anything but one JSON object is an error.
func canonicalArgs(raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return []byte("{}"), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("proxy: tool arguments must be a JSON object")
	}
	if depth(raw) > maxMCPArgsDepth {
		return nil, errors.New("proxy: tool arguments are nested too deeply")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("proxy: tool arguments are not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("proxy: tool arguments hold more than one JSON value")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errors.New("proxy: tool arguments cannot be re-encoded")
	}
	return bytes.TrimSuffix(out.Bytes(), []byte{'\n'}), nil
}

// depth is the deepest bracket nesting of a JSON text, ignoring strings.
func depth(b []byte) int {
	d, most, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}
