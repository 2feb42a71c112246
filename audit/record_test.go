package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenEvents are the records of testdata/chain.golden and of the worked
// example in docs/audit-format.md.
func goldenEvents() []*Event {
	return []*Event{
		{Type: "startup", Detail: map[string]any{"version": "dev"}},
		{
			Type: "decision", RequestID: "req-1", Action: "llm.invoke",
			Principal: &Principal{SPIFFEID: "spiffe://example.org/tenant/acme/agent/triage", TrustDomain: "example.org", Kind: "agent", Tenant: "acme", Name: "triage"},
			Request:   &Request{API: "chat.completions", Model: "gpt-4o-mini", Provider: "openai", UpstreamModel: "gpt-4o-mini-2024-07-18", MaxTokens: 256, Prompt: &Prompt{Bytes: 1187, Messages: 3, Digest: "6a421b70c572afe73cb349960f835b7a0c1f583b851c341dacd57b8d19189c55"}, Tools: []string{"search"}},
			Decision:  &Decision{Allow: true, Reasons: []string{"tenant model allowed"}, Revision: "rev-7", Obligations: map[string]any{"max_tokens": 256}},
		},
		{
			Type: "completion", RequestID: "req-1", Action: "llm.invoke", Status: 200,
			Usage:     &Usage{PromptTokens: 301, CompletionTokens: 42, TotalTokens: 343},
			ToolCalls: []ToolCall{{ID: "call_1", Name: "search", ArgumentsDigest: "45099b63ec44022d6d9f38e7698585f15ef9bd638758be582c87c3b001a86ad2"}},
			LatencyMS: 812.5,
		},
	}
}

