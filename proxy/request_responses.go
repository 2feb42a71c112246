package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// API names of the other client-facing APIs (see also APIChatCompletions).
const (
	APIResponses         API = "responses"
	APIEmbeddings        API = "embeddings"
	APIAnthropicMessages API = "anthropic.messages"
)

var (
	errNoInput     = errors.New("input is required")
	errNoMaxTokens = errors.New("max_tokens is required")
)

// responsesBody is the subset of an OpenAI Responses request the gateway reads.
type responsesBody struct {
	Model           string          `json:"model"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Instructions    json.RawMessage `json:"instructions"`
	Input           json.RawMessage `json:"input"`
	Tools           []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// responsesItem is one input item: a message, a function call the model made
// earlier, or the output of such a call.
type responsesItem struct {
	Type   string          `json:"type"`
	Role   string          `json:"role"`
	Name   string          `json:"name"`
	CallID string          `json:"call_id"`
	Output json.RawMessage `json:"output"`
}

// ParseResponsesRequest normalizes an OpenAI Responses API request body. Input
// may be a string (one user message) or an array of items; tool results are
// the function_call_output items, named through the function_call items
// with the same call_id.
func ParseResponsesRequest(body, digestKey []byte) (*LLMRequest, error) {
	trimmed, err := objectBody(body)
	if err != nil {
		return nil, err
	}
	var b responsesBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	if b.Model == "" {
		return nil, errNoModel
	}
	in := bytes.TrimSpace(b.Input)
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return nil, errNoInput
	}
	req := &LLMRequest{API: APIResponses, Model: b.Model, Stream: b.Stream}
	if b.MaxOutputTokens != nil {
		if req.MaxTokens = *b.MaxOutputTokens; req.MaxTokens < 0 {
			return nil, errBadMaxTokens
		}
	}
	for _, t := range b.Tools {
		switch {
		case t.Type == "function" && t.Name != "":
			req.Tools = append(req.Tools, t.Name)
		case t.Type != "function" && t.Type != "":
			req.Tools = append(req.Tools, t.Type) // built-in tools (web_search, ...) by type
		}
	}
	mac := hmac.New(sha256.New, digestKey)
	mac.Write(b.Instructions)
	mac.Write([]byte{0})
	mac.Write(in)
	req.Digest = hex.EncodeToString(mac.Sum(nil))
	req.PromptBytes = len(in) + len(b.Instructions)
	switch in[0] {
	case '"':
		req.Messages = 1
	case '[':
		var items []responsesItem
		if err := json.Unmarshal(in, &items); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if len(items) == 0 {
			return nil, errNoInput
		}
		req.Messages = len(items)
		names := map[string]string{}
		for _, it := range items {
			switch it.Type {
			case "function_call":
				names[it.CallID] = it.Name
			case "function_call_output":
				name := names[it.CallID]
				if name == "" {
					name = "unknown:" + it.CallID
				}
				req.ToolResults = append(req.ToolResults, name)
			}
		}
	default:
		return nil, errors.New("input must be a string or an array of items")
	}
	return req, nil
}

// ParseEmbeddingsRequest normalizes an OpenAI embeddings request. Messages
// counts the inputs (one for a string or a token array).
func ParseEmbeddingsRequest(body, digestKey []byte) (*LLMRequest, error) {
	trimmed, err := objectBody(body)
	if err != nil {
		return nil, err
	}
	var b struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	if b.Model == "" {
		return nil, errNoModel
	}
	in := bytes.TrimSpace(b.Input)
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return nil, errNoInput
	}
	req := &LLMRequest{API: APIEmbeddings, Model: b.Model, PromptBytes: len(in), Messages: 1}
	if in[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(in, &items); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if len(items) == 0 {
			return nil, errNoInput
		}
		// An array of strings or of token arrays is a batch; an array of
		// numbers is one tokenized input.
		if f := bytes.TrimSpace(items[0]); len(f) > 0 && (f[0] == '"' || f[0] == '[') {
			req.Messages = len(items)
		}
	} else if in[0] != '"' {
		return nil, errors.New("input must be a string or an array")
	}
	mac := hmac.New(sha256.New, digestKey)
	mac.Write(in)
	req.Digest = hex.EncodeToString(mac.Sum(nil))
	return req, nil
}

// objectBody checks that body is a non-empty JSON object and trims it.
func objectBody(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errEmptyBody
	}
	if trimmed[0] != '{' {
		return nil, errNotAnObject
	}
	return trimmed, nil
}
