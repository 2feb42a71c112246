package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxLineBytes caps one record line, newline excluded. Append refuses events
// that would exceed it and Verify rejects longer lines.
const MaxLineBytes = 1 << 20

// HashSize is the size of a record hash (SHA-256).
const HashSize = sha256.Size

// Hash is the SHA-256 of a record line without its trailing newline.
type Hash [HashSize]byte

// String returns the lowercase hex form used in the prev field.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashLine returns the hash of a record line. line must not include the
// terminating '\n'.
func HashLine(line []byte) Hash { return sha256.Sum256(line) }

// Record is one parsed log line.
type Record struct {
	Seq   uint64
	Time  time.Time
	Prev  Hash
	Event Event
}

// The fixed prefix of every line, in order.
const (
	seqKey  = `{"seq":`
	timeKey = `,"time":"`
	prevKey = `","prev":"`
	bodyKey = `",`
)

// maxHeaderBytes bounds seq (20 digits), time (35 bytes) and prev (64 hex).
const maxHeaderBytes = len(seqKey) + 20 + len(timeKey) + 35 + len(prevKey) + 2*HashSize + len(bodyKey)

// appendLine appends the record line for (seq, t, prev, body) to buf, without
// the trailing newline. body is the event's JSON object with its leading '{'
// removed, so it starts with `"type":`.
func appendLine(buf []byte, seq uint64, t time.Time, prev *Hash, body []byte) []byte {
	buf = append(buf, seqKey...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, timeKey...)
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, prevKey...)
	buf = hex.AppendEncode(buf, prev[:])
	buf = append(buf, bodyKey...)
	return append(buf, body...)
}

// eventBody encodes ev and returns its JSON without the leading '{'.
func eventBody(ev *Event) ([]byte, error) {
	b, err := appendEventJSON(nil, ev)
	if err != nil {
		return nil, err
	}
	return b[1:], nil
}

// appendEventJSON appends ev's JSON object (as json.Marshal would write it)
// to buf and checks that it fits in a line.
func appendEventJSON(buf []byte, ev *Event) ([]byte, error) {
	start := len(buf)
	b, err := appendEvent(buf, ev)
	if err != nil {
		return b[:start], fmt.Errorf("audit: marshal event: %w", err)
	}
	obj := b[start:]
	// encoding/json escapes control characters and compacts RawMessage and
	// Marshaler output, so a newline here would be a bug in this package.
	if bytes.IndexByte(obj, '\n') >= 0 {
		return b[:start], errNewlineInJSON
	}
	if len(obj)+maxHeaderBytes > MaxLineBytes {
		return b[:start], fmt.Errorf("audit: event is %d bytes, limit is %d: %w", len(obj), MaxLineBytes-maxHeaderBytes, ErrTooLarge)
	}
	return b, nil
}

// header is the fixed prefix of a line, parsed.
type header struct {
	seq  uint64
	time time.Time
	prev Hash
	body int // offset of the event fields (the byte after `",`)
}

// parseHeader strictly parses the fixed prefix of a record line (newline
// excluded) and checks that the whole line is one valid JSON object in UTF-8
// whose event part starts with "type" and whose top-level member names are
// distinct and unescaped (checkBody). It is what Verify and Open use.
func parseHeader(line []byte) (header, error) {
	var h header
	if len(line) > MaxLineBytes {
		return h, fmt.Errorf("line is %d bytes, limit is %d", len(line), MaxLineBytes)
	}
	rest, ok := bytes.CutPrefix(line, []byte(seqKey))
	if !ok {
		return h, errors.New(`line does not start with {"seq" and a colon`)
	}
	n := 0
	for n < len(rest) && n <= 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && rest[0] == '0') {
		return h, errors.New("seq is not a canonical decimal number")
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return h, errors.New("seq is out of range")
	}
	rest, ok = bytes.CutPrefix(rest[n:], []byte(timeKey))
	if !ok {
		return h, errors.New(`seq is not followed by ,"time":"`)
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || end > 35 {
		return h, errors.New("time is not terminated")
	}
	ts := rest[:end]
	t, ok := parseCanonicalTime(ts)
	if !ok {
		return h, fmt.Errorf("time %q is not canonical RFC 3339 UTC", ts)
	}
	rest, ok = bytes.CutPrefix(rest[end:], []byte(prevKey))
	if !ok {
		return h, errors.New(`time is not followed by ,"prev":"`)
	}
	if len(rest) < 2*HashSize {
		return h, errors.New("prev is too short")
	}
	if !decodeLowerHex(h.prev[:], rest[:2*HashSize]) {
		return h, errors.New("prev is not 64 lowercase hex digits")
	}
	rest, ok = bytes.CutPrefix(rest[2*HashSize:], []byte(bodyKey))
	if !ok {
		return h, errors.New(`prev is not followed by ",`)
	}
	if !bytes.HasPrefix(rest, []byte(`"type":`)) {
		return h, errors.New(`event does not start with "type"`)
	}
	if err := checkBody(rest); err != nil {
		return h, err
	}
	h.seq, h.time, h.body = seq, t, len(line)-len(rest)
	return h, nil
}

// ParseRecord parses one record line (with or without its trailing newline).
// It checks the format only; chaining is Verify's business.
func ParseRecord(line []byte) (*Record, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	h, err := parseHeader(line)
	if err != nil {
		return nil, fmt.Errorf("audit: parse record: %s", err)
	}
	r := &Record{Seq: h.seq, Time: h.time, Prev: h.prev}
	obj := make([]byte, 0, 1+len(line)-h.body)
	obj = append(append(obj, '{'), line[h.body:]...)
	if err := json.Unmarshal(obj, &r.Event); err != nil {
		return nil, fmt.Errorf("audit: parse record %d event: %w", h.seq, err)
	}
	return r, nil
}

// lowerHex maps '0'–'9' and 'a'–'f' to their values and every other byte
// to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeLowerHex decodes src, 2*len(dst) lowercase hex digits, into dst in
// one pass; it reports false if any byte is not one (dst is then partly
// written).
func decodeLowerHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := lowerHex[src[2*i]], lowerHex[src[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}
