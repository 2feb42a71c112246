package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// jscan is a validating, allocation-free JSON scanner for the few fields the
// gateway reads from request and response bodies (requestscan.go). It reads
// the common shape only: whatever it does not handle exactly as
// encoding/json would (escaped or non-ASCII keys, keys that match a field
// only case-insensitively, repeated fields, unexpected types, deep nesting)
// sets bail, and the caller decodes the body with encoding/json instead. So
// the fast path never decides anything encoding/json would decide
// differently; the fuzz tests hold it to that.
type jscan struct {
	b    []byte
	i    int
	bail bool
}

// maxScanDepth bounds nesting on the fast path; deeper bodies go to
// encoding/json, which has its own limit.
const maxScanDepth = 512

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jscan) fail() { s.bail = true }

// expect consumes c after optional space.
func (s *jscan) expect(c byte) bool {
	if s.bail || s.peek() != c {
		s.fail()
		return false
	}
	s.i++
	return true
}

// end reports whether only space is left.
func (s *jscan) end() bool {
	s.ws()
	if s.i != len(s.b) {
		s.fail()
	}
	return !s.bail
}

// member reads the next key of an object opened with expect('{'); n counts
// the members read so far. It returns false at the closing brace (or on
// bail). Keys that are escaped or not ASCII bail: encoding/json matches
// them to fields in ways this scanner does not repeat.
func (s *jscan) member(n *int) ([]byte, bool) { return s.nextKey(n, true) }

// nextKey reads the next key of an object; strict bails on escaped or
// non-ASCII keys.
func (s *jscan) nextKey(n *int, strict bool) ([]byte, bool) {
	if s.bail {
		return nil, false
	}
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false
	}
	if *n > 0 {
		if c != ',' {
			s.fail()
			return nil, false
		}
		s.i++
		s.ws()
	}
	*n++
	raw, esc, high := s.rawString()
	if s.bail || strict && (esc || high) {
		s.fail()
		return nil, false
	}
	if !s.expect(':') {
		return nil, false
	}
	return raw, true
}

// elem advances to the next element of an array opened with expect('[').
func (s *jscan) elem(n *int) bool {
	if s.bail {
		return false
	}
	c := s.peek()
	if c == ']' {
		s.i++
		return false
	}
	if *n > 0 {
		if c != ',' {
			s.fail()
			return false
		}
		s.i++
	}
	*n++
	return true
}

// field matches key against the fields an object level reads: their index,
// or -1 for a key to skip. A key equal to a field only when case is ignored
// bails (encoding/json would match it).
func (s *jscan) field(key []byte, names ...string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			s.fail()
		}
	}
	return -1
}

// once records field i as seen in an object; a repeat bails (encoding/json
// merges repeated fields in ways not worth repeating here).
func (s *jscan) once(seen *uint32, i int) bool {
	if *seen&(1<<i) != 0 {
		s.fail()
		return false
	}
	*seen |= 1 << i
	return true
}

// rawString reads a string token and returns its bytes between the quotes,
// whether it holds escapes, and whether it holds non-ASCII bytes.
func (s *jscan) rawString() (raw []byte, esc, high bool) {
	if s.bail || s.peek() != '"' {
		s.fail()
		return nil, false, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		s.plainRun()
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, esc, high
		case c == '\\':
			esc = true
			s.i++
			if s.i >= len(s.b) {
				s.fail()
				return nil, false, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+5 > len(s.b) {
					s.fail()
					return nil, false, false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						s.fail()
						return nil, false, false
					}
				}
				s.i += 5
			default:
				s.fail()
				return nil, false, false
			}
		case c < 0x20:
			s.fail()
			return nil, false, false
		default:
			if c >= 0x80 {
				high = true
			}
			s.i++
		}
	}
	s.fail()
	return nil, false, false
}

// plainRun advances over bytes that need no attention in a string (printable
// ASCII other than '"' and '\\'), eight at a time, and stops at the first
// byte that does.
func (s *jscan) plainRun() {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	b, i := s.b, s.i
	for i+8 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i:])
		// A byte below 0x20, at or above 0x80, '"' or '\\' sets its high
		// bit. Borrows run only upward, so the lowest bit set is exact: it
		// marks the first such byte (bytes above it may be marked wrongly).
		ctl := (w - 0x20*ones) &^ w
		quote := w ^ ('"' * ones)
		slash := w ^ ('\\' * ones)
		if m := (ctl | w | ((quote - ones) &^ quote) | ((slash - ones) &^ slash)) & highs; m != 0 {
			i += bits.TrailingZeros64(m) / 8
			break
		}
		i += 8
	}
	s.i = i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringBytes reads a string value as encoding/json decodes it. Plain
// strings are returned in place, without copying.
func (s *jscan) stringBytes() []byte {
	start := s.i
	raw, esc, high := s.rawString()
	if s.bail {
		return nil
	}
	if !esc && (!high || utf8.Valid(raw)) {
		return raw
	}
	var v string
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		s.fail()
		return nil
	}
	return []byte(v)
}

// str reads a string value; null bails (the caller's field keeps its zero).
func (s *jscan) str() string {
	b := s.stringBytes()
	if s.bail {
		return ""
	}
	return string(b)
}

// integer reads a JSON integer that fits an int; fractions, exponents and
// other types bail.
func (s *jscan) integer() int {
	if s.bail {
		return 0
	}
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) || s.i < len(s.b) && isNumberTail(s.b[s.i]) {
		s.fail()
		return 0
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, strconv.IntSize)
	if err != nil {
		s.fail()
		return 0
	}
	return int(n)
}

func isNumberTail(c byte) bool {
	return c == '.' || c == 'e' || c == 'E' || '0' <= c && c <= '9'
}

