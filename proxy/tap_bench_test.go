package proxy

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// sseStream is an OpenAI chat completion stream as the fake provider sends
// it: a role chunk, n content chunks, a finish chunk, a usage chunk and
// [DONE]. It returns the bytes and the length of each event.
func sseStream(n int) ([]byte, []int) {
	var buf bytes.Buffer
	var sizes []int
	event := func(data string) {
		before := buf.Len()
		buf.WriteString("data: ")
		buf.WriteString(data)
		buf.WriteString("\n\n")
		sizes = append(sizes, buf.Len()-before)
	}
	const head = `{"id":"chatcmpl-fake000000000042","object":"chat.completion.chunk","created":1764000000,"model":"gpt-4o-mini","system_fingerprint":"fp_fake",`
	event(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`)
	for i := range n {
		event(head + fmt.Sprintf(`"choices":[{"index":0,"delta":{"content":"word%d "},"logprobs":null,"finish_reason":null}],"usage":null}`, i))
	}
	event(head + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`)
	event(head + `"choices":[],"usage":{"prompt_tokens":256,"completion_tokens":50,"total_tokens":306}}`)
	event("[DONE]")
	return buf.Bytes(), sizes
}

// BenchmarkTapSSE relays a 50-event stream through the tap, one event per
// upstream read (as a provider flushes them), and reports the cost per event.
func BenchmarkTapSSE(b *testing.B) {
	stream, sizes := sseStream(50)
	p := make([]byte, 32<<10)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		var got *Usage
		t := newTap(&chunkedReader{data: stream, sizes: sizes, final: io.EOF}, true, func(t *tap) { got = t.usage })
		for {
			if _, err := t.Read(p); err != nil {
				break
			}
		}
		if got == nil || got.TotalTokens != 306 {
			b.Fatalf("usage = %+v, want total 306", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sizes)), "ns/event")
}

// BenchmarkTapSSEContentEvent is one plain content event: the common case,
// which should cost a few byte scans and no decoding.
func BenchmarkTapSSEContentEvent(b *testing.B) {
	stream, sizes := sseStream(1)
	ev := stream[sizes[0] : sizes[0]+sizes[1]]
	t := newTap(io.NopCloser(nil), true, nil)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		t.observe(ev)
	}
}

// BenchmarkTapJSON is a non-streamed completion captured and parsed for usage.
func BenchmarkTapJSON(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-fake000000000042","object":"chat.completion","created":1764000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from fake gpt-4o-mini: you said Hello. Summarise the customer","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":256,"completion_tokens":11,"total_tokens":267},"system_fingerprint":"fp_fake"}`)
	p := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var got *Usage
		t := newTap(&chunkedReader{data: body, final: io.EOF}, false, func(t *tap) { got = t.usage })
		for {
			if _, err := t.Read(p); err != nil {
				break
			}
		}
		if got == nil || got.TotalTokens != 267 {
			b.Fatalf("usage = %+v", got)
		}
	}
}
