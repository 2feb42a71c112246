package proxy

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// With n > 1, each choice numbers its tool calls from 0. A tool call of a
// second choice must be re-authorized on its own, not taken for the first
// choice's call of the same index.
func TestChatStreamToolCallPerChoice(t *testing.T) {
	const stream = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"call_b","type":"function","function":{"name":"send_email","arguments":""}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}

data: [DONE]

`
	var checked []string
	tp := newCodecTap(io.NopCloser(strings.NewReader(stream)), true, chatCodec{}, nil)
	tp.authorize = func(name string) error {
		checked = append(checked, name)
		if name == "send_email" {
			return &toolDeniedError{Name: name, Reasons: []string{"not for you"}}
		}
		return nil
	}
	out, err := io.ReadAll(tp)
	if err == nil {
		t.Errorf("stream ended cleanly; want the denial of send_email")
	}
	if strings.Contains(string(out), `"name":"send_email"`) {
		t.Errorf("the second choice's denied tool call reached the client:\n%s", out)
	}
	if got, want := strings.Join(checked, ","), "get_weather,send_email"; got != want {
		t.Errorf("re-authorized %q, want %q", got, want)
	}
}

// A tool call whose index is past what the gateway tracks must not be
// relayed unchecked.
func TestChatStreamToolCallIndexOutOfRange(t *testing.T) {
	const stream = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":5000,"id":"call_a","type":"function","function":{"name":"send_email","arguments":"{}"}}]}}]}

data: [DONE]

`
	tp := newCodecTap(io.NopCloser(strings.NewReader(stream)), true, chatCodec{}, nil)
	tp.authorize = func(name string) error { return &toolDeniedError{Name: name, Reasons: []string{"not for you"}} }
	out, err := io.ReadAll(tp)
	if err == nil || strings.Contains(string(out), `"name":"send_email"`) {
		t.Errorf("err = %v, out:\n%s\nwant the call withheld", err, out)
	}
}

// Past the codecs' bound on tracked tool calls, a further call must stop the
// stream, not pass unchecked.
func TestStreamToolCallsPastBound(t *testing.T) {
	build := func(line func(i int, name string) string) string {
		var b strings.Builder
		for i := 0; i <= maxStreamToolCalls; i++ {
			name := "get_weather"
			if i == maxStreamToolCalls {
				name = "send_email"
			}
			b.WriteString(line(i, name))
		}
		return b.String()
	}
	cases := map[string]struct {
		codec  sseCodec
		stream string
	}{
		"messages": {&messagesCodec{}, build(func(i int, name string) string {
			return fmt.Sprintf("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t%d\",\"name\":%q,\"input\":{}}}\n\n", i, i, name)
		}) + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		"responses": {&responsesCodec{}, build(func(i int, name string) string {
			return fmt.Sprintf("event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":%d,\"item\":{\"type\":\"function_call\",\"id\":\"fc%d\",\"call_id\":\"c%d\",\"name\":%q,\"arguments\":\"\"}}\n\n", i, i, i, name)
		}) + "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n"},
		"chat": {chatCodec{}, build(func(i int, name string) string {
			return fmt.Sprintf("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,\"id\":\"c%d\",\"function\":{\"name\":%q,\"arguments\":\"\"}}]}}]}\n\n", i, i, name)
		}) + "data: [DONE]\n\n"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tp := newCodecTap(io.NopCloser(strings.NewReader(c.stream)), true, c.codec, nil)
			tp.authorize = func(n string) error {
				if n == "send_email" {
					return &toolDeniedError{Name: n, Reasons: []string{"not for you"}}
				}
				return nil
			}
			out, err := io.ReadAll(tp)
			if err == nil || strings.Contains(string(out), `"send_email"`) {
				t.Errorf("err = %v; send_email relayed: %v", err, strings.Contains(string(out), `"send_email"`))
			}
		})
	}
}