func TestGoldenChain(t *testing.T) {
	l, dir := openTest(t, Options{Clock: stepClock(1500 * time.Microsecond)})
	for i, ev := range goldenEvents() {
		seq, err := l.Append(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) {
			t.Errorf("seq: got %d, want %d", seq, i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, firstSegment(dir))
	golden := filepath.Join("testdata", "chain.golden")
	if *update {
		writeFile(t, golden, got)
	}
	if want := readFile(t, golden); !bytes.Equal(got, want) {
		t.Errorf("segment bytes differ from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	if _, err := Verify(dir); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestGoldenHashing pins the hashing rule on the golden file itself: prev of
// line n+1 is SHA-256 of line n without its newline, computed here with
// nothing but crypto/sha256 and string splitting.
func TestGoldenHashing(t *testing.T) {
	lines := strings.SplitAfter(string(readFile(t, filepath.Join("testdata", "chain.golden"))), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("golden file does not end in a newline: %q", last)
	}
	lines = lines[:len(lines)-1]
	prev := strings.Repeat("0", 64)
	for i, line := range lines {
		want := `{"seq":` + string(rune('0'+i)) + `,"time":"`
		if !strings.HasPrefix(line, want) {
			t.Fatalf("line %d: got prefix %.30q, want %q", i+1, line, want)
		}
		if got := line[strings.Index(line, `"prev":"`)+8:][:64]; got != prev {
			t.Errorf("line %d: prev got %s, want %s", i+1, got, prev)
		}
		sum := sha256.Sum256([]byte(strings.TrimSuffix(line, "\n")))
		prev = hex.EncodeToString(sum[:])
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, segmentsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, firstSegment(dir), readFile(t, filepath.Join("testdata", "chain.golden")))
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Head != prev || rep.Records != uint64(len(lines)) || rep.Segments != 1 {
		t.Errorf("Verify report: got %+v, want head %s, %d records, 1 segment", rep, prev, len(lines))
	}
}

func TestParseHeaderRejects(t *testing.T) {
	good := `{"seq":1,"time":"2026-03-14T15:09:26.535Z","prev":"` + strings.Repeat("ab", 32) + `","type":"x"}`
	if _, err := parseHeader([]byte(good)); err != nil {
		t.Fatalf("good line rejected: %v", err)
	}
	tests := []struct {
		name, line, want string
	}{
		{"empty", ``, `does not start`},
		{"leading space", ` ` + good, `does not start`},
		{"leading zero seq", strings.Replace(good, `"seq":1`, `"seq":01`, 1), `canonical decimal`},
		{"negative seq", strings.Replace(good, `"seq":1`, `"seq":-1`, 1), `canonical decimal`},
		{"seq overflow", strings.Replace(good, `"seq":1`, `"seq":18446744073709551616`, 1), `out of range`},
		{"seq too long", strings.Replace(good, `"seq":1`, `"seq":123456789012345678901`, 1), `canonical decimal`},
		{"space after seq", strings.Replace(good, `"seq":1,`, `"seq":1 ,`, 1), `not followed by ,"time"`},
		{"time with offset", strings.Replace(good, `535Z`, `535+00:00`, 1), `not canonical`},
		{"time trailing zero", strings.Replace(good, `535Z`, `5350Z`, 1), `not canonical`},
		{"time garbage", strings.Replace(good, `2026-03-14T15:09:26.535Z`, `yesterday`, 1), `not canonical`},
		{"time unterminated", `{"seq":1,"time":"2026`, `not terminated`},
		{"uppercase prev", strings.Replace(good, strings.Repeat("ab", 32), strings.Repeat("AB", 32), 1), `lowercase hex`},
		{"short prev", strings.Replace(good, strings.Repeat("ab", 32), strings.Repeat("ab", 31), 1), `lowercase hex`},
		{"long prev", strings.Replace(good, strings.Repeat("ab", 32), strings.Repeat("ab", 33), 1), `not followed by ",`},
		{"no type", strings.Replace(good, `"type":"x"`, `"kind":"x"`, 1), `does not start with "type"`},
		{"bad json", strings.TrimSuffix(good, `}`), `not valid JSON`},
		{"trailing data", good + ` {}`, `not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHeader([]byte(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseRecordRoundTrip(t *testing.T) {
	lines := bytes.SplitAfter(readFile(t, filepath.Join("testdata", "chain.golden")), []byte("\n"))
	evs := goldenEvents()
	for i, ev := range evs {
		r, err := ParseRecord(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i) {
			t.Errorf("seq: got %d, want %d", r.Seq, i)
		}
		body, err := eventBody(&r.Event)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := eventBody(ev)
		if !bytes.Equal(body, want) {
			t.Errorf("record %d event re-marshals as\n%s\nwant\n%s", i, body, want)
		}
	}
}

func TestAppendRejectsHugeEvent(t *testing.T) {
	l, _ := openTest(t, Options{})
	_, err := l.Append(context.Background(), &Event{Type: "x", Error: strings.Repeat("e", MaxLineBytes)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := l.Append(context.Background(), &Event{Type: "after"}); err != nil {
		t.Errorf("a refused event must not fail the log: %v", err)
	}
}

// TestFormatDocQuotesGolden keeps the worked example in docs/audit-format.md
// in step with the golden records and their hashes.
func TestFormatDocQuotesGolden(t *testing.T) {
	doc := string(readFile(t, filepath.Join("..", "docs", "audit-format.md")))
	for i, line := range bytes.SplitAfter(readFile(t, filepath.Join("testdata", "chain.golden")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !strings.Contains(doc, string(line)) {
			t.Errorf("docs/audit-format.md does not quote golden line %d", i+1)
		}
		sum := HashLine(bytes.TrimSuffix(line, []byte("\n"))).String()
		if !strings.Contains(doc, sum+"  -") {
			t.Errorf("docs/audit-format.md does not show the sha256sum of line %d (%s)", i+1, sum)
		}
	}
	if ckpt := readFile(t, filepath.Join("testdata", "checkpoint.golden")); !strings.Contains(doc, string(ckpt)) {
		t.Error("docs/audit-format.md does not quote testdata/checkpoint.golden")
	}
}

// TestDecodeLowerHex compares the one-pass decoder with encoding/hex plus a
// lowercase check, for every byte value at every position.
func TestDecodeLowerHex(t *testing.T) {
	src := []byte("0123456789abcdef0123456789abcdef")
	for pos := range src {
		for c := range 256 {
			in := bytes.Clone(src)
			in[pos] = byte(c)
			want, err := hex.DecodeString(string(in))
			wantOK := err == nil && !bytes.ContainsAny(in, "ABCDEF")
			got := make([]byte, len(in)/2)
			ok := decodeLowerHex(got, in)
			if ok != wantOK || (ok && !bytes.Equal(got, want)) {
				t.Fatalf("decodeLowerHex(%q) = %x, %v; want %x, %v", in, got, ok, want, wantOK)
			}
		}
	}
	if decodeLowerHex(make([]byte, 2), []byte("abc")) {
		t.Error("odd length accepted")
	}
}
