package proxy

import (
	"bytes"
	"fmt"
)

// messagesCodec reads an Anthropic Messages event stream: usage from
// message_start and message_delta, tool_use blocks from content_block_start
// and their input from input_json_delta, the end from message_stop.
type messagesCodec struct {
	blocks map[int]*toolCallAcc // tool_use blocks by content block index
	in     anthropicUsage
}

// anthropicUsage is Anthropic's usage object.
type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// usage converts to the gateway's usage: cached input counts as prompt.
func (u anthropicUsage) usage() *Usage {
	p := u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	return &Usage{PromptTokens: p, CompletionTokens: u.OutputTokens, TotalTokens: p + u.OutputTokens}
}

// anthropicEvent is the part of a Messages stream event the gateway reads.
type anthropicEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message *struct {
		ID    string          `json:"id"`
		Model string          `json:"model"`
		Usage *anthropicUsage `json:"usage"`
	} `json:"message"`
	ContentBlock *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"content_block"`
	Delta *struct {
		Type        string  `json:"type"`
		Text        string  `json:"text"`
		PartialJSON string  `json:"partial_json"`
		StopReason  *string `json:"stop_reason"`
	} `json:"delta"`
	Usage *struct {
		InputTokens  *int `json:"input_tokens"`
		OutputTokens *int `json:"output_tokens"`
	} `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

var messagesKeys = [][]byte{
	[]byte(`"message_start"`), []byte(`"tool_use"`), []byte(`"input_json_delta"`),
	[]byte(`"message_delta"`), []byte(`"message_stop"`), []byte(`"error"`),
}

// containsAny reports whether b holds one of keys, or an escape (\u…) that
// could spell one as encoding/json reads it: only chunks it rules out skip
// the decode, so a provider cannot hide a tool call behind an escape.
func containsAny(b []byte, keys [][]byte) bool {
	if bytes.Contains(b, []byte(`\u`)) {
		return true
	}
	for _, k := range keys {
		if bytes.Contains(b, k) {
			return true
		}
	}
	return false
}

func (*messagesCodec) passthrough() bool { return true }

func (*messagesCodec) failure(msg string) []byte {
	var e anthropicError
	e.Type = "error"
	e.Error.Type = "api_error"
	e.Error.Message = msg
	return sseEvent("error", e)
}

func (c *messagesCodec) line(t *tap, line []byte) error {
	data := passLine(t, line)
	if data == nil {
		return nil
	}
	if containsAny(data, messagesKeys) {
		var ev anthropicEvent
		ok, err := t.decodeEvent(data, &ev)
		if err != nil {
			return err
		}
		if ok {
			if err := c.event(t, &ev); err != nil {
				return err
			}
		}
	}
	t.relay(line)
	return nil
}

// event records what one decoded event says. It is shared with the
// translating codec, which reads the same events.
func (c *messagesCodec) event(t *tap, ev *anthropicEvent) error {
	switch ev.Type {
	case "message_start":
		if ev.Message != nil && ev.Message.Usage != nil {
			c.in = *ev.Message.Usage
			t.usage = c.in.usage()
		}
	case "content_block_start":
		if b := ev.ContentBlock; b != nil && (b.Type == "tool_use" || b.Type == "server_tool_use") {
			if c.blocks == nil {
				c.blocks = map[int]*toolCallAcc{}
			}
			if len(c.blocks) >= maxStreamToolCalls {
				// Relayed untracked, the call would skip re-authorization.
				return fmt.Errorf("more than %d tool calls in one stream", maxStreamToolCalls)
			}
			acc := newToolCall(b.ID, b.Name)
			c.blocks[ev.Index] = acc
			t.calls = append(t.calls, acc)
			if b.Type == "tool_use" {
				return t.check(b.Name)
			}
		}
	case "content_block_delta":
		if d := ev.Delta; d != nil && d.Type == "input_json_delta" {
			if acc := c.blocks[ev.Index]; acc != nil {
				acc.args.Write([]byte(d.PartialJSON))
			}
		}
	case "message_delta":
		if u := ev.Usage; u != nil {
			if u.OutputTokens != nil {
				c.in.OutputTokens = *u.OutputTokens
			}
			if u.InputTokens != nil {
				c.in.InputTokens = *u.InputTokens
			}
			t.usage = c.in.usage()
		}
	case "message_stop":
		t.done = true
	case "error":
		t.failed = true
	}
	return nil
}
