package audit

// Event is what callers record. The log adds seq, time and prev in front of
// its fields; see docs/audit-format.md for the exact line layout.
//
// Field order here is the order on disk: changing it changes the bytes of
// every future record (the golden tests will say so).
type Event struct {
	Type      string         `json:"type"` // "decision", "completion", "recovery", "policy.reload", "startup", "shutdown", ...
	RequestID string         `json:"request_id,omitempty"`
	Action    string         `json:"action,omitempty"` // e.g. "llm.invoke"
	Principal *Principal     `json:"principal,omitempty"`
	Request   *Request       `json:"request,omitempty"`
	Decision  *Decision      `json:"decision,omitempty"`
	Status    int            `json:"status,omitempty"` // HTTP status returned to the client
	Usage     *Usage         `json:"usage,omitempty"`
	ToolCalls []ToolCall     `json:"tool_calls,omitempty"`
	LatencyMS float64        `json:"latency_ms,omitempty"`
	Error     string         `json:"error,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"` // free-form extra facts (recovery info, reload revision...)
}

// Principal is the caller as the identity layer resolved it.
type Principal struct {
	SPIFFEID    string `json:"spiffe_id"`
	TrustDomain string `json:"trust_domain"`
	Kind        string `json:"kind"`
	Tenant      string `json:"tenant"`
	Name        string `json:"name"`
}

// Request is the normalized shape of an LLM request. It never carries
// prompt text, only its size and a keyed digest.
type Request struct {
	API           string   `json:"api"`
	Model         string   `json:"model"`
	Provider      string   `json:"provider"`
	UpstreamModel string   `json:"upstream_model,omitempty"`
	Stream        bool     `json:"stream"`
	MaxTokens     int      `json:"max_tokens,omitempty"`
	Prompt        *Prompt  `json:"prompt,omitempty"`
	Tools         []string `json:"tools,omitempty"`
}

// Prompt describes a prompt without revealing it.
type Prompt struct {
	Bytes    int    `json:"bytes"`
	Messages int    `json:"messages"`
	Digest   string `json:"digest"` // keyed digest; never text
}

// Decision is the policy decision as it was enforced.
type Decision struct {
	Allow       bool           `json:"allow"`
	Reasons     []string       `json:"reasons"`
	Revision    string         `json:"revision"`
	CacheHit    bool           `json:"cache_hit"`
	Obligations map[string]any `json:"obligations,omitempty"`
}

// Usage is the token accounting reported by the provider.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ToolCall is a tool call the model emitted; arguments appear only as a digest.
type ToolCall struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	ArgumentsDigest string `json:"arguments_digest"`
}
