package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
)

// marshalBoth encodes ev with appendEvent and with encoding/json and fails
// t unless both agree on the bytes, or both refuse.
func marshalBoth(t *testing.T, ev *Event) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, gerr := appendEvent([]byte("prefix"), ev)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("error: got %v, want %v (event %#v)", gerr, werr, ev)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("appendEvent dropped what was in buf: %q", got)
	}
	if got = got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got: %s\nwant: %s", got, want)
	}
}

type jsonText struct{ S string }

func (j jsonText) MarshalJSON() ([]byte, error) {
	return []byte(" {\n\"s\" : " + `"` + j.S + `"` + "}\n"), nil
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		ev   *Event
	}{
		{"zero", &Event{}},
		{"golden startup", goldenEvents()[0]},
		{"golden decision", goldenEvents()[1]},
		{"golden completion", goldenEvents()[2]},
		{"html and control", &Event{Type: "<a href=\"x\">&amp;</a>", Error: "tab\there\nnl\r\b\f\x00\x1f\x7f\\"}},
		{"line separators", &Event{Type: "a\u2028b\u2029c", RequestID: "\xff\xfeinvalid\xc3", Action: "é☃💡"}},
		{"nil reasons", &Event{Type: "decision", Decision: &Decision{}}},
		{"empty reasons", &Event{Type: "decision", Decision: &Decision{Reasons: []string{}}}},
		{"empty maps and slices", &Event{Type: "x", Detail: map[string]any{}, ToolCalls: []ToolCall{}, Decision: &Decision{Obligations: map[string]any{}}, Request: &Request{Tools: []string{}}}},
		{"request minimal", &Event{Type: "x", Request: &Request{Stream: true}}},
		{"negative ints", &Event{Type: "x", Status: -1, Usage: &Usage{PromptTokens: -5, TotalTokens: math.MaxInt64}, Request: &Request{MaxTokens: math.MinInt64}}},
		{"floats small", &Event{Type: "x", LatencyMS: 1e-7}},
		{"floats large", &Event{Type: "x", LatencyMS: 1e21}},
		{"floats edge", &Event{Type: "x", LatencyMS: 1e-6}},
		{"floats negative", &Event{Type: "x", LatencyMS: -123456.789}},
		{"floats tiny", &Event{Type: "x", LatencyMS: 5e-324}},
		{"negative zero", &Event{Type: "x", LatencyMS: math.Copysign(0, -1)}},
		{"NaN", &Event{Type: "x", LatencyMS: math.NaN()}},
		{"Inf", &Event{Type: "x", LatencyMS: math.Inf(1)}},
		{"NaN in detail", &Event{Type: "x", Detail: map[string]any{"f": math.NaN()}}},
		{"detail types", &Event{Type: "x", Detail: map[string]any{
			"z": nil, "s": "<s>", "b": true, "i": -3, "i64": int64(math.MinInt64), "u64": uint64(math.MaxUint64),
			"f": 0.1, "fe": 1e300, "ss": []string{"a", "<"}, "ssnil": []string(nil),
			"nested": map[string]any{"b": 1, "a": []any{1, "x", nil}}, "time": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			"raw": json.RawMessage(" [1, 2]\n"), "marshaler": jsonText{"<&>"}, "f32": float32(0.1), "u8": uint8(7),
			"bytes": []byte("hi"), "ptr": &Usage{1, 2, 3}, "\u2028key<": "v", "": "empty key",
		}}},
		{"obligations", &Event{Type: "x", Decision: &Decision{Allow: true, CacheHit: true, Reasons: []string{"a", "b"}, Revision: "r", Obligations: map[string]any{"tools": []string{"x"}, "max_tokens": 10, "require_approval": false}}}},
		{"unsupported detail value", &Event{Type: "x", Detail: map[string]any{"ch": make(chan int)}}},
		{"tool calls", &Event{Type: "x", ToolCalls: []ToolCall{{}, {ID: "<", Name: "\u2029", ArgumentsDigest: "&"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { marshalBoth(t, tc.ev) })
	}
}

// FuzzAppendEvent holds the hand-written encoder to encoding/json: same
// bytes for every event, or an error from both.
func FuzzAppendEvent(f *testing.F) {
	f.Add("decision", "req-1", "llm.invoke", "spiffe://example.org/a", "<&>", "\u2028", 200, int64(256), 812.5, true, uint8(0xff), "k", "v")
	f.Add("", "", "", "", "", "", 0, int64(0), 0.0, false, uint8(0), "", "")
	f.Add("\x00\x1f\x7f\"\\", "\xff", "\xe2\x80", "é", "\t", "\n", -1, int64(-1), 1e-7, false, uint8(0x55), "<", "\u2029")
	f.Fuzz(func(t *testing.T, typ, rid, action, s1, s2, s3 string, status int, n int64, lat float64, flag bool, mask uint8, key, val string) {
		ev := &Event{Type: typ, RequestID: rid, Action: action, Status: status, LatencyMS: lat, Error: s3}
		if mask&1 != 0 {
			ev.Principal = &Principal{SPIFFEID: s1, TrustDomain: s2, Kind: s3, Tenant: key, Name: val}
		}
		if mask&2 != 0 {
			ev.Request = &Request{API: s1, Model: s2, Provider: s3, UpstreamModel: key, Stream: flag, MaxTokens: int(n)}
			if mask&16 != 0 {
				ev.Request.Prompt = &Prompt{Bytes: status, Messages: int(n), Digest: val}
				ev.Request.Tools = []string{s1, key}
			}
		}
		if mask&4 != 0 {
			ev.Decision = &Decision{Allow: flag, Revision: s2, CacheHit: !flag}
			if mask&32 != 0 {
				ev.Decision.Reasons = []string{s1, s3}
				ev.Decision.Obligations = map[string]any{key: n, val: s1, "tools": []string{s2}}
			}
		}
		if mask&8 != 0 {
			ev.Usage = &Usage{PromptTokens: int(n), CompletionTokens: status, TotalTokens: int(n) + status}
			ev.ToolCalls = []ToolCall{{ID: s1, Name: s2, ArgumentsDigest: s3}}
		}
		if mask&64 != 0 {
			ev.Detail = map[string]any{key: val, s1: lat, s2: flag, s3: nil, "n": n, "m": map[string]any{key: []any{val, lat}}}
		}
		if mask&128 != 0 {
			ev.Detail = map[string]any{key: int(n), val: float64(n)}
		}
		marshalBoth(t, ev)
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := benchEvent()
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendEvent(buf[:0], ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type appenderFunc func([]byte) ([]byte, error)

func (f appenderFunc) AppendJSON(b []byte) ([]byte, error) { return f(b) }

func TestJSONAppenderInDetail(t *testing.T) {
	ev := &Event{Type: "completion", Detail: map[string]any{
		"attempts": appenderFunc(func(b []byte) ([]byte, error) { return append(b, `[{"provider":"fake"}]`...), nil }),
	}}
	got, err := appendEventJSON(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"detail":{"attempts":[{"provider":"fake"}]}`; !bytes.Contains(got, []byte(want)) {
		t.Errorf("event = %s, want it to contain %s", got, want)
	}
	ev.Detail["attempts"] = appenderFunc(func(b []byte) ([]byte, error) { return append(b, "[\n]"...), nil })
	if _, err := appendEventJSON(nil, ev); !errors.Is(err, errNewlineInJSON) {
		t.Errorf("appender writing a newline: err = %v, want errNewlineInJSON", err)
	}
}
