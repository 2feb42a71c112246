package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// An event that may hold a tool call but does not decode as the codec
// expects stops a stream whose tool calls are checked before it reaches
// the client (a lenient SDK would still read the call); a plain relay,
// which checks nothing, passes it unchanged.
func TestUndecodableToolEventStopsGuardedStream(t *testing.T) {
	tests := []struct {
		name  string
		codec func() sseCodec
		event string // holds a call of f with a field of another type
		end   string
	}{
		{"chat", func() sseCodec { return chatCodec{} },
			`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":{}}}]}}]}`,
			"data: [DONE]\n\n"},
		{"messages", func() sseCodec { return &messagesCodec{} },
			`data: {"type":"content_block_start","index":"0","content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`,
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		{"responses", func() sseCodec { return &responsesCodec{} },
			`data: {"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"i","call_id":"c","name":"f","arguments":7}}`,
			"data: {\"type\":\"response.completed\",\"response\":{}}\n\n"},
	}
	for _, tt := range tests {
		stream := tt.event + "\n\n" + tt.end
		t.Run(tt.name+" guarded", func(t *testing.T) {
			var asked []string
			tp := newCodecTap(io.NopCloser(strings.NewReader(stream)), true, tt.codec(), nil)
			tp.authorize = func(name string) error { asked = append(asked, name); return nil }
			out, err := io.ReadAll(tp)
			if !errors.Is(err, errUninspectable) {
				t.Fatalf("err = %v, want errUninspectable", err)
			}
			if bytes.Contains(out, []byte(tt.event)) {
				t.Errorf("the undecodable event reached the client: %s", out)
			}
			if len(asked) != 0 {
				t.Errorf("authorized %v from an event that did not decode", asked)
			}
		})
		t.Run(tt.name+" plain relay", func(t *testing.T) {
			tp := newCodecTap(io.NopCloser(strings.NewReader(stream)), true, tt.codec(), nil)
			out, err := io.ReadAll(tp)
			if err != nil || string(out) != stream {
				t.Errorf("got %q, %v; want the stream unchanged", out, err)
			}
		})
	}
}
