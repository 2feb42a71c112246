package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkedReader returns the input in pieces of the given sizes, then the
// final error, so tests can split SSE lines at awkward places.
type chunkedReader struct {
	data  []byte
	sizes []int
	final error
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.final
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = min(r.sizes[0], n)
		r.sizes = r.sizes[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func (r *chunkedReader) Close() error { return nil }

const okStream = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}

data: [DONE]

`

func TestTapSSE(t *testing.T) {
	splits := map[string][]int{
		"whole":        nil,
		"byte by byte": repeat(1, len(okStream)),
		"odd pieces":   {7, 100, 3, 250, 1, 64, 999},
	}
	for name, sizes := range splits {
		t.Run(name, func(t *testing.T) {
			var finished *tap
			tp := newTap(&chunkedReader{data: []byte(okStream), sizes: sizes, final: io.EOF}, true, func(x *tap) { finished = x })
			out, err := io.ReadAll(tp)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if string(out) != okStream {
				t.Fatalf("relayed bytes differ from upstream bytes")
			}
			if finished == nil {
				t.Fatal("onFinish not called at EOF")
			}
			if finished.err != nil {
				t.Fatalf("err = %v, want nil", finished.err)
			}
			if got, want := *finished.usage, (Usage{11, 7, 18}); got != want {
				t.Errorf("usage = %+v, want %+v", got, want)
			}
			calls := finished.ToolCalls(tapKey)
			if len(calls) != 1 || calls[0].ID != "call_9" || calls[0].Name != "get_weather" {
				t.Fatalf("tool calls = %+v", calls)
			}
			if calls[0].ArgumentsDigest != argsDigest(tapKey, `{"city":"Paris"}`) {
				t.Errorf("arguments digest = %s", calls[0].ArgumentsDigest)
			}
			if finished.events != 7 {
				t.Errorf("events = %d, want 7", finished.events)
			}
		})
	}
}

func TestTapSSEFailures(t *testing.T) {
	cut := okStream[:strings.Index(okStream, "data: [DONE]")]
	tests := []struct {
		name  string
		final error
		data  string
	}{
		{"connection reset mid-stream", io.ErrUnexpectedEOF, okStream[:200]},
		{"clean EOF without [DONE]", io.EOF, cut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var finished *tap
			tp := newTap(&chunkedReader{data: []byte(tt.data), final: tt.final}, true, func(x *tap) { finished = x })
			out, err := io.ReadAll(tp)
			if err == nil {
				t.Fatal("ReadAll succeeded; a broken stream must end in an error, not a clean EOF")
			}
			if !bytes.HasPrefix(out, []byte(tt.data)) {
				t.Fatal("bytes before the failure were not relayed unchanged")
			}
			tail := string(out[len(tt.data):])
			if !strings.HasPrefix(tail, "data: {\"error\"") || !strings.HasSuffix(tail, "\n\n") {
				t.Fatalf("no error event after the failure; tail = %q", tail)
			}
			if finished == nil || finished.err == nil {
				t.Fatal("failure not reported to onFinish")
			}
		})
	}
}

func TestTapJSON(t *testing.T) {
	body := `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"search","arguments":"{\"q\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`
	var finished *tap
	tp := newTap(io.NopCloser(iotest.HalfReader(strings.NewReader(body))), false, func(x *tap) { finished = x })
	out, err := io.ReadAll(tp)
	if err != nil || string(out) != body {
		t.Fatalf("ReadAll = %q, %v", out, err)
	}
	if finished == nil || *finished.usage != (Usage{3, 4, 7}) {
		t.Fatalf("usage not captured: %+v", finished)
	}
	if c := finished.ToolCalls(tapKey); len(c) != 1 || c[0].Name != "search" || c[0].ArgumentsDigest != argsDigest(tapKey, `{"q":1}`) {
		t.Fatalf("tool calls = %+v", c)
	}
}

func TestTapCloseBeforeEnd(t *testing.T) {
	var finished *tap
	tp := newTap(&chunkedReader{data: []byte(okStream), sizes: []int{10}, final: io.EOF}, true, func(x *tap) { finished = x })
	buf := make([]byte, 10)
	if _, err := tp.Read(buf); err != nil {
		t.Fatal(err)
	}
	_ = tp.Close()
	if finished == nil || finished.err == nil {
		t.Fatal("closing an unfinished response must report it as failed")
	}
}

func TestTapLongLineIsBounded(t *testing.T) {
	long := "data: {\"usage\":{\"total_tokens\":1}," + strings.Repeat("x", maxSSELine) + "}\n\ndata: [DONE]\n\n"
	var finished *tap
	tp := newTap(&chunkedReader{data: []byte(long), sizes: repeat(4096, len(long)/4096+1), final: io.EOF}, true, func(x *tap) { finished = x })
	if _, err := io.ReadAll(tp); err != nil {
		t.Fatal(err)
	}
	if finished.usage != nil {
		t.Error("an over-long line was inspected")
	}
	if cap(tp.line) > 2*maxSSELine {
		t.Errorf("line buffer grew to %d bytes", cap(tp.line))
	}
}

func FuzzTapSSE(f *testing.F) {
	f.Add([]byte(okStream), uint8(7))
	f.Add([]byte("data: [DONE]\n\n"), uint8(1))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":99999}]}}]}\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		n := int(step%64) + 1
		tp := newTap(&chunkedReader{data: data, sizes: repeat(n, len(data)/n+1), final: io.EOF}, true, nil)
		out, err := io.ReadAll(tp)
		if !bytes.HasPrefix(out, data) {
			t.Fatal("relay changed the upstream bytes")
		}
		if err == nil && len(out) != len(data) {
			t.Fatal("clean end with extra bytes")
		}
		if err != nil && !errors.Is(err, errStreamIncomplete) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}
