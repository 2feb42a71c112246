package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

func reference(t testing.TB, s string, html bool) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \`, "ctl \x00\x01\x1f\x7f", "\b\f\n\r\t",
		"<script>&amp;</script>", "bad utf8 \xff\xfe", "line\u2028para\u2029", "日本語 ✓",
	} {
		for _, html := range []bool{true, false} {
			if got, want := Append(nil, s, html), reference(t, s, html); !bytes.Equal(got, want) {
				t.Errorf("Append(%q, html=%v) = %s, want %s", s, html, got, want)
			}
		}
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], "tenant <acme> & \"co\"\n", true) }); n != 0 {
		t.Errorf("Append allocates %v times", n)
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("a<b>&\"\\\x00\u2028\xff", true)
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := Append([]byte("x"), s, html), append([]byte("x"), reference(t, s, html)...); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q, %v) = %s, want %s", s, html, got, want)
		}
	})
}

func TestPlain8(t *testing.T) {
	// Each byte value in each of the eight positions, among plain bytes.
	for pos := range 8 {
		for b := range 256 {
			block := []byte("abcdefgh")
			block[pos] = byte(b)
			for _, html := range []bool{false, true} {
				want := b < 0x80 && safe[boolIndex(html)][b]
				if got := plain8(load8(string(block)), html); got != want {
					t.Errorf("plain8(%q, html=%v) = %v, want %v", block, html, got, want)
				}
			}
		}
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"digest", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"spiffe", "spiffe://example.org/tenant/acme/agent/triage-bot"},
		{"escapes", "line one\nline \"two\" <b>&</b>"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = Append(buf[:0], bc.s, true)
			}
		})
	}
}

// TestPlainRunMatchesPlain8 holds the written-out loop to plain8.
func TestPlainRunMatchesPlain8(t *testing.T) {
	for pos := range 8 {
		for b := range 256 {
			block := []byte("abcdefghijklmnop")
			block[8+pos] = byte(b)
			for _, html := range []bool{false, true} {
				want := 8
				if plain8(load8(string(block[8:])), html) {
					want = 16
				}
				if got := plainRun(string(block), html); got != want {
					t.Errorf("plainRun(%q, html=%v) = %d, want %d", block, html, got, want)
				}
			}
		}
	}
}
