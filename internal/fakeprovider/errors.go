package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an error answer before it is put in a provider's shape.
type apiError struct {
	status  int
	message string
	typ     string // provider type; derived from status when empty
	code    string // OpenAI "code"; null when empty
	param   string // OpenAI "param"; null when empty
}

func errInvalid(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: msg, param: param}
}

func errUnauthenticated(msg string) *apiError {
	return &apiError{status: http.StatusUnauthorized, message: msg}
}

func errTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("Request exceeds the maximum allowed size of %d bytes.", MaxBodyBytes)}
}

func errNotFoundPath(method, path string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("Invalid URL (%s %s)", method, path), code: "unknown_url"}
}

func errModelNotFound(model string) *apiError {
	return &apiError{
		status:  http.StatusNotFound,
		message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model),
		code:    "model_not_found",
	}
}

// errScenario is the error a "[fake:error=CODE]" directive asks for.
func errScenario(status int) *apiError {
	e := &apiError{status: status, message: "fakeprovider: scenario error " + http.StatusText(status)}
	switch status {
	case http.StatusUnauthorized:
		e.code = "invalid_api_key"
	case http.StatusTooManyRequests:
		e.message = "Rate limit reached for requests (fake scenario)."
		e.code = "rate_limit_exceeded"
	case http.StatusInternalServerError:
		e.message = "The server had an error while processing your request. Sorry about that!"
	case 529:
		e.message = "Overloaded"
	}
	return e
}

// openAIType is the "type" OpenAI gives an error of this status.
func openAIType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// anthropicType is the "type" Anthropic gives an error of this status.
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// nullable renders "" as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// openAIShape is the body OpenAI sends: {"error":{message,type,param,code}}.
func (e *apiError) openAIShape() any {
	typ := e.typ
	if typ == "" {
		typ = openAIType(e.status)
	}
	return map[string]openAIErrorBody{"error": {Message: e.message, Type: typ, Param: nullable(e.param), Code: nullable(e.code)}}
}

// anthropicShape is the body Anthropic sends:
// {"type":"error","error":{type,message},"request_id":...}.
func (e *apiError) anthropicShape(requestID string) any {
	typ := e.typ
	if typ == "" {
		typ = anthropicType(e.status)
	}
	return struct {
		Type      string             `json:"type"`
		Error     anthropicErrorBody `json:"error"`
		RequestID string             `json:"request_id,omitempty"`
	}{"error", anthropicErrorBody{Type: typ, Message: e.message}, requestID}
}

// fail writes e in the shape of the API the request speaks.
func (x *exchange) fail(e *apiError) {
	x.log.WithField("status", e.status).Debug("fakeprovider: error answer")
	if x.api == apiAnthropic {
		x.writeJSON(e.status, e.anthropicShape(x.w.Header().Get("request-id")))
		return
	}
	x.writeJSON(e.status, e.openAIShape())
}

// writeJSON writes v as a JSON response.
func (x *exchange) writeJSON(status int, v any) { x.writeJSONAs(status, v, scenario{}) }

// answerJSON writes v as a model's 200 answer, misbehaving as the
// scenario's [fake:content_type] and [fake:truncate] ask.
func (x *exchange) answerJSON(sc scenario, v any) { x.writeJSONAs(http.StatusOK, v, sc) }

func (x *exchange) writeJSONAs(status int, v any, sc scenario) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value written here is built by this package; a failure is a bug.
		panic(fmt.Sprintf("fakeprovider: encode response: %v", err))
	}
	b = append(b, '\n')
	if sc.truncate {
		b = b[:len(b)/2]
	}
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	sc.labelAnswer(h)
	h.Set("Content-Length", fmt.Sprint(len(b)))
	x.w.WriteHeader(status)
	if _, err := x.w.Write(b); err != nil {
		x.cancelled()
	}
}

// inputError is a problem with a request, worded as the provider words it
// (capitalised, with punctuation) because clients see it verbatim.
type inputError string

func (e inputError) Error() string { return string(e) }

// badInput formats an inputError.
func badInput(format string, args ...any) error {
	return inputError(fmt.Sprintf(format, args...))
}

// labelAnswer applies a [fake:content_type] directive to a 2xx answer's
// headers: that Content-Type, or none at all (net/http then sniffs
// nothing, since the header is present but empty).
func (sc scenario) labelAnswer(h http.Header) {
	switch sc.contentType {
	case "":
	case "none":
		h["Content-Type"] = nil
	default:
		h.Set("Content-Type", sc.contentType)
	}
}
