package policy

import "encoding/json"

// Input is the policy input contract: the document a bundle sees as `input`.
// The JSON names are the contract and are stable; docs/policy.md describes each
// field. The engine hands the same document to Rego whether it is built from
// this struct (the fast path) or decoded from its JSON (opa eval -i), which
// the tests check field by field.
//
// Lists are always present as arrays (nil encodes as []), except Chain, which
// is omitted when there is no delegation. Absent optional objects (User, Grant,
// Request, Tool, Approval) are omitted.
type Input struct {
	// Action is what is being asked: "llm.invoke", "tool.call", "grant.mint",
	// "grant.delegate", "task.complete", "approval.decide" or "admin.<verb>".
	Action    string    `json:"action"`
	Principal Principal `json:"principal"`
	// User is the original human user when the caller acts on their behalf.
	User *User `json:"user,omitempty"`
	// Chain lists the actor SPIFFE IDs a delegated task passed through, oldest first.
	Chain    []string  `json:"chain,omitempty"`
	Grant    *Grant    `json:"grant,omitempty"`
	Request  *Request  `json:"request,omitempty"`
	Tool     *Tool     `json:"tool,omitempty"`
	Approval *Approval `json:"approval,omitempty"`
}

// Principal is the authenticated caller, derived from its X.509-SVID.
type Principal struct {
	SPIFFEID    string `json:"spiffe_id"`
	TrustDomain string `json:"trust_domain"`
	// Kind is "human", "application" or "agent".
	Kind   string `json:"kind"`
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// User is the original user's context (a JWT-SVID or an OIDC ID token).
type User struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	Kind    string `json:"kind"`
}

// Grant is a verified task grant presented with the request.
type Grant struct {
	ID      string `json:"id"`
	Task    string `json:"task"`
	Purpose string `json:"purpose"`
	Tenant  string `json:"tenant"`
	Scopes  Scopes `json:"scopes"`
	// ExpiresAt is the grant's expiry in unix seconds. It is informative only:
	// callers check expiry before asking, it is not part of the decision cache
	// key, and a policy must not base decisions on it.
	ExpiresAt int64 `json:"expires_at"`
}

// Scopes narrow what a grant allows. Empty lists allow nothing; MaxTokens 0
// means no cap from the grant.
type Scopes struct {
	Models    []string `json:"models"`
	Tools     []string `json:"tools"`
	MaxTokens int      `json:"max_tokens"`
}

// MarshalJSON encodes nil lists as [] so that the JSON matches what the
// engine evaluates.
func (s Scopes) MarshalJSON() ([]byte, error) {
	type plain Scopes
	p := plain(s)
	p.Models = nonNil(p.Models)
	p.Tools = nonNil(p.Tools)
	return json.Marshal(p)
}

// Request is the normalized LLM request (prompt text is never included).
type Request struct {
	// API is "chat.completions", "responses", "embeddings", "anthropic.messages"
	// or "anthropic.count_tokens" (a token count: decided as a call of Model).
	API      string `json:"api"`
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Stream   bool   `json:"stream"`
	// Tools are the names of the tools offered to the model.
	Tools []string `json:"tools"`
	// ToolResults are the names of the tools whose results the request carries.
	ToolResults []string `json:"tool_results"`
	// MaxTokens is the requested output cap; 0 when the client set none.
	MaxTokens int    `json:"max_tokens"`
	Prompt    Prompt `json:"prompt"`
}

// MarshalJSON encodes nil lists as [] so that the JSON matches what the
// engine evaluates.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	p := plain(r)
	p.Tools = nonNil(p.Tools)
	p.ToolResults = nonNil(p.ToolResults)
	return json.Marshal(p)
}

// Prompt is metadata about the prompt: its size, never its text.
type Prompt struct {
	Bytes    int `json:"bytes"`
	Messages int `json:"messages"`
}

// Tool is the tool being called, for "tool.call".
type Tool struct {
	Name   string `json:"name"`
	Server string `json:"server"`
}

// Approval is the approval being decided, for "approval.decide". The
// parked request's chain is the input's Chain; Principal is the approver.
type Approval struct {
	ID string `json:"id"`
	// Requester is the SPIFFE ID of the caller whose action is parked.
	Requester string `json:"requester"`
	// Tenant is the requester's tenant; Action the parked action
	// ("llm.invoke", "tool.call", ...); User the subject of the user the
	// requester acts for ("" when none).
	Tenant string `json:"tenant"`
	Action string `json:"action"`
	User   string `json:"user"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
