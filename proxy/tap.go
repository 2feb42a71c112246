package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
)

// Limits of what the tap keeps while a response passes through. They bound the
// memory a single response can cost, whatever its length.
const (
	maxSSELine     = 1 << 20 // longest SSE line inspected; longer lines pass through uninspected
	maxJSONCapture = 8 << 20 // largest non-streamed body inspected for usage and tool calls
)

// Usage is the token usage a provider reported.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ToolCall is a tool call the model emitted, with its arguments reduced to a digest.
type ToolCall struct {
	ID              string
	Name            string
	ArgumentsDigest string
}

// errStreamIncomplete marks a stream that ended without its terminator.
var errStreamIncomplete = errors.New("upstream stream ended before [DONE]")

// tap wraps an upstream response body. Bytes pass through unchanged and at
// once; on the way it reads usage and tool calls (OpenAI chat completion JSON
// or SSE chunks). On a broken stream it appends one error event so the client
// sees a failure, then returns the error, which makes the server abort the
// response instead of ending it cleanly.
type tap struct {
	body io.ReadCloser
	sse  bool

	line    []byte // partial SSE line carried between reads
	skip    bool   // current SSE line overflowed maxSSELine
	capture bytes.Buffer
	done    bool // saw data: [DONE]
	events  int

	usage *Usage
	calls []*toolCallAcc

	err      error  // first upstream failure
	trailer  []byte // error event still to deliver
	finished bool
	onFinish func(*tap)
}

type toolCallAcc struct {
	id, name string
	args     hash.Hash
}

func newTap(body io.ReadCloser, sse bool, onFinish func(*tap)) *tap {
	return &tap{body: body, sse: sse, onFinish: onFinish}
}

func (t *tap) Read(p []byte) (int, error) {
	if t.trailer != nil {
		n := copy(p, t.trailer)
		t.trailer = t.trailer[n:]
		if len(t.trailer) == 0 {
			t.trailer = nil
		}
		if n > 0 {
			return n, nil
		}
	}
	if t.finished {
		if t.err != nil {
			return 0, t.err
		}
		return 0, io.EOF
	}
	n, err := t.body.Read(p)
	if n > 0 {
		t.observe(p[:n])
	}
	if err == nil {
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		if t.sse && !t.done {
			err = errStreamIncomplete
		} else {
			err = nil
		}
	}
	t.finish(err)
	if err != nil && t.sse {
		t.trailer = streamErrorEvent()
		return n, nil
	}
	if err != nil {
		return n, err
	}
	return n, io.EOF
}

func (t *tap) Close() error {
	err := t.body.Close()
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
		t.parseCompletion(t.capture.Bytes())
	}
	t.capture = bytes.Buffer{}
	if t.onFinish != nil {
		t.onFinish(t)
	}
}

func streamErrorEvent() []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{
		Message: "the upstream provider failed mid-stream; the response is incomplete",
		Type:    "api_error",
		Code:    codeUpstream,
	}})
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, '\n', '\n')
}

func (t *tap) observe(b []byte) {
	if !t.sse {
		if t.capture.Len()+len(b) <= maxJSONCapture {
			t.capture.Write(b)
		}
		return
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !t.skip && len(t.line)+len(b) <= maxSSELine {
				t.line = append(t.line, b...)
			} else {
				t.skip, t.line = true, t.line[:0]
			}
			return
		}
		seg := b[:i]
		b = b[i+1:]
		if t.skip {
			t.skip = false
			continue
		}
		if len(t.line) > 0 {
			if len(t.line)+len(seg) > maxSSELine {
				t.line = t.line[:0]
				continue
			}
			t.line = append(t.line, seg...)
			seg = t.line
		}
		t.sseLine(seg)
		t.line = t.line[:0]
		if cap(t.line) > 64<<10 {
			t.line = nil // a rare long line must not pin its buffer for the stream's life
		}
	}
}

var (
	dataPrefix   = []byte("data:")
	doneMarker   = []byte("[DONE]")
	keyToolCalls = []byte(`"tool_calls"`)
	keyUsage     = []byte(`"usage":{`)
	keyUsageSp   = []byte(`"usage": {`)
)

// sseLine inspects one SSE line. Only data lines that can hold usage or tool
// calls are decoded, so plain content deltas cost a few byte scans.
func (t *tap) sseLine(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if !bytes.HasPrefix(line, dataPrefix) {
		return
	}
	data := bytes.TrimSpace(line[len(dataPrefix):])
	t.events++
	if bytes.Equal(data, doneMarker) {
		t.done = true
		return
	}
	if !bytes.Contains(data, keyToolCalls) && !bytes.Contains(data, keyUsage) && !bytes.Contains(data, keyUsageSp) {
		return
	}
	var c struct {
		Choices []struct {
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
	if json.Unmarshal(data, &c) != nil {
		return
	}
	if c.Usage != nil {
		t.usage = c.Usage
	}
	for _, ch := range c.Choices {
		for _, d := range ch.Delta.ToolCalls {
			if d.Index < 0 || d.Index > 1024 {
				continue
			}
			for len(t.calls) <= d.Index {
				t.calls = append(t.calls, &toolCallAcc{args: sha256.New()})
			}
			acc := t.calls[d.Index]
			if d.ID != "" {
				acc.id = d.ID
			}
			if d.Function.Name != "" {
				acc.name = d.Function.Name
			}
			acc.args.Write([]byte(d.Function.Arguments))
		}
	}
}

func (t *tap) parseCompletion(b []byte) {
	if len(b) == 0 {
		return
	}
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
	if json.Unmarshal(b, &c) != nil {
		return
	}
	t.usage = c.Usage
	for _, ch := range c.Choices {
		for _, tc := range ch.Message.ToolCalls {
			h := sha256.New()
			h.Write([]byte(tc.Function.Arguments))
			t.calls = append(t.calls, &toolCallAcc{id: tc.ID, name: tc.Function.Name, args: h})
		}
	}
}

// ToolCalls returns the tool calls seen so far.
func (t *tap) ToolCalls() []ToolCall {
	if len(t.calls) == 0 {
		return nil
	}
	out := make([]ToolCall, 0, len(t.calls))
	for _, c := range t.calls {
		out = append(out, ToolCall{ID: c.id, Name: c.name, ArgumentsDigest: hex.EncodeToString(c.args.Sum(nil))})
	}
	return out
}
