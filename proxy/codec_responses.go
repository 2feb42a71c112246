package proxy

import "fmt"

// responsesCodec reads an OpenAI Responses event stream: function calls from
// response.output_item.added and their arguments from
// response.function_call_arguments.delta; usage and the end from
// response.completed (or .incomplete, .failed).
type responsesCodec struct {
	items map[string]*toolCallAcc // function calls by output item id
}

var responsesKeys = [][]byte{
	[]byte(`_call"`), []byte(`function_call_arguments.delta"`),
	[]byte(`"response.completed"`), []byte(`"response.incomplete"`), []byte(`"response.failed"`),
	[]byte(`"error"`),
}

// responsesUsage is the Responses API usage object.
type responsesUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

func (u *responsesUsage) usage() *Usage {
	if u == nil {
		return nil
	}
	return &Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
}

// responsesItemOut is an output item as far as tool calls go.
type responsesItemOut struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func (*responsesCodec) passthrough() bool { return true }

// failure is a Responses "error" event. It also carries an "error" object,
// which is how the OpenAI SDKs recognise a failed stream.
func (*responsesCodec) failure(msg string) []byte {
	return sseEvent("error", map[string]any{
		"type": "error", "code": codeUpstream, "message": msg, "param": nil,
		"error": errorDetail{Message: msg, Type: "api_error", Code: codeUpstream},
	})
}

func (c *responsesCodec) line(t *tap, line []byte) error {
	data := passLine(t, line)
	if data == nil {
		return nil
	}
	if containsAny(data, responsesKeys) {
		var ev struct {
			Type     string            `json:"type"`
			ItemID   string            `json:"item_id"`
			Delta    string            `json:"delta"`
			Item     *responsesItemOut `json:"item"`
			Response *struct {
				Usage *responsesUsage `json:"usage"`
			} `json:"response"`
		}
		ok, err := t.decodeEvent(data, &ev)
		if err != nil {
			return err
		}
		if ok {
			switch ev.Type {
			case "response.output_item.added":
				if it := ev.Item; it != nil && isCallItem(it.Type) {
					if c.items == nil {
						c.items = map[string]*toolCallAcc{}
					}
					if len(c.items) >= maxStreamToolCalls {
						// Relayed untracked, the call would skip re-authorization.
						return fmt.Errorf("more than %d tool calls in one stream", maxStreamToolCalls)
					}
					acc := newToolCall(it.CallID, it.Name)
					c.items[it.ID] = acc
					t.calls = append(t.calls, acc)
					if err := t.check(it.Name); err != nil {
						return err
					}
				}
			case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
				if acc := c.items[ev.ItemID]; acc != nil {
					acc.args.Write([]byte(ev.Delta))
				}
			case "response.completed", "response.incomplete", "response.failed":
				t.done = true
				if ev.Response != nil && ev.Response.Usage != nil {
					t.usage = ev.Response.Usage.usage()
				}
			case "error":
				t.failed = true
			}
		}
	}
	t.relay(line)
	return nil
}

// isCallItem reports whether an output item is a call of a client-side tool.
func isCallItem(typ string) bool { return typ == "function_call" || typ == "custom_tool_call" }
