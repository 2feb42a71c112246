package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// The hand-encoded request line must be byte for byte what logrus's JSON
// formatter writes for the same fields.
func TestRequestLineMatchesLogrus(t *testing.T) {
	now := time.Date(2026, 11, 25, 19, 8, 31, 123456789, time.UTC)
	lines := []requestLine{
		{requestID: "req_1", spiffeID: "spiffe://example.org/tenant/acme/app/support", kind: "application", tenant: "acme",
			model: "gpt-4o-mini", provider: "openai", allow: true, status: 200, latencyMS: 1.234, totalTokens: 17, hasTokens: true},
		{requestID: "req_2", model: "<m>&\"\\\n\t\x01\x7f", status: 403, latencyMS: 0, err: errors.New("denied: a < b & c\u2028\xff")},
		{requestID: "req_3", model: "é😀", status: 502, latencyMS: 1e-7, provider: "p"},
		{requestID: "req_4", status: 200, latencyMS: 3e21, hasTokens: true},
		{requestID: "req_5", status: 200, latencyMS: 123456.789},
	}
	formatters := []*logrus.JSONFormatter{
		{TimestampFormat: time.RFC3339Nano},
		{},
		{DisableHTMLEscape: true, TimestampFormat: time.RFC3339Nano},
		{DisableTimestamp: true},
	}
	for i, jf := range formatters {
		for _, l := range lines {
			var out bytes.Buffer
			lg := logrus.New()
			lg.Out, lg.Formatter = &out, jf
			lg.WithFields(l.fields()).WithTime(now).Info("request")
			want := out.String()
			got := string(l.appendJSON(nil, jf, now))
			if got != want {
				t.Errorf("formatter %d:\ngot  %s\nwant %s", i, got, want)
			}
		}
	}
}

// Loggers the fast path does not cover still get the line, through logrus.
func TestRequestLineThroughLogrus(t *testing.T) {
	var out bytes.Buffer
	lg := logrus.New()
	lg.Out = &out // not a file: logrus serializes the writes
	lg.Formatter = &logrus.JSONFormatter{}
	writeRequestLine(lg, &requestLine{requestID: "req_9", status: 200})
	if !bytes.Contains(out.Bytes(), []byte(`"request_id":"req_9"`)) {
		t.Errorf("got %q, want the request line", out.String())
	}
	lg.Out = io.Discard
	lg.Level = logrus.WarnLevel
	if n := testing.AllocsPerRun(10, func() { writeRequestLine(lg, &requestLine{requestID: "req_9"}) }); n != 0 {
		t.Errorf("a disabled info level costs %v allocs, want 0", n)
	}
}

func BenchmarkRequestLine(b *testing.B) {
	lg := logrus.New()
	lg.Out = io.Discard
	lg.Formatter = &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	l := requestLine{requestID: "req_0123456789abcdef01234567", spiffeID: "spiffe://example.org/tenant/acme/app/support", kind: "application",
		tenant: "acme", model: "gpt-4o-mini", provider: "openai", allow: true, status: 200, latencyMS: 1.234, totalTokens: 17, hasTokens: true}
	b.ReportAllocs()
	for b.Loop() {
		writeRequestLine(lg, &l)
	}
}

func TestAttemptListMatchesEncodingJSON(t *testing.T) {
	for _, l := range [][]attempt{
		nil,
		{{Provider: "openai", Model: "gpt-4o-mini", Status: 200, LatencyMS: 12.345}},
		{{Provider: "a<b>", Model: "m&\"\u2028\xff", Error: "dial tcp: refused", LatencyMS: 1e-9},
			{Provider: "p", Model: "m", Status: 503, LatencyMS: 0}},
	} {
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(attemptList(l))
		if err != nil {
			t.Fatal(err)
		}
		if l == nil {
			want = []byte("[]") // never encoded: the record omits an empty list
		}
		if string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
