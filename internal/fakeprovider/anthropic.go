package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// messagesRequest is the part of an Anthropic Messages request the fake
// reads. Unknown fields are ignored.
type messagesRequest struct {
	Model      *string         `json:"model"`
	MaxTokens  *int            `json:"max_tokens"`
	Messages   []antMessage    `json:"messages"`
	System     json.RawMessage `json:"system"`
	Stream     bool            `json:"stream"`
	Tools      []antTool       `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

type antMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type antTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// antBlock is an input content block.
type antBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"` // tool_result: string or blocks
	Input     json.RawMessage `json:"input"`   // tool_use
}

// messagesCall is a parsed Messages request.
type messagesCall struct {
	model  string
	stream bool
	convo  convo
	sc     scenario
}

// requireVersion enforces the anthropic-version header the API demands.
func requireVersion(r *http.Request) *apiError {
	if r.Header.Get("anthropic-version") == "" {
		return errInvalid("", "anthropic-version: header is required")
	}
	return nil
}

// parseMessages decodes and validates a Messages request body with the
// API's messages.
func parseMessages(body []byte) (messagesCall, *apiError) {
	var req messagesRequest
	var c messagesCall
	if err := decodeJSON(body, &req); err != nil {
		return c, errInvalid("", "There was an error parsing the body of your request. Ensure it is valid JSON.")
	}
	switch {
	case req.Model == nil || *req.Model == "":
		return c, errInvalid("", "model: Field required")
	case req.MaxTokens == nil:
		return c, errInvalid("", "max_tokens: Field required")
	case *req.MaxTokens < 1:
		return c, errInvalid("", "max_tokens: Input should be greater than or equal to 1")
	}
	c, e := readMessagesCall(&req)
	c.stream, c.convo.maxTokens = req.Stream, *req.MaxTokens
	return c, e
}

// readMessagesCall reads what the Messages API and count_tokens share: the
// model, system, messages, tools and tool_choice, and the scenario
// directives. The caller has checked the model is there.
func readMessagesCall(req *messagesRequest) (messagesCall, *apiError) {
	var c messagesCall
	if len(req.Messages) == 0 {
		return c, errInvalid("", "messages: at least one message is required")
	}
	c.model = *req.Model
	cv := &c.convo
	cv.model = c.model
	sys, err := antSystem(req.System)
	if err != nil {
		return c, errInvalid("", "system: "+err.Error())
	}
	cv.promptBytes = len(sys)
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return c, errInvalid("", fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i))
		}
		blocks, err := antBlocks(m.Content)
		if err != nil {
			return c, errInvalid("", fmt.Sprintf("messages.%d.content: %v", i, err))
		}
		var text, result strings.Builder
		hasText, hasResult := false, false
		for _, b := range blocks {
			switch b.Type {
			case "text":
				text.WriteString(b.Text)
				hasText = true
			case "tool_result":
				if b.ToolUseID == "" {
					return c, errInvalid("", fmt.Sprintf("messages.%d.content: tool_result.tool_use_id: Field required", i))
				}
				t, err := antResultText(b.Content)
				if err != nil {
					return c, errInvalid("", fmt.Sprintf("messages.%d.content: %v", i, err))
				}
				result.WriteString(t)
				hasResult = true
			case "tool_use":
				cv.promptBytes += len(b.Input)
			}
		}
		cv.promptBytes += text.Len() + result.Len()
		cv.lastRole, cv.lastText = m.Role, text.String()
		if m.Role == "user" {
			if hasResult {
				cv.lastRole, cv.lastText = "tool", result.String()
			}
			if hasText || !hasResult {
				cv.userText = text.String()
			}
		}
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return c, errInvalid("", fmt.Sprintf("tools.%d.name: Field required", i))
		}
		if (t.Type == "" || t.Type == "custom") && len(t.InputSchema) == 0 {
			return c, errInvalid("", fmt.Sprintf("tools.%d.custom.input_schema: Field required", i))
		}
		cv.tools = append(cv.tools, toolDef{name: t.Name, schema: t.InputSchema})
		cv.promptBytes += len(t.Name) + len(t.InputSchema)
	}
	choice, err := antToolChoice(req.ToolChoice)
	if err != nil {
		return c, errInvalid("", "tool_choice: "+err.Error())
	}
	cv.choice = choice
	sc, perr := parseScenario(cv.userText)
	if perr != nil {
		return c, scenarioError(perr)
	}
	c.sc = sc
	return c, nil
}

// antBlocks reads message content: a string (one text block) or an array of
// blocks, each with a type.
func antBlocks(raw json.RawMessage) ([]antBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, badInput("Field required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badInput("Input should be a valid string")
		}
		return []antBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []antBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, badInput("Input should be a valid list")
	}
	for i, b := range blocks {
		if b.Type == "" {
			return nil, badInput("%d.type: Field required", i)
		}
	}
	return blocks, nil
}

