package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// chatRequest is the part of a chat completions request the fake reads.
// Unknown fields are ignored.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage       bool  `json:"include_usage"`
		IncludeObfuscation *bool `json:"include_obfuscation"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
	Custom *struct {
		Name string `json:"name"`
	} `json:"custom"`
}

// chatCall is a parsed chat completions request.
type chatCall struct {
	req    chatRequest
	convo  convo
	sc     scenario
	usage  bool // stream_options.include_usage
	obfusc bool // stream_options.include_obfuscation (default true)
}

// parseChat decodes and validates a chat completions request body the way
// the API does, strictly enough to catch a gateway that mangles one.
func parseChat(body []byte) (chatCall, *apiError) {
	var c chatCall
	if err := decodeJSON(body, &c.req); err != nil {
		return c, errInvalid("", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	req := &c.req
	if req.Model == "" {
		return c, errInvalid("model", "you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		return c, errInvalid("messages", "[] is too short - 'messages'")
	}
	if req.StreamOptions != nil && !req.Stream {
		return c, errInvalid("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	if req.N != nil && *req.N != 1 {
		return c, errInvalid("n", "fakeprovider: only n=1 is supported")
	}
	c.obfusc = true
	if o := req.StreamOptions; o != nil {
		c.usage = o.IncludeUsage
		if o.IncludeObfuscation != nil {
			c.obfusc = *o.IncludeObfuscation
		}
	}
	cv := &c.convo
	cv.model = req.Model
	for i, m := range req.Messages {
		text, err := contentText(m.Content)
		if err != nil {
			return c, errInvalid(fmt.Sprintf("messages.[%d].content", i), err.Error())
		}
		switch m.Role {
		case "system", "developer", "assistant":
		case "user":
			cv.userText = text
		case "tool":
			if m.ToolCallID == "" {
				return c, errInvalid(fmt.Sprintf("messages.[%d].tool_call_id", i), "Missing required parameter: 'messages.["+fmt.Sprint(i)+"].tool_call_id'.")
			}
		default:
			return c, errInvalid(fmt.Sprintf("messages.[%d].role", i), fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.", m.Role))
		}
		cv.lastRole, cv.lastText = m.Role, text
		cv.promptBytes += len(text) + len(m.ToolCalls)
	}
	for i, t := range req.Tools {
		var d toolDef
		switch {
		case t.Type == "function" && t.Function != nil:
			d = toolDef{name: t.Function.Name, schema: t.Function.Parameters}
		case t.Type == "custom" && t.Custom != nil:
			d = toolDef{name: t.Custom.Name}
		default:
			return c, errInvalid(fmt.Sprintf("tools[%d]", i), "Invalid tool: each tool needs a type of 'function' or 'custom' and its definition.")
		}
		if d.name == "" {
			return c, errInvalid(fmt.Sprintf("tools[%d].function.name", i), "Missing required parameter: 'tools["+fmt.Sprint(i)+"].function.name'.")
		}
		cv.tools = append(cv.tools, d)
		cv.promptBytes += len(d.name) + len(d.schema)
	}
	choice, err := chatToolChoice(req.ToolChoice)
	if err != nil {
		return c, errInvalid("tool_choice", err.Error())
	}
	cv.choice = choice
	if choice.mode != "auto" && choice.mode != "none" && len(cv.tools) == 0 {
		return c, errInvalid("tool_choice", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
	}
	for _, p := range []struct {
		name string
		v    *int
	}{{"max_tokens", req.MaxTokens}, {"max_completion_tokens", req.MaxCompletionTokens}} {
		if p.v == nil {
			continue
		}
		if *p.v < 1 {
			return c, errInvalid(p.name, fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", p.name, *p.v))
		}
		cv.maxTokens = *p.v
	}
	sc, perr := parseScenario(cv.userText)
	if perr != nil {
		return c, scenarioError(perr)
	}
	c.sc = sc
	return c, nil
}

// decodeJSON decodes one JSON value and refuses trailing data.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return badInput("trailing data after JSON value")
	}
	return nil
}

// contentText extracts the text of a message content: a string, an array of
// parts (the text of "text" parts is joined), or null.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badInput("content must be a string or an array of content parts")
		}
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badInput("content must be a string or an array of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "" {
			return "", badInput("each content part needs a type")
		}
		if p.Text != nil {
			b.WriteString(*p.Text)
		}
	}
	return b.String(), nil
}

// chatToolChoice reads tool_choice: "none", "auto", "required" or
// {"type":"function","function":{"name":...}}.
func chatToolChoice(raw json.RawMessage) (toolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return toolChoice{mode: "auto"}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "none", "auto", "required":
			return toolChoice{mode: s}, nil
		}
		return toolChoice{}, badInput("Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", s)
	}
	var o struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return toolChoice{}, badInput("Invalid type for 'tool_choice': expected a string or an object.")
	}
	if o.Type == "function" {
		if o.Function.Name == "" {
			return toolChoice{}, badInput("Missing required parameter: 'tool_choice.function.name'.")
		}
		return toolChoice{mode: "named", name: o.Function.Name}, nil
	}
	return toolChoice{mode: "auto"}, nil
}

// modelKind classifies a model id by the API that serves it.
func modelKind(id string) string {
	switch {
	case strings.HasPrefix(id, "claude"):
		return "anthropic"
	case strings.Contains(id, "embedding"):
		return "embedding"
	}
	return "chat"
}

// checkModel reports a 404 unless model is served and of the wanted kind.
func (s *Server) checkModel(model, kind string) *apiError {
	if !slices.Contains(s.models, model) || modelKind(model) != kind {
		return errModelNotFound(model)
	}
	return nil
}

// OpenAI chat completion response shapes.
type (
	chatCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		Choices           []chatChoice `json:"choices"`
		Usage             *chatUsage   `json:"usage"`
		ServiceTier       string       `json:"service_tier"`
		SystemFingerprint string       `json:"system_fingerprint"`
	}
	chatChoice struct {
		Index        int        `json:"index"`
		Message      chatOutMsg `json:"message"`
		Logprobs     *struct{}  `json:"logprobs"`
		FinishReason string     `json:"finish_reason"`
	}
	chatOutMsg struct {
		Role        string         `json:"role"`
		Content     *string        `json:"content"`
		Refusal     *string        `json:"refusal"`
		ToolCalls   []chatToolCall `json:"tool_calls,omitempty"`
		Annotations []any          `json:"annotations"`
	}
	chatToolCall struct {
		Index    *int   `json:"index,omitempty"` // streaming only
		ID       string `json:"id,omitempty"`
		Type     string `json:"type,omitempty"`
		Function struct {
			Name      string `json:"name,omitempty"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	chatUsage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
			AudioTokens  int `json:"audio_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens          int `json:"reasoning_tokens"`
			AudioTokens              int `json:"audio_tokens"`
			AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
			RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
		} `json:"completion_tokens_details"`
	}
)

func newChatUsage(r reply) *chatUsage {
	return &chatUsage{PromptTokens: r.promptTokens, CompletionTokens: r.completionTokens, TotalTokens: r.promptTokens + r.completionTokens}
}

// chatFinish is the finish_reason for f.
func chatFinish(f finish) string {
	switch f {
	case finishLength:
		return "length"
	case finishTool:
		return "tool_calls"
	}
	return "stop"
}

// chatCompletions answers POST /v1/chat/completions.
func (x *exchange) chatCompletions() {
	c, e := parseChat(x.body)
	if e != nil {
		x.fail(e)
		return
	}
	if e := x.s.checkModel(c.req.Model, "chat"); e != nil {
		x.fail(e)
		return
	}
	if c.sc.errStatus != 0 {
		x.fail(errScenario(c.sc.errStatus))
		return
	}
	r, err := answer(c.convo, c.sc, func(i int) string { return fmt.Sprintf("call_fake%08d%02d", x.seq, i) })
	if err != nil {
		x.fail(errInvalid("tools", err.Error()))
		return
	}
	if c.req.Stream {
		x.chatStream(c, r)
		return
	}
	if !x.sleep(c.sc.slow) {
		x.cancelled()
		return
	}
	msg := chatOutMsg{Role: "assistant", Annotations: []any{}}
	if len(r.calls) == 0 {
		t := r.text()
		msg.Content = &t
	}
	for _, tc := range r.calls {
		var out chatToolCall
		out.ID, out.Type = tc.id, "function"
		out.Function.Name, out.Function.Arguments = tc.name, tc.args
		msg.ToolCalls = append(msg.ToolCalls, out)
	}
	x.answerJSON(c.sc, chatCompletion{
		ID:                x.id("chatcmpl-fake"),
		Object:            "chat.completion",
		Created:           x.s.clock().Unix(),
		Model:             c.req.Model,
		Choices:           []chatChoice{{Message: msg, FinishReason: chatFinish(r.finish)}},
		Usage:             newChatUsage(r),
		ServiceTier:       "default",
		SystemFingerprint: "fp_fake",
	})
}
