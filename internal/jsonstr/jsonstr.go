package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// safe[html][b] is true for the ASCII bytes encoding/json writes as they are:
// printable, not '"' or '\\', and with HTML escaping not '<', '>' or '&'.
var safe = func() (t [2][utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[0][b], t[1][b] = true, true
	}
	for _, b := range `"\` {
		t[0][b], t[1][b] = false, false
	}
	for _, b := range `<>&` {
		t[1][b] = false
	}
	return t
}()

// Append appends s to buf as a JSON string exactly as encoding/json does:
// short escapes for \" \\ \b \f \n \r \t, \u00XX for other control
// characters (and for < > & when html is set), \ufffd for invalid UTF-8,
// and U+2028 / U+2029 escaped.
func Append(buf []byte, s string, html bool) []byte {
	tbl := &safe[0]
	if html {
		tbl = &safe[1]
	}
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip plain bytes eight at a time: most of what the gateway
		// writes (ids, digests, names) needs no escaping.
		i += plainRun(s[i:], html)
		if i == len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			if tbl[b] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// plainRun returns the length of the longest prefix of s, in whole blocks
// of eight bytes, that Append copies as it is (plain8, written out here so
// the loop makes no calls).
func plainRun(s string, html bool) int {
	n := 0
	for ; n+8 <= len(s); n += 8 {
		x := load8(s[n : n+8])
		quote, slash := x^(lsb*'"'), x^(lsb*'\\')
		bad := x | (x-lsb*0x20)&^x | (quote-lsb)&^quote | (slash-lsb)&^slash
		if html {
			lt, gt, amp := x^(lsb*'<'), x^(lsb*'>'), x^(lsb*'&')
			bad |= (lt-lsb)&^lt | (gt-lsb)&^gt | (amp-lsb)&^amp
		}
		if bad&msb != 0 {
			break
		}
	}
	return n
}

// load8 reads eight bytes little-endian; the compiler makes it one load.
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZero reports whether any byte of x is zero.
func hasZero(x uint64) bool { return (x-lsb)&^x&msb != 0 }

// hasByte reports whether any byte of x is b.
func hasByte(x uint64, b byte) bool { return hasZero(x ^ (lsb * uint64(b))) }

// plain8 reports whether all eight bytes of x are ones Append copies as
// they are: ASCII, not a control character, not '"' or '\\', and with html
// not '<', '>' or '&'.
func plain8(x uint64, html bool) bool {
	if x&msb != 0 || (x-lsb*0x20)&^x&msb != 0 || hasByte(x, '"') || hasByte(x, '\\') {
		return false
	}
	return !html || !(hasByte(x, '<') || hasByte(x, '>') || hasByte(x, '&'))
}
