package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
)

// apiError is what a client sees when the gateway refuses or fails a request.
// It uses OpenAI's error shape so that SDKs surface it as a normal API error:
//
//	{"error":{"message":"…","type":"…","param":null,"code":"…","request_id":"…"}}
//
// The message is written for the caller; internal details (paths, provider
// keys, stack traces) stay in the gateway's log and audit record.
type apiError struct {
	Status    int
	Type      string
	Code      string
	Message   string
	RequestID string
	// Shape is the API whose error format the client expects.
	Shape errorShape
}

// errorShape selects an API's error format.
type errorShape uint8

const (
	shapeOpenAI errorShape = iota
	// shapeAnthropic is Anthropic's format:
	//
	//	{"type":"error","error":{"type":"…","message":"…","code":"…"},"request_id":"…"}
	shapeAnthropic
)

// shapeOf is the error format of the API served at path.
func shapeOf(path string) errorShape {
	if strings.HasPrefix(path, "/v1/messages") {
		return shapeAnthropic
	}
	return shapeOpenAI
}

// Error codes, stable and documented in docs/security-model.md.
const (
	codeBadRequest      = "invalid_request"
	codeBodyTooLarge    = "request_too_large"
	codeUnknownIdentity = "unknown_identity"
	codePolicyDenied    = "policy_denied"
	codePolicyError     = "policy_error"
	codeAuditFailed     = "audit_unavailable"
	codeUnknownModel    = "model_not_found"
	codeUpstream        = "upstream_error"
	codeNotFound        = "not_found"
	codeMethod          = "method_not_allowed"
	codeToolDenied      = "tool_call_denied"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message   string  `json:"message"`
	Type      string  `json:"type"`
	Param     *string `json:"param"`
	Code      string  `json:"code"`
	RequestID string  `json:"request_id,omitempty"`
}

func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

func writeError(w http.ResponseWriter, e apiError) {
	var body []byte
	if e.Shape == shapeAnthropic {
		body = anthropicErrorBody(e)
	} else {
		if e.Type == "" {
			e.Type = errorType(e.Status)
		}
		body, _ = json.Marshal(errorBody{Error: errorDetail{
			Message: e.Message, Type: e.Type, Code: e.Code, RequestID: e.RequestID,
		}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}

// anthropicError is Anthropic's error body.
type anthropicError struct {
	Type  string `json:"type"` // always "error"
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"code,omitempty"`
	} `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

func anthropicErrorBody(e apiError) []byte {
	var a anthropicError
	a.Type = "error"
	a.Error.Type = anthropicErrorType(e.Status)
	a.Error.Message = e.Message
	a.Error.Code = e.Code
	a.RequestID = e.RequestID
	b, _ := json.Marshal(a)
	return b
}

// anthropicErrorType is the error type Anthropic gives an HTTP status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}
