package fakeprovider

import (
	"encoding/json"
)

// countTokensRequest is what a count_tokens body may not carry, read to
// refuse it as the API does: a count generates nothing and streams nothing.
type countTokensRequest struct {
	MaxTokens json.RawMessage `json:"max_tokens"`
	Stream    json.RawMessage `json:"stream"`
}

// antTokenCount is the count_tokens answer.
type antTokenCount struct {
	InputTokens int `json:"input_tokens"`
}

// parseCountTokens decodes and validates a count_tokens body: the Messages
// shape (model, messages, system, tools, tool_choice; thinking and other
// fields are ignored) without max_tokens and stream.
func parseCountTokens(body []byte) (messagesCall, *apiError) {
	var req messagesRequest
	var extra countTokensRequest
	if decodeJSON(body, &req) != nil || decodeJSON(body, &extra) != nil {
		return messagesCall{}, errInvalid("", "There was an error parsing the body of your request. Ensure it is valid JSON.")
	}
	switch {
	case req.Model == nil || *req.Model == "":
		return messagesCall{}, errInvalid("", "model: Field required")
	case extra.MaxTokens != nil:
		return messagesCall{}, errInvalid("", "max_tokens: Extra inputs are not permitted")
	case extra.Stream != nil:
		return messagesCall{}, errInvalid("", "stream: Extra inputs are not permitted")
	}
	return readMessagesCall(&req)
}

// countTokens answers POST /v1/messages/count_tokens with
// {"input_tokens": N}. The count is fake but deterministic: the input
// tokens the fake's Messages answer reports for the same system, messages
// and tools (their bytes divided by four, rounded up, at least one).
// Scenario directives error, slow, content_type and truncate apply; the
// others (tools, streams) have nothing to act on in a count.
func (x *exchange) countTokens() {
	if e := requireVersion(x.r); e != nil {
		x.fail(e)
		return
	}
	c, e := parseCountTokens(x.body)
	if e != nil {
		x.fail(e)
		return
	}
	if !x.anthropicServes(c.model, c.sc) {
		return
	}
	if !x.sleep(c.sc.slow) {
		x.cancelled()
		return
	}
	x.answerJSON(c.sc, antTokenCount{InputTokens: tokens(c.convo.promptBytes)})
}
