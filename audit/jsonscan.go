package audit

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// maxJSONDepth is the deepest nesting a record may have; encoding/json's
// scanner has the same limit.
const maxJSONDepth = 10000

// checkBody checks the event part of a record line: b is everything after
// the fixed header `{"seq":N,"time":"T","prev":"P",`, so it must be the rest
// of one JSON object, members then `}`, with nothing after it, not even
// whitespace. The whole line
// must be valid UTF-8 and valid JSON (RFC 8259), and the object's top-level
// member names must be distinct, written without escapes, and not be seq,
// time or prev again. It is one pass over the bytes, several times faster
// than json.Valid; FuzzCheckBody holds it to json.Valid.
func checkBody(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("line is not valid UTF-8")
	}
	s := jsonScanner{b: b}
	var names [16][]byte // top-level names seen; more spill to a map
	var more map[string]bool
	n := 0
	for {
		s.space()
		start := s.i
		if !s.string() {
			return errJSON
		}
		name := b[start+1 : s.i-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			return errors.New("a top-level member name is escaped")
		}
		switch string(name) {
		case "seq", "time", "prev":
			return errors.New("duplicate top-level member " + string(name))
		}
		for _, seen := range names[:min(n, len(names))] {
			if bytes.Equal(seen, name) {
				return errors.New("duplicate top-level member " + string(name))
			}
		}
		if n >= len(names) {
			if more == nil {
				more = make(map[string]bool)
			}
			if more[string(name)] {
				return errors.New("duplicate top-level member " + string(name))
			}
			more[string(name)] = true
		} else {
			names[n] = name
		}
		n++
		s.space()
		if !s.byte(':') {
			return errJSON
		}
		if !s.value(1) {
			return errJSON
		}
		s.space()
		if s.byte(',') {
			continue
		}
		if !s.byte('}') {
			return errJSON
		}
		if s.i == len(b) {
			return nil
		}
		if s.space(); s.i == len(b) {
			// The writer ends every line with the object's '}': whitespace
			// after it (a '\r', a space) is valid JSON but a changed or
			// foreign line.
			return errTrailing
		}
		return errJSON
	}
}

var (
	errJSON     = errors.New("line is not valid JSON")
	errTrailing = errors.New(`whitespace (a \r or a space) after the record's closing }: a record ends at its }`)
)

// jsonScanner is a strict RFC 8259 recognizer over b.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // the common case: records have no whitespace
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// value recognizes one value after optional whitespace.
func (s *jsonScanner) value(depth int) bool {
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.string()
	case c == '{':
		if depth >= maxJSONDepth {
			return false
		}
		s.i++
		s.space()
		if s.byte('}') {
			return true
		}
		for {
			s.space()
			if !s.string() {
				return false
			}
			s.space()
			if !s.byte(':') || !s.value(depth+1) {
				return false
			}
			s.space()
			if s.byte('}') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return false
		}
		s.i++
		s.space()
		if s.byte(']') {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.byte(']') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

// strPlain[c] is true for the bytes a JSON string holds as they are: not
// '"', not '\\', not a control character.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// string recognizes a string starting at s.i (which must be '"').
func (s *jsonScanner) string() bool {
	if !s.byte('"') {
		return false
	}
	b := s.b
	i := s.i
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c < 0x20:
			return false
		}
		// c == '\\'
		i++
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if i+4 >= len(b) {
				return false
			}
			for _, h := range b[i+1 : i+5] {
				if !isHex(h) {
					return false
				}
			}
			i += 4
		default:
			return false
		}
		i++
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number recognizes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	b := s.b
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.i < len(b) && b[s.i] >= '1' && b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.byte('.') {
		if !s.digits() {
			return false
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if !s.byte('+') {
			s.byte('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits consumes [0-9]+ and reports whether there was at least one.
func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
