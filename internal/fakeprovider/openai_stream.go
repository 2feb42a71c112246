package fakeprovider

import (
	"encoding/json"
	"strings"
)

// argFragment is how many bytes of tool arguments one chunk carries.
const argFragment = 8

type (
	chatChunk struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		ServiceTier       string          `json:"service_tier"`
		SystemFingerprint string          `json:"system_fingerprint"`
		Choices           []chunkChoice   `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
		Obfuscation       string          `json:"obfuscation,omitempty"`
	}
	chunkChoice struct {
		Index        int        `json:"index"`
		Delta        chunkDelta `json:"delta"`
		Logprobs     *struct{}  `json:"logprobs"`
		FinishReason *string    `json:"finish_reason"`
	}
	chunkDelta struct {
		Role      string         `json:"role,omitempty"`
		Content   *string        `json:"content,omitempty"`
		ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
	}
)

// chatStreamer emits the chunks of one streamed chat completion.
type chatStreamer struct {
	e     *sse
	c     chatCall
	base  chatChunk
	count int
}

// chunk sends one chunk with a single choice carrying delta.
func (cs *chatStreamer) chunk(delta chunkDelta, finish *string) bool {
	ch := cs.base
	ch.Choices = []chunkChoice{{Delta: delta, FinishReason: finish}}
	if cs.c.usage {
		ch.Usage = json.RawMessage("null")
	}
	if cs.c.obfusc {
		// Real streams pad each chunk with random characters; these are fixed.
		ch.Obfuscation = strings.Repeat("x", 1+cs.count%7)
	}
	cs.count++
	return cs.e.send("", ch)
}

// chatStream answers a chat completion as server-sent events: a role chunk,
// content or tool-call deltas, a finish_reason chunk, a usage chunk with no
// choices when stream_options.include_usage is set, then "data: [DONE]".
func (x *exchange) chatStream(c chatCall, r reply) {
	cs := &chatStreamer{e: x.startSSE(c.sc), c: c, base: chatChunk{
		ID:                x.id("chatcmpl-fake"),
		Object:            "chat.completion.chunk",
		Created:           x.s.clock().Unix(),
		Model:             c.req.Model,
		ServiceTier:       "default",
		SystemFingerprint: "fp_fake",
	}}
	// Scenario interruptions happen after half the content has gone out.
	stopAt := -1
	if c.sc.cut || c.sc.streamError {
		stopAt = max(1, len(r.chunks)/2)
	}
	if len(r.calls) == 0 {
		empty := ""
		if !cs.chunk(chunkDelta{Role: "assistant", Content: &empty}, nil) {
			return
		}
		for i, piece := range r.chunks {
			if i == stopAt {
				x.interruptChat(cs)
				return
			}
			if !cs.e.pause(c.sc) || !cs.chunk(chunkDelta{Content: &piece}, nil) {
				return
			}
		}
	}
	for i, tc := range r.calls {
		idx := i
		head := chatToolCall{Index: &idx, ID: tc.id, Type: "function"}
		head.Function.Name = tc.name
		delta := chunkDelta{ToolCalls: []chatToolCall{head}}
		if i == 0 {
			delta.Role = "assistant"
		}
		if !cs.e.pause(c.sc) || !cs.chunk(delta, nil) {
			return
		}
		for k, frag := range fragments(tc.args, argFragment) {
			if i == 0 && k == stopAt {
				x.interruptChat(cs)
				return
			}
			part := chatToolCall{Index: &idx}
			part.Function.Arguments = frag
			if !cs.e.pause(c.sc) || !cs.chunk(chunkDelta{ToolCalls: []chatToolCall{part}}, nil) {
				return
			}
		}
	}
	if stopAt >= 0 {
		// Fewer pieces than the stop point: interrupt before finishing.
		x.interruptChat(cs)
		return
	}
	reason := chatFinish(r.finish)
	if !cs.chunk(chunkDelta{}, &reason) {
		return
	}
	if c.usage {
		ch := cs.base
		ch.Choices = []chunkChoice{}
		u, _ := json.Marshal(newChatUsage(r))
		ch.Usage = u
		if !cs.e.send("", ch) {
			return
		}
	}
	cs.e.write("", []byte("[DONE]"))
}

// interruptChat ends a stream the way the scenario asks: a dropped
// connection, or an error event and no [DONE].
func (x *exchange) interruptChat(cs *chatStreamer) {
	if cs.c.sc.cut {
		cs.e.cut()
	}
	cs.e.send("", errScenario(500).openAIShape())
}
