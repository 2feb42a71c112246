package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// messagesBody is the subset of an Anthropic Messages request the gateway reads.
type messagesBody struct {
	Model     string          `json:"model"`
	Stream    bool            `json:"stream"`
	MaxTokens *int            `json:"max_tokens"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// messagesBlock is the part of a content block the gateway reads.
type messagesBlock struct {
	Type      string `json:"type"`
	ID        string `json:"id"`          // tool_use
	Name      string `json:"name"`        // tool_use
	ToolUseID string `json:"tool_use_id"` // tool_result
}

// ParseMessagesRequest normalizes an Anthropic Messages API request body.
// max_tokens is required, as the Messages API requires it. Tool results are
// the tool_result blocks, named through the tool_use blocks they answer.
func ParseMessagesRequest(body, digestKey []byte) (*LLMRequest, error) {
	trimmed, err := objectBody(body)
	if err != nil {
		return nil, err
	}
	var b messagesBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	switch {
	case b.Model == "":
		return nil, errNoModel
	case b.MaxTokens == nil:
		return nil, errNoMaxTokens
	case *b.MaxTokens < 0:
		return nil, errBadMaxTokens
	case len(b.Messages) == 0:
		return nil, errNoMessages
	}
	req := &LLMRequest{API: APIAnthropicMessages, Model: b.Model, Stream: b.Stream, MaxTokens: *b.MaxTokens}
	if err := readMessagesPrompt(req, &b, digestKey); err != nil {
		return nil, err
	}
	return req, nil
}

// readMessagesPrompt fills req's prompt metadata from a Messages-shaped body
// (the Messages API's and count_tokens'): message count, prompt bytes, the
// keyed digest of system and messages, offered tools and the tools whose
// results the messages carry. Equal prompts get equal digests on both APIs.
func readMessagesPrompt(req *LLMRequest, b *messagesBody, digestKey []byte) error {
	req.Messages, req.PromptBytes = len(b.Messages), len(b.System)
	for _, t := range b.Tools {
		if t.Name != "" {
			req.Tools = append(req.Tools, t.Name)
		}
	}
	mac := hmac.New(sha256.New, digestKey)
	mac.Write(b.System)
	mac.Write([]byte{0})
	names := map[string]string{}
	for i, m := range b.Messages {
		req.PromptBytes += len(m.Content)
		mac.Write([]byte(m.Role))
		mac.Write([]byte{0})
		mac.Write(m.Content)
		mac.Write([]byte{0})
		c := bytes.TrimSpace(m.Content)
		if len(c) == 0 || c[0] != '[' {
			continue // a string is text only
		}
		var blocks []messagesBlock
		if err := json.Unmarshal(c, &blocks); err != nil {
			return fmt.Errorf("messages[%d].content: %w", i, err)
		}
		for _, bl := range blocks {
			switch bl.Type {
			case "tool_use":
				names[bl.ID] = bl.Name
			case "tool_result":
				name := names[bl.ToolUseID]
				if name == "" {
					name = "unknown:" + bl.ToolUseID
				}
				req.ToolResults = append(req.ToolResults, name)
			}
		}
	}
	req.Digest = hex.EncodeToString(mac.Sum(nil))
	return nil
}
