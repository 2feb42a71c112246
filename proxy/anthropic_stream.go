package proxy

import (
	"encoding/json"
)

// chatFromMessages translates an Anthropic Messages event stream into OpenAI
// chat completion chunks, event by event, holding nothing but a few ids: it
// is the stream side of serving a chat completion from an Anthropic model.
// Usage, tool calls and their re-authorization come from messagesCodec.
type chatFromMessages struct {
	messagesCodec
	created      int64
	includeUsage bool // the client asked for stream_options.include_usage

	id, model string
	toolIndex map[int]int // content block index → tool_calls index
	ntools    int
}

func (*chatFromMessages) passthrough() bool { return false }

func (*chatFromMessages) failure(msg string) []byte { return chatCodec{}.failure(msg) }

func (c *chatFromMessages) line(t *tap, line []byte) error {
	data, ok := sseData(line)
	if !ok {
		return nil // event names and blank lines belong to the Anthropic framing
	}
	t.events++
	var ev anthropicEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return err
	}
	if err := c.event(t, &ev); err != nil {
		return err
	}
	switch ev.Type {
	case "message_start":
		if ev.Message != nil {
			c.id, c.model = ev.Message.ID, ev.Message.Model
		}
		empty := ""
		c.chunk(t, &chatOutMsg{Role: "assistant", Content: &empty}, nil)
	case "content_block_start":
		if b := ev.ContentBlock; b != nil && b.Type == "tool_use" {
			if c.toolIndex == nil {
				c.toolIndex = map[int]int{}
			}
			k := c.ntools
			c.ntools++
			c.toolIndex[ev.Index] = k
			oc := chatOutCall{Index: &k, ID: b.ID, Type: "function"}
			oc.Function.Name = b.Name
			c.chunk(t, &chatOutMsg{ToolCalls: []chatOutCall{oc}}, nil)
		}
	case "content_block_delta":
		d := ev.Delta
		if d == nil {
			return nil
		}
		switch d.Type {
		case "text_delta":
			text := d.Text
			c.chunk(t, &chatOutMsg{Content: &text}, nil)
		case "input_json_delta":
			k, ok := c.toolIndex[ev.Index]
			if !ok {
				return nil
			}
			oc := chatOutCall{Index: &k}
			oc.Function.Arguments = d.PartialJSON
			c.chunk(t, &chatOutMsg{ToolCalls: []chatOutCall{oc}}, nil)
		}
	case "message_delta":
		if ev.Delta != nil && ev.Delta.StopReason != nil {
			fr := finishReason(*ev.Delta.StopReason)
			c.chunk(t, &chatOutMsg{}, &fr)
		}
	case "message_stop":
		if c.includeUsage && t.usage != nil {
			t.out = append(t.out, sseEvent("", chatCompletion{ID: c.id, Object: "chat.completion.chunk",
				Created: c.created, Model: c.model, Choices: []chatChoice{}, Usage: t.usage})...)
		}
		t.out = append(t.out, "data: [DONE]\n\n"...)
	case "error":
		msg := "the provider reported an error mid-stream"
		if ev.Error != nil {
			msg = ev.Error.Message
		}
		t.out = append(t.out, c.failure(msg)...)
	}
	return nil
}

func (c *chatFromMessages) chunk(t *tap, delta *chatOutMsg, finish *string) {
	t.out = append(t.out, sseEvent("", chatCompletion{
		ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
		Choices: []chatChoice{{Index: 0, Delta: delta, FinishReason: finish}},
	})...)
}