// boolean reads true or false.
func (s *jscan) boolean() bool {
	switch s.peek() {
	case 't':
		return s.literal("true")
	case 'f':
		s.literal("false")
		return false
	}
	s.fail()
	return false
}

// null consumes a null if one is next and reports whether it did.
func (s *jscan) null() bool {
	if s.peek() == 'n' {
		s.literal("null")
		return !s.bail
	}
	return false
}

func (s *jscan) literal(lit string) bool {
	if s.bail || !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.fail()
		return false
	}
	s.i += len(lit)
	return true
}

// value skips one value, checking that it is well-formed, and returns its
// bytes as they stand in the document.
func (s *jscan) value() []byte {
	s.ws()
	start := s.i
	s.skip(0)
	if s.bail {
		return nil
	}
	return s.b[start:s.i]
}

func (s *jscan) skip(depth int) {
	if depth > maxScanDepth {
		s.fail()
		return
	}
	switch c := s.peek(); {
	case c == '{':
		s.i++
		n := 0
		for _, ok := s.nextKey(&n, false); ok; _, ok = s.nextKey(&n, false) {
			s.skip(depth + 1)
		}
	case c == '[':
		s.i++
		n := 0
		for s.elem(&n) {
			s.skip(depth + 1)
		}
	case c == '"':
		s.rawString()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		s.number()
	default:
		s.fail()
	}
}

// number checks a number token against the JSON grammar.
func (s *jscan) number() {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.fail()
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.fail()
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.fail()
			return
		}
	}
	s.i = i
}

// errAmbiguousKeys marks a JSON document with an object that holds the same
// key twice, or two keys equal but for case. Parsers read such an object
// differently (encoding/json keeps the last duplicate and matches fields
// case-insensitively; JavaScript and Python match exactly; some readers
// keep the first), so what the gateway checked need not be what a client
// acts on.
var errAmbiguousKeys = errors.New("an object has duplicate keys, or keys that differ only in case")

// maxLinearKeys is how many keys of one object are compared pairwise;
// past it, the object's keys go into a map by their case fold.
const maxLinearKeys = 16

// uniqueKeys checks every object in the JSON document b for keys a reader
// could take as one: equal once escapes are decoded, or equal under
// Unicode case folding (as encoding/json matches fields, ſ and K
// included). It returns an error wrapping errAmbiguousKeys naming the key,
// or a plain error when b is not well-formed JSON or nests too deep to
// check.
func uniqueKeys(b []byte) error {
	k := newKeyCheck(b)
	defer k.release()
	k.value(0)
	switch {
	case k.dup != nil:
		return ambiguousKeysError(k.dup)
	case k.s.bail || !k.s.end():
		return errors.New("malformed JSON, or nested too deep to check its keys")
	}
	return nil
}

type keyCheck struct {
	s    jscan
	keys [][]byte // keys of the objects being read, innermost last
	dup  []byte
	pool *[][]byte // where keys came from
}

// keyStacks keeps keyCheck's key stacks between documents: a fresh one per
// answer, or per checked stream event, would be garbage at once.
var keyStacks = sync.Pool{New: func() any {
	s := make([][]byte, 0, 32) // the keys of the objects open at once, usually enough
	return &s
}}

func newKeyCheck(b []byte) keyCheck {
	p := keyStacks.Get().(*[][]byte)
	return keyCheck{s: jscan{b: b}, keys: (*p)[:0], pool: p}
}

// release returns the key stack, emptied so that it holds on to no
// document, unless a document with very many keys grew it.
func (k *keyCheck) release() {
	keys := k.keys[:cap(k.keys)]
	if len(keys) > 1024 {
		return
	}
	clear(keys)
	*k.pool = keys[:0]
	keyStacks.Put(k.pool)
	k.keys, k.pool = nil, nil
}

func (k *keyCheck) value(depth int) {
	s := &k.s
	if depth > maxScanDepth {
		s.fail()
		return
	}
	switch s.peek() {
	case '{':
		s.i++
		k.object(depth)
	case '[':
		s.i++
		n := 0
		for s.elem(&n) && k.dup == nil {
			k.value(depth + 1)
		}
	default:
		s.skip(depth)
	}
}

func (k *keyCheck) object(depth int) {
	s := &k.s
	start := len(k.keys)
	defer func() { k.keys = k.keys[:start] }()
	var folded map[string]bool
	for n := 0; !s.bail && k.dup == nil; n++ {
		c := s.peek()
		if c == '}' {
			s.i++
			return
		}
		if n > 0 {
			if c != ',' {
				s.fail()
				return
			}
			s.i++
		}
		s.ws()
		q := s.i
		key, esc, high := s.rawString()
		if s.bail {
			return
		}
		if esc || high {
			var v string
			if json.Unmarshal(s.b[q:s.i], &v) != nil {
				s.fail()
				return
			}
			key = []byte(v)
		}
		switch {
		case n < maxLinearKeys:
			for _, prev := range k.keys[start:] {
				if bytes.EqualFold(prev, key) {
					k.dup = key
					return
				}
			}
			k.keys = append(k.keys, key)
		default:
			if folded == nil {
				folded = make(map[string]bool, 2*maxLinearKeys)
				for _, prev := range k.keys[start:] {
					folded[foldKey(prev)] = true
				}
			}
			f := foldKey(key)
			if folded[f] {
				k.dup = key
				return
			}
			folded[f] = true
		}
		if !s.expect(':') {
			return
		}
		k.value(depth + 1)
	}
}

// foldKey maps a key to one representative of its case-fold class: every
// rune to the least rune of its simple-folding orbit, so that two keys
// fold alike exactly when bytes.EqualFold holds.
func foldKey(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < least {
				least = f
			}
		}
		out = append(out, least)
	}
	return string(out)
}