// antResultText is the text of a tool_result's content.
func antResultText(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil
	}
	blocks, err := antBlocks(raw)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString(bl.Text)
	}
	return b.String(), nil
}

// antSystem reads "system": a string or an array of text blocks.
func antSystem(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	blocks, err := antBlocks(raw)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, bl := range blocks {
		if bl.Type != "text" {
			return "", badInput("Input should be 'text'")
		}
		b.WriteString(bl.Text)
	}
	return b.String(), nil
}

// antToolChoice reads tool_choice: {"type":"auto"|"any"|"none"} or
// {"type":"tool","name":...}.
func antToolChoice(raw json.RawMessage) (toolChoice, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return toolChoice{mode: "auto"}, nil
	}
	var o struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return toolChoice{}, badInput("Input should be an object")
	}
	switch o.Type {
	case "auto", "none":
		return toolChoice{mode: o.Type}, nil
	case "any":
		return toolChoice{mode: "required"}, nil
	case "tool":
		if o.Name == "" {
			return toolChoice{}, badInput("tool.name: Field required")
		}
		return toolChoice{mode: "named", name: o.Name}, nil
	}
	return toolChoice{}, badInput("Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", o.Type)
}

// Anthropic response shapes.
type (
	antMessageOut struct {
		ID           string        `json:"id"`
		Type         string        `json:"type"`
		Role         string        `json:"role"`
		Model        string        `json:"model"`
		Content      []antBlockOut `json:"content"`
		StopReason   *string       `json:"stop_reason"`
		StopSequence *string       `json:"stop_sequence"`
		Usage        antUsage      `json:"usage"`
	}
	antBlockOut struct {
		Type  string          `json:"type"`
		Text  *string         `json:"text,omitempty"`
		ID    string          `json:"id,omitempty"`
		Name  string          `json:"name,omitempty"`
		Input json.RawMessage `json:"input,omitempty"`
	}
	antUsage struct {
		InputTokens              int    `json:"input_tokens"`
		CacheCreationInputTokens int    `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int    `json:"cache_read_input_tokens"`
		OutputTokens             int    `json:"output_tokens"`
		ServiceTier              string `json:"service_tier,omitempty"`
	}
)

// antStop is the stop_reason for f.
func antStop(f finish) string {
	switch f {
	case finishLength:
		return "max_tokens"
	case finishTool:
		return "tool_use"
	}
	return "end_turn"
}

// anthropicServes fails the exchange and reports false when model is not
// one the fake serves in the Anthropic format, or when the scenario asks
// for an error.
func (x *exchange) anthropicServes(model string, sc scenario) bool {
	if modelKind(model) != "anthropic" || x.s.checkModel(model, "anthropic") != nil {
		x.fail(&apiError{status: http.StatusNotFound, message: "model: " + model})
		return false
	}
	if sc.errStatus != 0 {
		x.fail(errScenario(sc.errStatus))
		return false
	}
	return true
}

// messages answers POST /v1/messages.
func (x *exchange) messages() {
	if e := requireVersion(x.r); e != nil {
		x.fail(e)
		return
	}
	c, e := parseMessages(x.body)
	if e != nil {
		x.fail(e)
		return
	}
	if !x.anthropicServes(c.model, c.sc) {
		return
	}
	r, err := answer(c.convo, c.sc, func(i int) string { return fmt.Sprintf("toolu_fake%08d%02d", x.seq, i) })
	if err != nil {
		x.fail(errInvalid("", err.Error()))
		return
	}
	if c.stream {
		x.messagesStream(c, r)
		return
	}
	if !x.sleep(c.sc.slow) {
		x.cancelled()
		return
	}
	msg := x.antMessage(c, r)
	if len(r.calls) == 0 {
		t := r.text()
		msg.Content = []antBlockOut{{Type: "text", Text: &t}}
	}
	for _, tc := range r.calls {
		msg.Content = append(msg.Content, antBlockOut{Type: "tool_use", ID: tc.id, Name: tc.name, Input: json.RawMessage(tc.args)})
	}
	stop := antStop(r.finish)
	msg.StopReason = &stop
	msg.Usage.OutputTokens = r.completionTokens
	x.answerJSON(c.sc, msg)
}

// antMessage is the message envelope with no content and no output yet.
func (x *exchange) antMessage(c messagesCall, r reply) antMessageOut {
	return antMessageOut{
		ID:      x.id("msg_fake"),
		Type:    "message",
		Role:    "assistant",
		Model:   c.model,
		Content: []antBlockOut{},
		Usage:   antUsage{InputTokens: r.promptTokens, ServiceTier: "standard"},
	}
}
