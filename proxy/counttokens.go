package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Token counting: Anthropic's POST /v1/messages/count_tokens. Clients (coding
// agents above all) ask it how large a prompt is before they send it. The
// body has the Messages shape without max_tokens and stream; the answer is
// {"input_tokens": N} and nothing else the gateway must act on.
//
// A count sends the whole prompt to the provider, so it is a model call on
// that model for identity, policy and audit: action llm.invoke, with
// request.api "anthropic.count_tokens" so that a policy can tell it apart,
// the same prompt metadata and keyed digest as the Messages API (equal
// prompts, equal digests), a decision record before it is forwarded and a
// completion record after. What a count cannot do is spend or produce
// tokens: no max_tokens obligation is applied to it, no token budget is
// reserved or charged, and its answer carries no tool call. Providers of
// format openai have no such endpoint; a count of one of their models is
// refused with 400 before anything is forwarded, never answered with a
// made-up number.

// APICountTokens names Anthropic's token counting API in the policy input
// (request.api) and in audit records. The policy action is llm.invoke.
const APICountTokens API = "anthropic.count_tokens"

// countTokensPath is the client-facing path, and the upstream one below an
// Anthropic provider's base URL.
const (
	countTokensPath         = "/v1/messages/count_tokens"
	countTokensUpstreamPath = "/messages/count_tokens"
)

// Errors of a count_tokens body that the Messages API would accept: the
// provider refuses these fields, so the gateway says so before asking.
var (
	errCountMaxTokens = errors.New("max_tokens is not a field of count_tokens (a count generates no output): remove it")
	errCountStream    = errors.New("stream is not a field of count_tokens (a count is one JSON answer): remove it")
)

// countTokensBody is the part of a count_tokens request the gateway reads.
// Its fields are messagesBody's, but for max_tokens and stream, read only to
// refuse them (present at all, even null or false).
type countTokensBody struct {
	Model     string          `json:"model"`
	Stream    json.RawMessage `json:"stream"`
	MaxTokens json.RawMessage `json:"max_tokens"`
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

// ParseCountTokensRequest normalizes an Anthropic count_tokens request body:
// model and a non-empty messages array are required, max_tokens and stream
// are refused. The prompt metadata (message count, bytes, keyed digest,
// tools offered, tool results carried) is read as ParseMessagesRequest reads
// it; MaxTokens is 0 and Stream false.
func ParseCountTokensRequest(body, digestKey []byte) (*LLMRequest, error) {
	trimmed, err := objectBody(body)
	if err != nil {
		return nil, err
	}
	var b countTokensBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	switch {
	case b.Model == "":
		return nil, errNoModel
	case b.MaxTokens != nil:
		return nil, errCountMaxTokens
	case b.Stream != nil:
		return nil, errCountStream
	case len(b.Messages) == 0:
		return nil, errNoMessages
	}
	req := &LLMRequest{API: APICountTokens, Model: b.Model}
	mb := messagesBody{Model: b.Model, System: b.System, Messages: b.Messages, Tools: b.Tools}
	if err := readMessagesPrompt(req, &mb, digestKey); err != nil {
		return nil, err
	}
	return req, nil
}

// countTokensAdapter sends a count to an Anthropic provider as the client
// wrote it (but for an aliased model's upstream name). Its codec reads what
// is relayed unread: an error answer.
func countTokensAdapter() *adapter {
	return &adapter{path: countTokensUpstreamPath, body: nativeBody, codec: func(*exchange) sseCodec { return &messagesCodec{} }}
}

// noAdapterError is the client's message when the provider of a model
// cannot serve the request's API.
func noAdapterError(x *exchange, rt *Route) error {
	if x.req.API == APICountTokens {
		return fmt.Errorf("the model %q is served by the provider %q in the %s format, which has no token counting endpoint; "+
			"count_tokens is only available for models of Anthropic-format providers", x.req.Model, rt.Provider.Name, rt.Provider.Format)
	}
	return fmt.Errorf("the model %q is served by a provider of format %q, which cannot serve the %s API", x.req.Model, rt.Provider.Format, x.req.API)
}

// readTokenCount reads a count_tokens answer: a JSON object whose keys are
// unique and whose input_tokens, spelt exactly so (a client matches keys
// exactly, encoding/json would not), is a non-negative integer. Other
// members are relayed unread; none of them can be a tool call.
func readTokenCount(b []byte) (int64, error) {
	if err := uniqueKeys(b); err != nil {
		return 0, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return 0, err
	}
	raw, ok := members["input_tokens"]
	if !ok || string(raw) == "null" {
		return 0, errors.New("input_tokens is missing")
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("input_tokens: %w", err)
	}
	if n < 0 {
		return 0, fmt.Errorf("input_tokens is negative (%d)", n)
	}
	return n, nil
}
