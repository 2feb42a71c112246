package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// API names the client-facing API a request arrived on. The values appear in
// the policy input (request.api) and in audit records.
type API string

const (
	APIChatCompletions API = "chat.completions"
	APIModels          API = "models"
)

// LLMRequest is a client request reduced to what policy and audit need. It is
// built from the body without keeping the prompt text: only sizes, counts, tool
// names and a keyed digest survive.
type LLMRequest struct {
	API         API
	Model       string
	Stream      bool
	MaxTokens   int // max_completion_tokens, else max_tokens; 0 when absent
	Messages    int
	PromptBytes int
	Digest      string   // hex HMAC-SHA256 of the messages under the gateway's digest key
	Tools       []string // function names offered to the model
	ToolResults []string // names of the tools whose results the request carries

	// IncludeUsage reports whether the client asked for a usage chunk in a stream.
	IncludeUsage bool
}

// Errors a client can cause with a bad body. They become 400 responses.
var (
	errEmptyBody    = errors.New("request body is empty")
	errNoModel      = errors.New("model is required")
	errNoMessages   = errors.New("messages must be a non-empty array")
	errNotAnObject  = errors.New("request body must be a JSON object")
	errBadMaxTokens = errors.New("max_tokens must not be negative")
)

// chatBody is the subset of an OpenAI chat completion request that the gateway
// reads. Everything else passes through untouched.
type chatBody struct {
	Model               string         `json:"model"`
	Stream              bool           `json:"stream"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Messages            []chatMessage  `json:"messages"`
	Tools               []chatTool     `json:"tools"`
	StreamOptions       *streamOptions `json:"stream_options"`
}

type chatMessage struct {
	Role       string                `json:"role"`
	Content    json.RawMessage       `json:"content"`
	ToolCallID string                `json:"tool_call_id"`
	ToolCalls  []chatMessageToolCall `json:"tool_calls"`
}

type chatMessageToolCall struct {
	ID       string `json:"id"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ParseChatRequest normalizes an OpenAI chat completion request body. digestKey
// keys the prompt digest so that equal prompts cannot be confirmed by someone
// who reads the audit log but lacks the key.
func ParseChatRequest(body, digestKey []byte) (*LLMRequest, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errEmptyBody
	}
	if trimmed[0] != '{' {
		return nil, errNotAnObject
	}
	var b chatBody
	if !scanChatBody(trimmed, &b) {
		b = chatBody{}
		if err := json.Unmarshal(trimmed, &b); err != nil {
			return nil, fmt.Errorf("invalid JSON body: %w", err)
		}
	}
	if b.Model == "" {
		return nil, errNoModel
	}
	if len(b.Messages) == 0 {
		return nil, errNoMessages
	}
	req := &LLMRequest{
		API:      APIChatCompletions,
		Model:    b.Model,
		Stream:   b.Stream,
		Messages: len(b.Messages),
	}
	switch {
	case b.MaxCompletionTokens != nil:
		req.MaxTokens = *b.MaxCompletionTokens
	case b.MaxTokens != nil:
		req.MaxTokens = *b.MaxTokens
	}
	if req.MaxTokens < 0 {
		return nil, errBadMaxTokens
	}
	if b.StreamOptions != nil {
		req.IncludeUsage = b.StreamOptions.IncludeUsage
	}
	for _, t := range b.Tools {
		if t.Function.Name != "" {
			req.Tools = append(req.Tools, t.Function.Name)
		}
	}
	mac := digestMAC(digestKey)
	defer mac.release()
	var callNames map[string]string
	for i := range b.Messages {
		m := &b.Messages[i]
		req.PromptBytes += len(m.Content)
		mac.fieldString(m.Role)
		mac.field(m.Content)
		for _, tc := range m.ToolCalls {
			if callNames == nil {
				callNames = make(map[string]string)
			}
			callNames[tc.ID] = tc.Function.Name
		}
		if m.Role == "tool" {
			name := callNames[m.ToolCallID]
			if name == "" {
				name = "unknown:" + m.ToolCallID
			}
			req.ToolResults = append(req.ToolResults, name)
		}
	}
	req.Digest = mac.hexSum()
	return req, nil
}

// keyedMAC is a reusable HMAC-SHA256 under one digest key: the keyed state
// is computed once per key, then Reset for each request.
type keyedMAC struct {
	h    hash.Hash
	pool *sync.Pool
	sum  [sha256.Size]byte
	zero [1]byte
}

// macPools holds one pool of keyedMACs per digest key.
var macPools sync.Map // string(key) → *sync.Pool

func digestMAC(key []byte) *keyedMAC {
	p, ok := macPools.Load(string(key))
	if !ok {
		k := string(key)
		np := &sync.Pool{}
		np.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, []byte(k)), pool: np} }
		p, _ = macPools.LoadOrStore(k, np)
	}
	m := p.(*sync.Pool).Get().(*keyedMAC)
	m.h.Reset()
	return m
}

// field writes b and a 0 separator.
func (m *keyedMAC) field(b []byte) {
	m.h.Write(b)
	m.h.Write(m.zero[:])
}

// fieldString is field for a string, without converting it.
func (m *keyedMAC) fieldString(s string) {
	for len(s) > 0 {
		n := copy(m.sum[:], s)
		m.h.Write(m.sum[:n])
		s = s[n:]
	}
	m.h.Write(m.zero[:])
}

func (m *keyedMAC) hexSum() string {
	return hex.EncodeToString(m.h.Sum(m.sum[:0]))
}

func (m *keyedMAC) release() { m.pool.Put(m) }

// patchBody rewrites top-level fields of a JSON object body. It is only used
// when the gateway must change what goes upstream (an aliased model name, a
// max_tokens obligation, a usage request on a stream), so the common path
// forwards the client's bytes unchanged.
func patchBody(body []byte, set map[string]any) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("proxy: patch body: %w", err)
	}
	for k, v := range set {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("proxy: patch body field %s: %w", k, err)
		}
		obj[k] = raw
	}
	return json.Marshal(obj)
}
