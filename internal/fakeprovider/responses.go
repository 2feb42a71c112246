package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// responsesRequest is the part of a Responses API request the fake reads.
type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Tools           []struct {
		Type       string          `json:"type"`
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

// responsesItem is an input item: a message or a function call output.
type responsesItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	CallID  string          `json:"call_id"`
	Output  json.RawMessage `json:"output"`
}

// responsesCall is a parsed Responses request.
type responsesCall struct {
	req   responsesRequest
	convo convo
	sc    scenario
}

// parseResponses decodes and validates a Responses request body.
func parseResponses(body []byte) (responsesCall, *apiError) {
	var c responsesCall
	if err := decodeJSON(body, &c.req); err != nil {
		return c, errInvalid("", "We could not parse the JSON body of your request.")
	}
	req := &c.req
	if req.Model == "" {
		return c, errInvalid("model", "Missing required parameter: 'model'.")
	}
	cv := &c.convo
	cv.model = req.Model
	if req.Instructions != nil {
		cv.promptBytes += len(*req.Instructions)
	}
	in := bytes.TrimSpace(req.Input)
	var items []responsesItem
	var s string
	switch {
	case len(in) == 0 || string(in) == "null":
		return c, errInvalid("input", "Missing required parameter: 'input'.")
	case json.Unmarshal(in, &s) == nil:
		items = []responsesItem{{Type: "message", Role: "user", Content: in}}
	case json.Unmarshal(in, &items) != nil:
		return c, errInvalid("input", "Invalid type for 'input': expected a string or an array of input items.")
	}
	for i, it := range items {
		switch {
		case it.Type == "function_call_output":
			if it.CallID == "" {
				return c, errInvalid(fmt.Sprintf("input[%d].call_id", i), fmt.Sprintf("Missing required parameter: 'input[%d].call_id'.", i))
			}
			text, err := contentText(it.Output)
			if err != nil {
				return c, errInvalid(fmt.Sprintf("input[%d].output", i), err.Error())
			}
			cv.lastRole, cv.lastText = "tool", text
			cv.promptBytes += len(text)
		case it.Type == "" || it.Type == "message":
			text, err := contentText(it.Content)
			if err != nil {
				return c, errInvalid(fmt.Sprintf("input[%d].content", i), err.Error())
			}
			switch it.Role {
			case "user":
				cv.userText = text
			case "assistant", "system", "developer":
			default:
				return c, errInvalid(fmt.Sprintf("input[%d].role", i), fmt.Sprintf("Invalid value: '%s'. Supported values are: 'assistant', 'system', 'developer', and 'user'.", it.Role))
			}
			cv.lastRole, cv.lastText = it.Role, text
			cv.promptBytes += len(text)
		default:
			// Other items (function_call, reasoning, …) only count as prompt.
			cv.promptBytes += len(it.Content)
		}
	}
	for i, t := range req.Tools {
		if t.Type != "function" {
			continue
		}
		if t.Name == "" {
			return c, errInvalid(fmt.Sprintf("tools[%d].name", i), fmt.Sprintf("Missing required parameter: 'tools[%d].name'.", i))
		}
		cv.tools = append(cv.tools, toolDef{name: t.Name, schema: t.Parameters})
		cv.promptBytes += len(t.Name) + len(t.Parameters)
	}
	choice, err := responsesToolChoice(req.ToolChoice)
	if err != nil {
		return c, errInvalid("tool_choice", err.Error())
	}
	cv.choice = choice
	if m := req.MaxOutputTokens; m != nil {
		if *m < 16 {
			return c, errInvalid("max_output_tokens", fmt.Sprintf("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got %d instead.", *m))
		}
		cv.maxTokens = *m
	}
	sc, perr := parseScenario(cv.userText)
	if perr != nil {
		return c, scenarioError(perr)
	}
	c.sc = sc
	return c, nil
}

// responsesToolChoice reads tool_choice: "none", "auto", "required" or
// {"type":"function","name":...}.
func responsesToolChoice(raw json.RawMessage) (toolChoice, error) {
	var o struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '{' {
		if err := json.Unmarshal(raw, &o); err != nil {
			return toolChoice{}, err
		}
		if o.Type == "function" && o.Name != "" {
			return toolChoice{mode: "named", name: o.Name}, nil
		}
		return toolChoice{mode: "auto"}, nil
	}
	return chatToolChoice(raw)
}

