package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// bodySpec describes the chat completion request every worker sends.
type bodySpec struct {
	Model  string
	Bytes  int  // approximate body size; the user message is padded to reach it
	Stream bool // ask for SSE, with a usage chunk
	Events int  // content events per stream ([fake:chunks=N]); 0 leaves the answer's own length
	SlowMS int  // the fake provider waits this long before each chunk or answer ([fake:slow=MS])
}

const filler = "Summarise the customer's ticket and propose a reply that is polite, precise and short. "

// chatBody builds an OpenAI chat completion body of about spec.Bytes bytes.
// The result is the same for the same spec, so a decision cache stays warm.
func chatBody(spec bodySpec) ([]byte, error) {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	body := struct {
		Model         string         `json:"model"`
		Messages      []message      `json:"messages"`
		MaxTokens     int            `json:"max_completion_tokens,omitempty"`
		Stream        bool           `json:"stream,omitempty"`
		StreamOptions *streamOptions `json:"stream_options,omitempty"`
	}{
		Model: spec.Model,
		Messages: []message{
			{Role: "system", Content: "You are a helpful support assistant for Acme Corp."},
			{Role: "user", Content: ""},
		},
		MaxTokens: 256,
		Stream:    spec.Stream,
	}
	if spec.Stream {
		body.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	prefix := "Hello. "
	if spec.Events > 0 {
		prefix = fmt.Sprintf("[fake:chunks=%d] ", spec.Events)
	}
	if spec.SlowMS > 0 {
		prefix = fmt.Sprintf("[fake:slow=%d] ", spec.SlowMS) + prefix
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	pad := max(spec.Bytes-len(b)-len(prefix), 0)
	body.Messages[1].Content = prefix + strings.Repeat(filler, pad/len(filler)+1)[:pad]
	b, err = json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return b, nil
}
