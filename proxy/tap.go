package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Limits of what the tap keeps while a response passes through. They bound the
// memory a single response can cost, whatever its length.
const (
	maxSSELine     = 1 << 20 // longest SSE line inspected; longer lines pass through uninspected, or fail a guarded stream
	maxJSONCapture = 8 << 20 // largest non-streamed body inspected for usage and tool calls
	readChunk      = 32 << 10
)

// Usage is the token usage a provider reported.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ToolCall is a tool call the model emitted, with its arguments reduced to a
// keyed digest (toolArgsDigest).
type ToolCall struct {
	ID              string
	Name            string
	ArgumentsDigest string
}

var (
	// errStreamIncomplete marks a stream that ended without its terminator.
	errStreamIncomplete = errors.New("upstream stream ended before its end marker")
	// errUninspectable ends a guarded stream with a line it cannot inspect
	// (too long, or one that may hold a tool call but does not decode): it
	// could hide a tool call.
	errUninspectable = errors.New("upstream stream event cannot be inspected")
)

// tap wraps an upstream response body. For a stream it relays complete lines
// as they arrive, each one read on the way by the API's codec (usage, tool
// calls, re-authorization of each tool call, translation between formats).
// On a broken stream it appends one error event in the API's shape so the
// client sees a failure, then returns the error, which makes the server
// abort the response instead of ending it cleanly. A JSON body passes
// through unchanged while a bounded copy is kept for its usage.
type tap struct {
	body  io.ReadCloser
	sse   bool
	codec sseCodec
	// authorize re-authorizes a tool call the model emits before the client
	// sees it; nil when there is nothing to check.
	authorize func(name string) error

	rbuf    []byte
	out     []byte // bytes ready for the client, from off
	off     int
	line    []byte // partial SSE line carried between reads
	skip    bool   // current SSE line overflowed maxSSELine
	held    []byte // an "event:" line waiting for its data line
	capture bytes.Buffer
	done    bool // saw the stream's end marker
	failed  bool // the provider itself sent an error event
	events  int

	usage *Usage
	calls []*toolCallAcc
	// chatCalls are a chat stream's calls by choice and tool call index.
	chatCalls map[[2]int]*toolCallAcc

	err      error // first upstream failure
	halted   bool  // the gateway ended the stream (denied call, bad line)
	finished bool
	onFinish func(*tap)
}

type toolCallAcc struct {
	id, name string
	args     hash.Hash // SHA-256 of the arguments so far; keyed in toolCalls
}

func newToolCall(id, name string) *toolCallAcc {
	return &toolCallAcc{id: id, name: name, args: sha256.New()}
}

// newTap taps an OpenAI chat completions response.
func newTap(body io.ReadCloser, sse bool, onFinish func(*tap)) *tap {
	return newCodecTap(body, sse, &chatCodec{}, onFinish)
}

func newCodecTap(body io.ReadCloser, sse bool, c sseCodec, onFinish func(*tap)) *tap {
	return &tap{body: body, sse: sse, codec: c, onFinish: onFinish}
}

func (t *tap) Read(p []byte) (int, error) {
	for {
		if t.off < len(t.out) {
			n := copy(p, t.out[t.off:])
			t.off += n
			if t.off == len(t.out) {
				t.out, t.off = t.out[:0], 0
			}
			return n, nil
		}
		if t.finished {
			if t.err != nil {
				return 0, t.err
			}
			return 0, io.EOF
		}
		if !t.sse {
			return t.readJSON(p)
		}
		if t.rbuf == nil {
			t.rbuf = copyBuffers{}.Get()
		}
		n, err := t.body.Read(t.rbuf)
		if n > 0 {
			t.observe(t.rbuf[:n])
		}
		if err != nil && !t.finished {
			t.end(err)
		}
	}
}

func (t *tap) readJSON(p []byte) (int, error) {
	n, err := t.body.Read(p)
	if n > 0 && t.capture.Len()+n <= maxJSONCapture {
		t.capture.Write(p[:n])
	}
	if err == nil {
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		t.finish(nil)
		return n, io.EOF
	}
	t.finish(err)
	return n, err
}

// end handles the end of the upstream stream: a clean end needs the end
// marker; anything else is a failure the client must see.
func (t *tap) end(err error) {
	if t.codec.passthrough() {
		t.out = append(t.out, t.held...) // an event name whose data never came
		if !t.skip {
			t.out = append(t.out, t.line...) // an unterminated last line, as it came
		}
	}
	t.held, t.line = nil, nil
	if errors.Is(err, io.EOF) {
		err = nil
		if !t.done {
			err = errStreamIncomplete
		}
	}
	if err != nil && !t.failed {
		t.out = append(t.out, t.codec.failure("the upstream provider failed mid-stream; the response is incomplete")...)
	}
	t.finish(err)
}

// halt ends the stream at this point on the gateway's own decision: nothing
// more is read from upstream, the client gets an error event.
func (t *tap) halt(err error, msg string) {
	t.halted = true
	t.held, t.line = nil, nil
	t.out = append(t.out, t.codec.failure(msg)...)
	t.finish(err)
}

func (t *tap) Close() error {
	err := t.body.Close()
	if t.rbuf != nil {
		copyBuffers{}.Put(t.rbuf) // Close is the tap's last call
		t.rbuf = nil
	}
	if !t.finished {
		t.finish(errors.New("response closed before it was complete"))
	}
	return err
}