// Responses API shapes; fields the fake never varies are fixed values.
type (
	responseObj struct {
		ID                 string          `json:"id"`
		Object             string          `json:"object"`
		CreatedAt          int64           `json:"created_at"`
		Status             string          `json:"status"`
		Error              any             `json:"error"`
		IncompleteDetails  any             `json:"incomplete_details"`
		Instructions       *string         `json:"instructions"`
		MaxOutputTokens    *int            `json:"max_output_tokens"`
		Model              string          `json:"model"`
		Output             []responseItem  `json:"output"`
		ParallelToolCalls  bool            `json:"parallel_tool_calls"`
		PreviousResponseID *string         `json:"previous_response_id"`
		Temperature        float64         `json:"temperature"`
		ToolChoice         json.RawMessage `json:"tool_choice"`
		Tools              []any           `json:"tools"`
		TopP               float64         `json:"top_p"`
		Truncation         string          `json:"truncation"`
		Usage              *responseUsage  `json:"usage"`
		Metadata           map[string]any  `json:"metadata"`
	}
	responseItem struct {
		Type      string         `json:"type"`
		ID        string         `json:"id"`
		Status    string         `json:"status"`
		Role      string         `json:"role,omitempty"`
		Content   []responsePart `json:"content,omitempty"`
		CallID    string         `json:"call_id,omitempty"`
		Name      string         `json:"name,omitempty"`
		Arguments *string        `json:"arguments,omitempty"`
	}
	responsePart struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	responseUsage struct {
		InputTokens        int `json:"input_tokens"`
		InputTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokens        int `json:"output_tokens"`
		OutputTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
		TotalTokens int `json:"total_tokens"`
	}
)

// responseShell is the response object before output is filled in.
func (x *exchange) responseShell(c responsesCall) responseObj {
	choice := c.req.ToolChoice
	if len(bytes.TrimSpace(choice)) == 0 {
		choice = json.RawMessage(`"auto"`)
	}
	tools := []any{}
	for _, t := range c.req.Tools {
		tools = append(tools, t)
	}
	return responseObj{
		ID: x.id("resp_fake"), Object: "response", CreatedAt: x.s.clock().Unix(),
		Status: "in_progress", Instructions: c.req.Instructions, MaxOutputTokens: c.req.MaxOutputTokens,
		Model: c.req.Model, Output: []responseItem{}, ParallelToolCalls: true, Temperature: 1,
		ToolChoice: choice, Tools: tools, TopP: 1, Truncation: "disabled", Metadata: map[string]any{},
	}
}

// finishResponse fills in the output, status and usage of a finished answer.
func (x *exchange) finishResponse(resp *responseObj, r reply) {
	resp.Output = responseOutput(x, r, true)
	resp.Status = "completed"
	if r.finish == finishLength {
		resp.Status = "incomplete"
		resp.IncompleteDetails = map[string]string{"reason": "max_output_tokens"}
	}
	u := &responseUsage{InputTokens: r.promptTokens, OutputTokens: r.completionTokens, TotalTokens: r.promptTokens + r.completionTokens}
	resp.Usage = u
}

// responseOutput is the output items of r; done marks them completed.
func responseOutput(x *exchange, r reply, done bool) []responseItem {
	status := "in_progress"
	if done {
		status = "completed"
		if r.finish == finishLength {
			status = "incomplete"
		}
	}
	if len(r.calls) == 0 {
		var parts []responsePart
		if done {
			parts = []responsePart{{Type: "output_text", Text: r.text(), Annotations: []any{}, Logprobs: []any{}}}
		}
		return []responseItem{{Type: "message", ID: x.id("msg_fake"), Status: status, Role: "assistant", Content: parts}}
	}
	var out []responseItem
	for i, tc := range r.calls {
		args := ""
		if done {
			args = tc.args
		}
		out = append(out, responseItem{Type: "function_call", ID: fmt.Sprintf("fc_fake%08d%02d", x.seq, i), Status: status, CallID: tc.id, Name: tc.name, Arguments: &args})
	}
	return out
}

// responses answers POST /v1/responses.
func (x *exchange) responses() {
	c, e := parseResponses(x.body)
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
		x.responsesStream(c, r)
		return
	}
	if !x.sleep(c.sc.slow) {
		x.cancelled()
		return
	}
	resp := x.responseShell(c)
	x.finishResponse(&resp, r)
	x.answerJSON(c.sc, resp)
}
