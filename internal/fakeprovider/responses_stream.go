package fakeprovider

// responsesStreamer numbers and sends Responses API stream events.
type responsesStreamer struct {
	e   *sse
	seq int
}

// send writes one event; its "type" is also the SSE event name.
func (rs *responsesStreamer) send(typ string, fields map[string]any) bool {
	fields["type"] = typ
	fields["sequence_number"] = rs.seq
	rs.seq++
	return rs.e.send(typ, fields)
}

// responsesStream answers a Responses request as its typed events:
// response.created, response.in_progress, then per output item
// response.output_item.added, content_part.added / output_text.delta /
// output_text.done / content_part.done (messages) or
// function_call_arguments.delta / .done (calls), response.output_item.done,
// and finally response.completed (response.incomplete when cut by
// max_output_tokens).
func (x *exchange) responsesStream(c responsesCall, r reply) {
	rs := &responsesStreamer{e: x.startSSE(c.sc)}
	resp := x.responseShell(c)
	if !rs.send("response.created", map[string]any{"response": resp}) ||
		!rs.send("response.in_progress", map[string]any{"response": resp}) {
		return
	}
	stopAt := -1
	if c.sc.cut || c.sc.streamError {
		stopAt = max(1, len(r.chunks)/2)
	}
	interrupt := func() {
		if c.sc.cut {
			rs.e.cut()
		}
		rs.send("error", map[string]any{"code": "server_error", "message": errScenario(500).message, "param": nil})
	}
	pending := responseOutput(x, r, false)
	final := responseOutput(x, r, true)
	for i, item := range pending {
		if !rs.send("response.output_item.added", map[string]any{"output_index": i, "item": item}) {
			return
		}
		if item.Type == "message" {
			loc := map[string]any{"item_id": item.ID, "output_index": i, "content_index": 0}
			with := func(k string, v any) map[string]any {
				m := map[string]any{k: v}
				for kk, vv := range loc {
					m[kk] = vv
				}
				return m
			}
			if !rs.send("response.content_part.added", with("part", responsePart{Type: "output_text", Annotations: []any{}, Logprobs: []any{}})) {
				return
			}
			for k, piece := range r.chunks {
				if k == stopAt {
					interrupt()
					return
				}
				d := with("delta", piece)
				d["logprobs"] = []any{}
				if !rs.e.pause(c.sc) || !rs.send("response.output_text.delta", d) {
					return
				}
			}
			if stopAt >= 0 {
				interrupt()
				return
			}
			done := with("text", r.text())
			done["logprobs"] = []any{}
			if !rs.send("response.output_text.done", done) ||
				!rs.send("response.content_part.done", with("part", final[i].Content[0])) {
				return
			}
		} else {
			for k, frag := range fragments(r.calls[i].args, argFragment) {
				if i == 0 && k == stopAt {
					interrupt()
					return
				}
				if !rs.e.pause(c.sc) || !rs.send("response.function_call_arguments.delta", map[string]any{"item_id": item.ID, "output_index": i, "delta": frag}) {
					return
				}
			}
			if i == 0 && stopAt >= 0 {
				interrupt()
				return
			}
			if !rs.send("response.function_call_arguments.done", map[string]any{"item_id": item.ID, "output_index": i, "arguments": r.calls[i].args}) {
				return
			}
		}
		if !rs.send("response.output_item.done", map[string]any{"output_index": i, "item": final[i]}) {
			return
		}
	}
	x.finishResponse(&resp, r)
	typ := "response.completed"
	if resp.Status == "incomplete" {
		typ = "response.incomplete"
	}
	rs.send(typ, map[string]any{"response": resp})
}
