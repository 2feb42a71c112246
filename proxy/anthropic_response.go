package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// messagesResponse is an Anthropic Messages response as translation reads it.
type messagesResponse struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Model   string `json:"model"`
	Content []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason *string        `json:"stop_reason"`
	Usage      anthropicUsage `json:"usage"`
}

// chatCompletion is the chat completion the translation writes.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      *chatOutMsg `json:"message,omitempty"`
	Delta        *chatOutMsg `json:"delta,omitempty"`
	FinishReason *string     `json:"finish_reason"`
	Logprobs     *struct{}   `json:"logprobs"`
}

type chatOutMsg struct {
	Role      string        `json:"role,omitempty"`
	Content   *string       `json:"content,omitempty"`
	Refusal   *string       `json:"refusal,omitempty"`
	ToolCalls []chatOutCall `json:"tool_calls,omitempty"`
}

type chatOutCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// finishReason maps an Anthropic stop_reason to a chat finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// messagesToChat translates a Messages response into a chat completion,
// returning it with the usage and tool calls it holds. Thinking blocks are
// dropped; text blocks are joined.
func messagesToChat(b []byte, created int64) ([]byte, *Usage, []*toolCallAcc, error) {
	var m messagesResponse
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("decode Messages response: %w", err)
	}
	if m.Type != "message" {
		return nil, nil, nil, fmt.Errorf("decode Messages response: type %q, want message", m.Type)
	}
	msg := &chatOutMsg{Role: "assistant"}
	var text strings.Builder
	hasText := false
	var calls []*toolCallAcc
	for _, c := range m.Content {
		switch c.Type {
		case "text":
			text.WriteString(c.Text)
			hasText = true
		case "tool_use":
			args := string(c.Input)
			if args == "" {
				args = "{}"
			}
			oc := chatOutCall{ID: c.ID, Type: "function"}
			oc.Function.Name, oc.Function.Arguments = c.Name, args
			msg.ToolCalls = append(msg.ToolCalls, oc)
			acc := newToolCall(c.ID, c.Name)
			acc.args.Write([]byte(args))
			calls = append(calls, acc)
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	stop := ""
	if m.StopReason != nil {
		stop = *m.StopReason
	}
	fr := finishReason(stop)
	u := m.Usage.usage()
	out, err := json.Marshal(chatCompletion{
		ID: m.ID, Object: "chat.completion", Created: created, Model: m.Model,
		Choices: []chatChoice{{Index: 0, Message: msg, FinishReason: &fr}},
		Usage:   u,
	})
	return out, u, calls, err
}

// messagesErrorToChat rewrites an Anthropic error body in OpenAI's shape
// and maps Anthropic's 529 (overloaded) to 503, which OpenAI clients know.
func messagesErrorToChat(status int, b []byte) (int, []byte) {
	var a anthropicError
	msg, typ := strings.TrimSpace(string(b)), "api_error"
	if json.Unmarshal(b, &a) == nil && a.Error.Message != "" {
		msg, typ = a.Error.Message, a.Error.Type
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	if status == 529 {
		status = http.StatusServiceUnavailable
	}
	out, _ := json.Marshal(errorBody{Error: errorDetail{Message: msg, Type: typ, Code: typ}})
	return status, out
}
