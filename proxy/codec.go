package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// sseCodec reads one API's event stream as it passes through the tap, line by
// line: it records usage and tool calls, has each tool call re-authorized
// before the client sees it, and appends what the client receives to t.out
// (the line itself, or its translation into the client's format).
type sseCodec interface {
	// line handles one complete line (without its newline). An error ends the
	// stream at this point, before the line reaches the client.
	line(t *tap, line []byte) error
	// failure is the event that tells a client of this API that the stream
	// failed, with msg as its message.
	failure(msg string) []byte
	// passthrough reports whether the client receives the provider's bytes
	// unchanged.
	passthrough() bool
}

// toolDeniedError is a tool call that policy refused.
type toolDeniedError struct {
	Name    string
	Reasons []string
}

func (e *toolDeniedError) Error() string {
	return fmt.Sprintf("tool call %q denied by policy: %s", e.Name, strings.Join(e.Reasons, "; "))
}

func (e *toolDeniedError) clientMessage() string {
	return fmt.Sprintf("the model called the tool %q, which policy does not allow for this caller (%s); the response was stopped",
		e.Name, strings.Join(e.Reasons, "; "))
}

// passLine handles the lines every passthrough codec treats alike: "event:"
// lines are held until their data line is relayed, other non-data lines pass.
// It returns the payload of a data line, or nil when the line was handled.
func passLine(t *tap, line []byte) []byte {
	data, ok := sseData(line)
	if !ok {
		if bytes.HasPrefix(line, eventPrefix) {
			t.held = append(append(t.held[:0], line...), '\n')
			return nil
		}
		t.relay(line)
		return nil
	}
	t.events++
	return data
}

// chatCodec reads OpenAI chat completion chunks.
type chatCodec struct{}

var (
	keyToolCalls = []byte(`"tool_calls"`)
	keyUsage     = []byte(`"usage":{`)
	keyUsageSp   = []byte(`"usage": {`)
)

func (chatCodec) passthrough() bool { return true }

func (chatCodec) failure(msg string) []byte {
	return sseEvent("", errorBody{Error: errorDetail{Message: msg, Type: "api_error", Code: codeUpstream}})
}

// line decodes only the data lines that can hold usage, tool calls or an
// error, so plain content deltas cost a few byte scans.
func (chatCodec) line(t *tap, line []byte) error {
	data := passLine(t, line)
	if data == nil {
		return nil
	}
	if bytes.Equal(data, doneMarker) {
		t.done = true
		t.relay(line)
		return nil
	}
	if bytes.HasPrefix(data, []byte(`{"error"`)) {
		t.failed = true
	}
	if mayHoldToolCalls(data) || bytes.Contains(data, keyUsage) || bytes.Contains(data, keyUsageSp) {
		if err := chatChunk(t, data); err != nil {
			return err
		}
	}
	t.relay(line)
	return nil
}

// mayHoldToolCalls reports whether a chunk could hold a tool_calls key as
// encoding/json (and so a client) reads keys: with escapes, in any case, or
// with the one non-ASCII letter that folds to an ASCII one in it (ſ, to s).
// Only chunks it rules out skip the decode, so a provider cannot slip a
// tool call past re-authorization by spelling its key differently.
func mayHoldToolCalls(data []byte) bool {
	if bytes.Contains(data, keyToolCalls) || bytes.Contains(data, []byte(`\u`)) || bytes.Contains(data, []byte("\u017f")) {
		return true
	}
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '_')
		if j < 0 {
			return false
		}
		k := i + j
		if k >= 4 && k+6 <= len(data) && bytes.EqualFold(data[k-4:k+6], []byte("tool_calls")) {
			return true
		}
		i = k + 1
	}
}

// maxStreamToolCalls bounds the tool calls a stream may carry; a stream
// with more is stopped rather than relayed unchecked.
const maxStreamToolCalls = 1024

func chatChunk(t *tap, data []byte) error {
	var c struct {
		Choices []struct {
			Index int `json:"index"`
			Delta struct {
				ToolCalls []struct {
					Index    int    `json:"index"`
					ID       string `json:"id"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *Usage `json:"usage"`
	}
	if ok, err := t.decodeEvent(data, &c); !ok {
		if mayHoldToolCalls(data) {
			return err
		}
		return nil
	}
	if c.Usage != nil {
		t.usage = c.Usage
	}
	for _, ch := range c.Choices {
		for _, d := range ch.Delta.ToolCalls {
			// Each choice numbers its calls from 0 (n > 1): a call is its
			// choice and index, so none passes as another's continuation.
			key := [2]int{ch.Index, d.Index}
			acc := t.chatCalls[key]
			if acc == nil {
				if len(t.chatCalls) >= maxStreamToolCalls {
					// Relayed untracked, the call would skip re-authorization.
					return fmt.Errorf("more than %d tool calls in one stream", maxStreamToolCalls)
				}
				if t.chatCalls == nil {
					t.chatCalls = map[[2]int]*toolCallAcc{}
				}
				acc = newToolCall("", "")
				t.chatCalls[key] = acc
				t.calls = append(t.calls, acc)
			}
			if d.ID != "" {
				acc.id = d.ID
			}
			if d.Function.Name != "" && acc.name == "" {
				acc.name = d.Function.Name
				if err := t.check(acc.name); err != nil {
					return err
				}
			}
			acc.args.Write([]byte(d.Function.Arguments))
		}
	}
	return nil
}

// parseChatCompletion reads usage and tool calls from a chat completion (or
// the usage of an embeddings response), as far as it can.
func parseChatCompletion(b []byte) (*Usage, []*toolCallAcc) {
	if len(b) == 0 {
		return nil, nil
	}
	u, calls, _ := readChatCompletion(b)
	return u, calls
}

// readChatCompletion reads usage and tool calls from a chat completion and
// reports one it cannot read: the caller must not relay that unchecked.
func readChatCompletion(b []byte) (*Usage, []*toolCallAcc, error) {
	if u, calls, ok := scanChatCompletion(b); ok {
		return u, calls, nil
	}
	return decodeChatAnswer(b)
}

// decodeChatCompletion is parseChatCompletion with encoding/json, for what
// scanChatCompletion leaves to it.
func decodeChatCompletion(b []byte) (*Usage, []*toolCallAcc) {
	u, calls, err := decodeChatAnswer(b)
	if err != nil {
		return nil, nil
	}
	return u, calls
}

// decodeChatAnswer is readChatCompletion with encoding/json.
func decodeChatAnswer(b []byte) (*Usage, []*toolCallAcc, error) {
	var c struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					ID       string `json:"id"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
		Usage *Usage `json:"usage"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, nil, err
	}
	var calls []*toolCallAcc
	for _, ch := range c.Choices {
		for _, tc := range ch.Message.ToolCalls {
			acc := newToolCall(tc.ID, tc.Function.Name)
			acc.args.Write([]byte(tc.Function.Arguments))
			calls = append(calls, acc)
		}
	}
	return c.Usage, calls, nil
}
