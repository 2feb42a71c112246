package proxy

// Fast paths over jscan for the two bodies every chat request pays for: the
// client's request (ParseChatRequest) and the provider's non-streamed
// completion (parseChatCompletion). Each fills the same values encoding/json
// would, or reports false, and the caller decodes with encoding/json.

// scanChatBody reads body into b as json.Unmarshal(body, b) would.
func scanChatBody(body []byte, b *chatBody) bool {
	s := jscan{b: body}
	if !s.expect('{') {
		return false
	}
	var seen uint32
	n := 0
	for key, ok := s.member(&n); ok; key, ok = s.member(&n) {
		f := s.field(key, "model", "stream", "max_tokens", "max_completion_tokens", "messages", "tools", "stream_options")
		if f >= 0 && !s.once(&seen, f) {
			return false
		}
		if f < 0 {
			s.value()
			continue
		}
		if s.null() {
			continue // encoding/json leaves a field alone on null; pointers and slices stay nil
		}
		switch f {
		case 0:
			b.Model = s.str()
		case 1:
			b.Stream = s.boolean()
		case 2:
			v := s.integer()
			b.MaxTokens = &v
		case 3:
			v := s.integer()
			b.MaxCompletionTokens = &v
		case 4:
			s.chatMessages(b)
		case 5:
			s.chatTools(b)
		case 6:
			b.StreamOptions = &streamOptions{}
			s.expect('{')
			var seen uint32
			m := 0
			for key, ok := s.member(&m); ok; key, ok = s.member(&m) {
				if f := s.field(key, "include_usage"); f < 0 {
					s.value()
				} else if s.once(&seen, f) && !s.null() {
					b.StreamOptions.IncludeUsage = s.boolean()
				}
			}
		}
	}
	return s.end()
}

func (s *jscan) chatMessages(b *chatBody) {
	s.expect('[')
	b.Messages = []chatMessage{} // as encoding/json leaves an empty array
	n := 0
	for s.elem(&n) {
		b.Messages = append(b.Messages, chatMessage{})
		m := &b.Messages[len(b.Messages)-1]
		s.expect('{')
		var seen uint32
		k := 0
		for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
			f := s.field(key, "role", "content", "tool_call_id", "tool_calls")
			switch {
			case f < 0:
				s.value()
			case !s.once(&seen, f):
			case f == 1:
				m.Content = s.value() // as json.RawMessage keeps it, null included
			case s.null():
			case f == 0:
				m.Role = role(s.stringBytes())
			case f == 2:
				m.ToolCallID = s.str()
			case f == 3:
				s.messageToolCalls(m)
			}
		}
	}
}

// role returns the common role names without allocating.
func role(b []byte) string {
	switch string(b) {
	case "system":
		return "system"
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case "tool":
		return "tool"
	case "developer":
		return "developer"
	}
	return string(b)
}

func (s *jscan) messageToolCalls(m *chatMessage) {
	s.expect('[')
	m.ToolCalls = []chatMessageToolCall{}
	n := 0
	for s.elem(&n) {
		var id, name string
		s.expect('{')
		var seen uint32
		k := 0
		for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
			f := s.field(key, "id", "function")
			switch {
			case f < 0:
				s.value()
			case !s.once(&seen, f), s.null():
			case f == 0:
				id = s.str()
			case f == 1:
				name = s.functionName()
			}
		}
		tc := chatMessageToolCall{ID: id}
		tc.Function.Name = name
		m.ToolCalls = append(m.ToolCalls, tc)
	}
}

// functionName reads {"name": …} and skips the other members.
func (s *jscan) functionName() string {
	var name string
	s.expect('{')
	var seen uint32
	k := 0
	for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
		f := s.field(key, "name")
		switch {
		case f < 0:
			s.value()
		case !s.once(&seen, f), s.null():
		default:
			name = s.str()
		}
	}
	return name
}

func (s *jscan) chatTools(b *chatBody) {
	s.expect('[')
	b.Tools = []chatTool{}
	n := 0
	for s.elem(&n) {
		var t chatTool
		s.expect('{')
		var seen uint32
		k := 0
		for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
			f := s.field(key, "type", "function")
			switch {
			case f < 0:
				s.value()
			case !s.once(&seen, f), s.null():
			case f == 0:
				t.Type = s.str()
			case f == 1:
				t.Function.Name = s.functionName()
			}
		}
		b.Tools = append(b.Tools, t)
	}
}

// scanChatCompletion reads usage and tool calls from a chat completion as
// json.Unmarshal into chatCompletionBody would.
func scanChatCompletion(body []byte) (usage *Usage, calls []*toolCallAcc, ok bool) {
	s := jscan{b: body}
	if !s.expect('{') {
		return nil, nil, false
	}
	var seen uint32
	n := 0
	for key, more := s.member(&n); more; key, more = s.member(&n) {
		f := s.field(key, "choices", "usage")
		switch {
		case f < 0:
			s.value()
		case !s.once(&seen, f), s.null():
		case f == 0:
			calls = s.completionChoices(calls)
		case f == 1:
			usage = s.usage()
		}
	}
	if !s.end() {
		return nil, nil, false
	}
	return usage, calls, true
}

func (s *jscan) completionChoices(calls []*toolCallAcc) []*toolCallAcc {
	s.expect('[')
	n := 0
	for s.elem(&n) {
		if s.null() {
			continue
		}
		s.expect('{')
		var seen uint32
		k := 0
		for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
			f := s.field(key, "message")
			switch {
			case f < 0:
				s.value()
			case !s.once(&seen, f), s.null():
			default:
				calls = s.completionMessage(calls)
			}
		}
	}
	return calls
}

func (s *jscan) completionMessage(calls []*toolCallAcc) []*toolCallAcc {
	s.expect('{')
	var seen uint32
	k := 0
	for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
		f := s.field(key, "tool_calls")
		switch {
		case f < 0:
			s.value()
		case !s.once(&seen, f), s.null():
		default:
			s.expect('[')
			n := 0
			for s.elem(&n) {
				calls = append(calls, s.completionToolCall())
			}
		}
	}
	return calls
}

func (s *jscan) completionToolCall() *toolCallAcc {
	var id, name string
	var args []byte
	if !s.null() {
		s.expect('{')
		var seen uint32
		k := 0
		for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
			f := s.field(key, "id", "function")
			switch {
			case f < 0:
				s.value()
			case !s.once(&seen, f), s.null():
			case f == 0:
				id = s.str()
			case f == 1:
				s.expect('{')
				var fseen uint32
				m := 0
				for key, ok := s.member(&m); ok; key, ok = s.member(&m) {
					g := s.field(key, "name", "arguments")
					switch {
					case g < 0:
						s.value()
					case !s.once(&fseen, g), s.null():
					case g == 0:
						name = s.str()
					case g == 1:
						args = s.stringBytes()
					}
				}
			}
		}
	}
	acc := newToolCall(id, name)
	acc.args.Write(args)
	return acc
}

func (s *jscan) usage() *Usage {
	u := &Usage{}
	s.expect('{')
	var seen uint32
	k := 0
	for key, ok := s.member(&k); ok; key, ok = s.member(&k) {
		f := s.field(key, "prompt_tokens", "completion_tokens", "total_tokens")
		switch {
		case f < 0:
			s.value()
		case !s.once(&seen, f), s.null():
		case f == 0:
			u.PromptTokens = s.integer()
		case f == 1:
			u.CompletionTokens = s.integer()
		case f == 2:
			u.TotalTokens = s.integer()
		}
	}
	return u
}
