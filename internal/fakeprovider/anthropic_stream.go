package fakeprovider

import "encoding/json"

type (
	antEvent struct {
		Type         string         `json:"type"`
		Message      *antMessageOut `json:"message,omitempty"`
		Index        *int           `json:"index,omitempty"`
		ContentBlock *antBlockOut   `json:"content_block,omitempty"`
		Delta        any            `json:"delta,omitempty"`
		Usage        *antUsage      `json:"usage,omitempty"`
		Error        any            `json:"error,omitempty"`
	}
	antTextDelta struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	antJSONDelta struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	}
	antMessageDelta struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
)

// messagesStream answers a Messages request as server-sent events:
// message_start, ping, per block content_block_start / content_block_delta
// (text_delta or input_json_delta) / content_block_stop, message_delta with
// stop_reason and usage, message_stop.
func (x *exchange) messagesStream(c messagesCall, r reply) {
	e := x.startSSE(c.sc)
	start := x.antMessage(c, r)
	start.Usage.OutputTokens = 1
	if !e.send("message_start", antEvent{Type: "message_start", Message: &start}) {
		return
	}
	stopAt := -1
	if c.sc.cut || c.sc.streamError {
		stopAt = max(1, len(r.chunks)/2)
	}
	interrupt := func() {
		if c.sc.cut {
			e.cut()
		}
		body := errScenario(529).anthropicShape(x.w.Header().Get("request-id"))
		e.send("error", body)
	}
	idx := 0
	block := func(b antBlockOut) bool {
		i := idx
		return e.send("content_block_start", antEvent{Type: "content_block_start", Index: &i, ContentBlock: &b})
	}
	delta := func(d any) bool {
		i := idx
		return e.send("content_block_delta", antEvent{Type: "content_block_delta", Index: &i, Delta: d})
	}
	stop := func() bool {
		i := idx
		idx++
		return e.send("content_block_stop", antEvent{Type: "content_block_stop", Index: &i})
	}
	if len(r.calls) == 0 {
		empty := ""
		if !block(antBlockOut{Type: "text", Text: &empty}) || !e.send("ping", antEvent{Type: "ping"}) {
			return
		}
		for i, piece := range r.chunks {
			if i == stopAt {
				interrupt()
				return
			}
			if !e.pause(c.sc) || !delta(antTextDelta{Type: "text_delta", Text: piece}) {
				return
			}
		}
		if stopAt >= 0 {
			interrupt()
			return
		}
		if !stop() {
			return
		}
	}
	for i, tc := range r.calls {
		if !block(antBlockOut{Type: "tool_use", ID: tc.id, Name: tc.name, Input: json.RawMessage("{}")}) {
			return
		}
		if i == 0 && !e.send("ping", antEvent{Type: "ping"}) {
			return
		}
		if !delta(antJSONDelta{Type: "input_json_delta"}) {
			return
		}
		for k, frag := range fragments(tc.args, argFragment) {
			if i == 0 && k == stopAt {
				interrupt()
				return
			}
			if !e.pause(c.sc) || !delta(antJSONDelta{Type: "input_json_delta", PartialJSON: frag}) {
				return
			}
		}
		if i == 0 && stopAt >= 0 {
			interrupt()
			return
		}
		if !stop() {
			return
		}
	}
	usage := antUsage{InputTokens: r.promptTokens, OutputTokens: r.completionTokens}
	if !e.send("message_delta", antEvent{Type: "message_delta", Delta: antMessageDelta{StopReason: antStop(r.finish)}, Usage: &usage}) {
		return
	}
	e.send("message_stop", antEvent{Type: "message_stop"})
}
