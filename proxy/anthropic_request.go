package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// defaultAnthropicMaxTokens is the max_tokens sent to an Anthropic provider
// for a chat completion that set none: the Messages API requires one.
const defaultAnthropicMaxTokens = 4096

// translationError is a chat completion request that cannot be expressed in
// the Messages API. It becomes a 400 naming the field.
type translationError struct{ msg string }

func (e *translationError) Error() string { return e.msg }

func untranslatable(format string, a ...any) error {
	return &translationError{msg: fmt.Sprintf(format, a...) + "; this model is served by an Anthropic provider, which cannot express it"}
}

// chatIgnored are chat completion fields with no Messages equivalent that
// change nothing a caller can rely on; they are dropped.
var chatIgnored = map[string]bool{
	"store": true, "metadata": true, "seed": true, "service_tier": true, "stream_options": true,
	"max_tokens": true, "max_completion_tokens": true, "model": true, "messages": true, "stream": true,
	"temperature": true, "top_p": true, "stop": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "user": true, "n": true, "logprobs": true,
	"frequency_penalty": true, "presence_penalty": true, "response_format": true,
}

// chatRequestFull is a chat completion request as far as translation reads it.
type chatRequestFull struct {
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Stream      bool            `json:"stream"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	Stop        json.RawMessage `json:"stop"`
	Tools       []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	User              string          `json:"user"`
	N                 *int            `json:"n"`
	Logprobs          *bool           `json:"logprobs"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	ResponseFormat    *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// block is an Anthropic content block as the translation writes it.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthropicMessage struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type messagesRequest struct {
	Model         string             `json:"model"`
	MaxTokens     int                `json:"max_tokens"`
	System        []block            `json:"system,omitempty"`
	Messages      []anthropicMessage `json:"messages"`
	Stream        bool               `json:"stream,omitempty"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
	StopSequences []string           `json:"stop_sequences,omitempty"`
	Tools         []anthropicTool    `json:"tools,omitempty"`
	ToolChoice    map[string]any     `json:"tool_choice,omitempty"`
	Metadata      map[string]string  `json:"metadata,omitempty"`
}

// chatToMessages translates a chat completion request body into a Messages
// request for model, with maxTokens as its max_tokens (0: the default).
// docs/providers.md lists what maps and what is refused.
func chatToMessages(body []byte, model string, maxTokens int) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	var unknown []string
	for k, v := range fields {
		if !chatIgnored[k] && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, untranslatable("the field %q is not supported", unknown[0])
	}
	var c chatRequestFull
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	switch {
	case c.N != nil && *c.N != 1:
		return nil, untranslatable("n=%d asks for several choices", *c.N)
	case c.Logprobs != nil && *c.Logprobs:
		return nil, untranslatable("logprobs are not available")
	case c.FrequencyPenalty != nil && *c.FrequencyPenalty != 0, c.PresencePenalty != nil && *c.PresencePenalty != 0:
		return nil, untranslatable("frequency and presence penalties are not available")
	case c.ResponseFormat != nil && c.ResponseFormat.Type != "" && c.ResponseFormat.Type != "text":
		return nil, untranslatable("response_format %q is not available", c.ResponseFormat.Type)
	case c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 1):
		return nil, untranslatable("temperature %g is outside 0..1", *c.Temperature)
	}
	if maxTokens <= 0 {
		maxTokens = defaultAnthropicMaxTokens
	}
	out := messagesRequest{Model: model, MaxTokens: maxTokens, Stream: c.Stream, Temperature: c.Temperature, TopP: c.TopP}
	if c.User != "" {
		out.Metadata = map[string]string{"user_id": c.User}
	}
	stops, err := stopSequences(c.Stop)
	if err != nil {
		return nil, err
	}
	out.StopSequences = stops
	for _, t := range c.Tools {
		if t.Type != "function" {
			return nil, untranslatable("tools of type %q are not supported", t.Type)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, anthropicTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if out.ToolChoice, err = toolChoice(c.ToolChoice, c.ParallelToolCalls); err != nil {
		return nil, err
	}
	for i, m := range c.Messages {
		var blocks []block
		role := m.Role
		switch m.Role {
		case "system", "developer":
			text, err := textContent(m.Content, i)
			if err != nil {
				return nil, err
			}
			out.System = append(out.System, block{Type: "text", Text: text})
			continue
		case "user":
			if blocks, err = userBlocks(m.Content, i); err != nil {
				return nil, err
			}
		case "assistant":
			if len(bytes.TrimSpace(m.Content)) > 0 && !bytes.Equal(bytes.TrimSpace(m.Content), []byte("null")) {
				text, err := textContent(m.Content, i)
				if err != nil {
					return nil, err
				}
				if text != "" {
					blocks = append(blocks, block{Type: "text", Text: text})
				}
			}
			for _, tc := range m.ToolCalls {
				args := json.RawMessage(tc.Function.Arguments)
				if strings.TrimSpace(tc.Function.Arguments) == "" {
					args = json.RawMessage("{}")
				}
				if !json.Valid(args) || bytes.TrimSpace(args)[0] != '{' {
					return nil, &translationError{msg: fmt.Sprintf("messages[%d].tool_calls: arguments of %q are not a JSON object", i, tc.Function.Name)}
				}
				blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: args})
			}
		case "tool":
			text, err := textContent(m.Content, i)
			if err != nil {
				return nil, err
			}
			role = "user"
			blocks = []block{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: text}}
		default:
			return nil, untranslatable("messages[%d]: role %q is not supported", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		// The Messages API alternates roles: consecutive turns of one role
		// (such as several tool results) become one message.
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, anthropicMessage{Role: role, Content: blocks})
	}
	if len(out.Messages) == 0 {
		return nil, &translationError{msg: "messages: at least one user or assistant message is required"}
	}
	return json.Marshal(out)
}

func stopSequences(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, &translationError{msg: "stop must be a string or an array of strings"}
	}
	return many, nil
}

func toolChoice(raw json.RawMessage, parallel *bool) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	var tc map[string]any
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var s string
		var obj struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(raw, &s) == nil:
			m := map[string]string{"auto": "auto", "none": "none", "required": "any"}
			t, ok := m[s]
			if !ok {
				return nil, &translationError{msg: fmt.Sprintf("tool_choice %q is not valid", s)}
			}
			tc = map[string]any{"type": t}
		case json.Unmarshal(raw, &obj) == nil && obj.Type == "function" && obj.Function.Name != "":
			tc = map[string]any{"type": "tool", "name": obj.Function.Name}
		default:
			return nil, untranslatable("this tool_choice is not supported")
		}
	}
	if parallel != nil && !*parallel {
		if tc == nil {
			tc = map[string]any{"type": "auto"}
		}
		if tc["type"] != "none" {
			tc["disable_parallel_tool_use"] = true
		}
	}
	return tc, nil
}

// contentPart is an OpenAI message content part.
type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

func parts(raw json.RawMessage, i int) (string, []contentPart, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, fmt.Errorf("messages[%d].content: %w", i, err)
		}
		return s, nil, nil
	}
	var ps []contentPart
	if err := json.Unmarshal(raw, &ps); err != nil {
		return "", nil, &translationError{msg: fmt.Sprintf("messages[%d].content must be a string or an array of parts", i)}
	}
	return "", ps, nil
}

// textContent flattens a content that may only hold text.
func textContent(raw json.RawMessage, i int) (string, error) {
	s, ps, err := parts(raw, i)
	if err != nil || ps == nil {
		return s, err
	}
	var b strings.Builder
	for _, p := range ps {
		if p.Type != "text" && p.Type != "refusal" {
			return "", untranslatable("messages[%d]: content parts of type %q are only supported in user messages", i, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func userBlocks(raw json.RawMessage, i int) ([]block, error) {
	s, ps, err := parts(raw, i)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		return []block{{Type: "text", Text: s}}, nil
	}
	var out []block
	for _, p := range ps {
		switch p.Type {
		case "text":
			out = append(out, block{Type: "text", Text: p.Text})
		case "image_url":
			if p.ImageURL == nil {
				return nil, &translationError{msg: fmt.Sprintf("messages[%d]: image_url part without a url", i)}
			}
			src, err := imageFrom(p.ImageURL.URL, i)
			if err != nil {
				return nil, err
			}
			out = append(out, block{Type: "image", Source: src})
		default:
			return nil, untranslatable("messages[%d]: content parts of type %q are not supported", i, p.Type)
		}
	}
	return out, nil
}

// imageFrom maps an image URL: a base64 data URL or an https URL.
func imageFrom(u string, i int) (*imageSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || mt == "" {
			return nil, untranslatable("messages[%d]: only base64 data URLs are supported for images", i)
		}
		return &imageSource{Type: "base64", MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") {
		return &imageSource{Type: "url", URL: u}, nil
	}
	return nil, untranslatable("messages[%d]: image URLs must be https or base64 data URLs", i)
}