// finish runs once, when the upstream response has ended one way or another.
func (t *tap) finish(err error) {
	if t.finished {
		return
	}
	t.finished = true
	t.err = err
	if !t.sse && err == nil {
		t.usage, t.calls = parseChatCompletion(t.capture.Bytes())
	}
	t.capture = bytes.Buffer{}
	if t.onFinish != nil {
		t.onFinish(t)
	}
}

// observe splits upstream bytes into lines and hands each complete line to
// the codec, which appends what the client receives to t.out.
func (t *tap) observe(b []byte) {
	for len(b) > 0 && !t.halted {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			switch {
			case t.skip:
				t.out = append(t.out, b...)
			case len(t.line)+len(b) <= maxSSELine:
				t.line = append(t.line, b...)
			default:
				t.overlong(b)
			}
			return
		}
		seg := b[:i]
		b = b[i+1:]
		if !t.skip && len(t.line)+len(seg) > maxSSELine {
			t.overlong(seg)
			if t.halted {
				return
			}
			t.out = append(t.out, '\n')
			t.skip = false
			continue
		}
		if t.skip {
			t.out = append(t.out, seg...)
			t.out = append(t.out, '\n')
			t.skip = false
			continue
		}
		if len(t.line) > 0 {
			t.line = append(t.line, seg...)
			seg = t.line
		}
		if err := t.codec.line(t, seg); err != nil {
			var d *toolDeniedError
			if errors.As(err, &d) {
				t.halt(err, d.clientMessage())
			} else {
				t.halt(err, "the gateway could not read the provider's stream: "+err.Error())
			}
			return
		}
		t.line = t.line[:0]
		if cap(t.line) > 64<<10 {
			t.line = nil // a rare long line must not pin its buffer for the stream's life
		}
	}
}

// overlong handles a line past maxSSELine: a plain relay passes it through
// uninspected; a stream that is translated or whose tool calls are checked
// fails, since the line could hide a tool call.
func (t *tap) overlong(more []byte) {
	if t.authorize != nil || !t.codec.passthrough() {
		t.halt(fmt.Errorf("%w: line longer than %d bytes", errUninspectable, maxSSELine),
			"the provider sent a stream event too large to inspect; the response is incomplete")
		return
	}
	t.out = append(t.out, t.held...)
	t.out = append(t.out, t.line...)
	t.out = append(t.out, more...)
	t.held, t.line, t.skip = nil, t.line[:0], true
}

// decodeEvent decodes an event that may hold a tool call into v, and
// reports whether it did. In a stream whose tool calls are checked, an
// event with ambiguous keys (uniqueKeys) or one that does not decode stops
// the stream (err); a plain relay only skips reading it.
func (t *tap) decodeEvent(data []byte, v any) (ok bool, err error) {
	if t.authorize != nil {
		if err := uniqueKeys(data); err != nil {
			return false, fmt.Errorf("%w: %w", errUninspectable, err)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, t.undecodable(err)
	}
	return true, nil
}

// undecodable handles a data line that may hold a tool call but does not
// decode as the codec expects (bad JSON, a field of another type): a
// stream whose tool calls are checked stops there, since a lenient client
// may still read a tool call from it; a plain relay passes it.
func (t *tap) undecodable(err error) error {
	if t.authorize == nil {
		return nil
	}
	return fmt.Errorf("%w: an event that may hold a tool call does not decode (%v)", errUninspectable, err)
}

// relay appends a passthrough line, preceded by a held "event:" line.
func (t *tap) relay(line []byte) {
	if len(t.held) > 0 {
		t.out = append(t.out, t.held...)
		t.held = t.held[:0]
	}
	t.out = append(t.out, line...)
	t.out = append(t.out, '\n')
}

// check re-authorizes a tool call the model emits, before it is relayed.
func (t *tap) check(name string) error {
	if t.authorize == nil {
		return nil
	}
	return t.authorize(name)
}

// ToolCalls returns the tool calls seen so far, their arguments digested
// under key, the caller's tenant key (toolArgsDigest).
func (t *tap) ToolCalls(key []byte) []ToolCall { return toolCalls(t.calls, key) }

func toolCalls(accs []*toolCallAcc, key []byte) []ToolCall {
	if len(accs) == 0 {
		return nil
	}
	out := make([]ToolCall, 0, len(accs))
	for _, c := range accs {
		out = append(out, ToolCall{ID: c.id, Name: c.name, ArgumentsDigest: toolArgsDigest(key, c.args)})
	}
	return out
}

// sseData returns the payload of a data line, and whether it is one.
func sseData(line []byte) ([]byte, bool) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if !bytes.HasPrefix(line, dataPrefix) {
		return nil, false
	}
	return bytes.TrimSpace(line[len(dataPrefix):]), true
}

var (
	dataPrefix  = []byte("data:")
	eventPrefix = []byte("event:")
	doneMarker  = []byte("[DONE]")
)

// sseEvent formats one SSE event; name may be empty.
func sseEvent(name string, v any) []byte {
	b, _ := json.Marshal(v)
	out := make([]byte, 0, len(b)+len(name)+16)
	if name != "" {
		out = append(out, "event: "...)
		out = append(out, name...)
		out = append(out, '\n')
	}
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, '\n', '\n')
}
