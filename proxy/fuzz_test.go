package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

func FuzzParseRequests(f *testing.F) {
	f.Add(uint8(0), []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	f.Add(uint8(1), []byte(`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f"},{"type":"function_call_output","call_id":"c","output":"r"}]}`))
	f.Add(uint8(2), []byte(`{"model":"m","input":[[1,2],[3]]}`))
	f.Add(uint8(3), []byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`))
	f.Add(uint8(4), []byte(`{"model":"m","system":"s","thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`))
	parsers := []func([]byte, []byte) (*LLMRequest, error){ParseChatRequest, ParseResponsesRequest, ParseEmbeddingsRequest, ParseMessagesRequest, ParseCountTokensRequest}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req, err := parsers[int(which)%len(parsers)](body, testKey)
		if err != nil {
			return
		}
		if req.Model == "" || req.MaxTokens < 0 || req.Messages < 1 || len(req.Digest) != 64 {
			t.Fatalf("accepted a request without its invariants: %+v", req)
		}
		if req.API == APICountTokens && (req.MaxTokens != 0 || req.Stream) {
			t.Fatalf("a count with an output cap or a stream: %+v", req)
		}
	})
}

// FuzzReadTokenCount: a count_tokens answer is accepted only as an object
// with unique keys and a non-negative integer input_tokens, which a strict
// decoder reads the same.
func FuzzReadTokenCount(f *testing.F) {
	f.Add([]byte(`{"input_tokens":42}`))
	f.Add([]byte(`{"input_tokens":1,"context_management":{"original_input_tokens":2}}`))
	f.Add([]byte(`{"input_tokens":1,"Input_tokens":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := readTokenCount(body)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if n < 0 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("accepted %d from %q", n, body)
		}
		var exact int64
		if json.Unmarshal(m["input_tokens"], &exact) != nil || exact != n {
			t.Fatalf("read %d from %q, whose input_tokens is %s", n, body, m["input_tokens"])
		}
	})
}

func FuzzChatToMessages(f *testing.F) {
	f.Add([]byte(chatToolChain))
	f.Add([]byte(`{"messages":[{"role":"tool","content":[{"type":"text","text":"r"}]}],"tool_choice":{"type":"function","function":{"name":"f"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := chatToMessages(body, "m", 0)
		if err != nil {
			return
		}
		var m messagesRequest
		if err := json.Unmarshal(out, &m); err != nil || len(m.Messages) == 0 || m.MaxTokens != defaultAnthropicMaxTokens {
			t.Fatalf("bad translation %s: %v", out, err)
		}
		for i := 1; i < len(m.Messages); i++ {
			if m.Messages[i].Role == m.Messages[i-1].Role {
				t.Fatalf("roles do not alternate: %s", out)
			}
		}
	})
}

func FuzzMessagesToChat(f *testing.F) {
	f.Add([]byte(`{"id":"m","type":"message","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, _, err := messagesToChat(body, 0)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
		_, e := messagesErrorToChat(500, body)
		if !json.Valid(e) {
			t.Fatalf("invalid error JSON: %s", e)
		}
	})
}

// FuzzStreamCodecs feeds arbitrary streams through every codec in awkward
// pieces: no panic, passthrough codecs relay the bytes unchanged, and a
// stream either ends cleanly or with one of the tap's errors.
func FuzzStreamCodecs(f *testing.F) {
	f.Add(uint8(0), []byte(okStream), uint8(7))
	f.Add(uint8(1), []byte(anthropicStream), uint8(3))
	f.Add(uint8(2), []byte("event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\",\"id\":\"i\",\"name\":\"f\"}}\n\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"total_tokens\":3}}}\n\n"), uint8(5))
	f.Add(uint8(3), []byte(anthropicStream), uint8(1))
	f.Fuzz(func(t *testing.T, which uint8, data []byte, step uint8) {
		codecs := []sseCodec{chatCodec{}, &messagesCodec{}, &responsesCodec{}, &chatFromMessages{includeUsage: true}}
		c := codecs[int(which)%len(codecs)]
		n := int(step%64) + 1
		tp := newCodecTap(&chunkedReader{data: data, sizes: repeat(n, len(data)/n+1), final: io.EOF}, true, c, nil)
		if which&4 != 0 {
			tp.authorize = func(name string) error {
				if name == "f" {
					return &toolDeniedError{Name: name}
				}
				return nil
			}
		}
		out, err := io.ReadAll(tp)
		if c.passthrough() && tp.authorize == nil && !bytes.HasPrefix(out, data) {
			t.Fatal("relay changed the upstream bytes")
		}
		var denied *toolDeniedError
		if err != nil && !errors.Is(err, errStreamIncomplete) && !errors.As(err, &denied) && !errors.Is(err, errUninspectable) && c.passthrough() {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
