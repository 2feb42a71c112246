package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

var (
	// errResponseTooLarge refuses a JSON answer too large to inspect.
	errResponseTooLarge = fmt.Errorf("response larger than %d bytes cannot be inspected", maxJSONCapture)
	// errUnrequestedStream refuses an event stream sent to a request that
	// did not ask for one: the client would read it in a way the gateway
	// cannot predict.
	errUnrequestedStream = errors.New("the provider answered a request that did not ask for a stream with an event stream")
	// errUnreadable refuses a 2xx answer the gateway cannot parse: relayed,
	// it could carry a tool call that no policy decision saw.
	errUnreadable = errors.New("answer could not be parsed, so its tool calls could not be checked")
)

// isEventStream reports whether a Content-Type is text/event-stream, with
// media types compared as RFC 9110 says: case-insensitively, parameters
// aside.
func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// relayedProviderHeaders are the provider's response headers a client gets:
// those that describe the body and when to retry. The rest describe the
// gateway's account with the provider (organization and project ids, its
// rate-limit counters), the provider's request ids (relayed under
// X-Upstream-Request-Id), cookies or redirections, and stay with the
// gateway.
var relayedProviderHeaders = map[string]bool{
	"Content-Type":     true,
	"Content-Length":   true,
	"Content-Encoding": true,
	"Cache-Control":    true,
	"Retry-After":      true,
	"Trailer":          true,
}

// keepProviderHeaders deletes from h every header not in
// relayedProviderHeaders.
func keepProviderHeaders(h http.Header) {
	for k := range h {
		if !relayedProviderHeaders[k] {
			delete(h, k)
		}
	}
}

// modifyResponse runs when the provider's response headers arrive, before
// anything is written to the client. Streams are tapped event by event; a
// JSON answer of a model API is read whole (bounded), translated if need
// be, and its tool calls re-authorized before the client gets any of it.
func (g *Gateway) modifyResponse(res *http.Response) error {
	x := exchangeFrom(res.Request.Context())
	x.status = res.StatusCode
	h := res.Header
	up := h.Get("X-Request-Id")
	if up == "" {
		up = h.Get("Request-Id") // Anthropic's name for it
	}
	keepProviderHeaders(h)
	if up != "" {
		h.Set("X-Upstream-Request-Id", up)
	}
	h.Set("X-Portcullis-Provider", x.route.Provider.Name)
	a := x.plan.adapter
	sse := isEventStream(h.Get("Content-Type"))
	if res.StatusCode < 300 {
		switch {
		case x.req.Stream:
			// The client asked for a stream and will read the answer as
			// one, whatever the provider labels it: so the gateway reads
			// it as one too, and tells the client what it is.
			sse = true
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
		case sse:
			res.Body.Close()
			return errUnrequestedStream
		}
	}
	ctx := res.Request.Context()
	switch {
	case res.StatusCode >= 300 && a.translated:
		return g.replaceBody(ctx, res, x, func(b []byte) ([]byte, error) {
			status, out := messagesErrorToChat(res.StatusCode, b)
			res.StatusCode, x.status = status, status
			res.Status = strconv.Itoa(status) + " " + http.StatusText(status)
			return out, nil
		})
	case !sse && res.StatusCode < 300 && x.req.API != APIEmbeddings:
		return g.replaceBody(ctx, res, x, func(b []byte) ([]byte, error) { return g.inspectJSON(ctx, x, b) })
	}
	t := newCodecTap(res.Body, sse, a.codec(x), func(t *tap) {
		x.usage = t.usage
		x.calls = t.ToolCalls(g.digestKey(x.caller.principal.Tenant))
		if t.err != nil {
			x.upErr = t.err
			if sse {
				g.cfg.Metrics.streamFailed(x.route.Provider.Name)
			}
		}
		g.complete(ctx, x)
	})
	if sse {
		t.authorize = g.toolCallCheck(ctx, x)
		// The tap may end the stream early with an error event, or
		// translate it: the provider's length no longer holds.
		res.ContentLength = -1
		h.Del("Content-Length")
	}
	res.Body = t
	return nil
}

// replaceBody reads the whole (bounded) body, transforms it and sends the
// result instead. An error refuses the response before any byte is sent.
func (g *Gateway) replaceBody(ctx context.Context, res *http.Response, x *exchange, transform func([]byte) ([]byte, error)) error {
	b, err := readSized(io.LimitReader(res.Body, maxJSONCapture+1), res.ContentLength, maxJSONCapture+1)
	res.Body.Close()
	if err != nil {
		return err
	}
	if len(b) > maxJSONCapture {
		return errResponseTooLarge
	}
	out, err := transform(b)
	if err != nil {
		return err
	}
	d := &doneBody{done: func(err error) {
		x.upErr = err
		g.complete(ctx, x)
	}}
	d.r.Reset(out)
	res.Body = d
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	if x.plan.adapter.translated {
		res.Header.Set("Content-Type", "application/json")
	}
	return nil
}

// inspectJSON reads usage and tool calls from a complete answer, translating
// it first when the provider speaks another API, and re-authorizes every
// tool call in it.
func (g *Gateway) inspectJSON(ctx context.Context, x *exchange, b []byte) ([]byte, error) {
	var (
		usage *Usage
		calls []*toolCallAcc
	)
	if !isJSONObject(b) {
		return nil, fmt.Errorf("%w: not a JSON object", errUnreadable)
	}
	if x.req.API == APICountTokens {
		n, err := readTokenCount(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUnreadable, err)
		}
		x.inputTokens = &n
		return b, nil // a count carries no tool call
	}
	var err error
	if x.plan.adapter.translated {
		b, usage, calls, err = messagesToChat(b, x.caller.start.Unix())
	} else {
		// Relayed as they are, the bytes must read the same to every
		// client as to the gateway, so their keys are checked too. (A
		// translated answer is re-encoded.)
		usage, calls, err = inspectAnswer(x.req.API, b)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	x.usage, x.calls = usage, toolCalls(calls, g.digestKey(x.caller.principal.Tenant))
	if len(calls) == 0 {
		return b, nil
	}
	// The answer was read and its body closed before its tool calls are
	// decided, and closing it ends the attempt's context: the decisions
	// must not inherit that end (policy would refuse them as cancelled).
	// The policy engine bounds them on its own.
	check := g.toolCallCheck(context.WithoutCancel(ctx), x)
	for _, c := range calls {
		if err := check(c.name); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// isJSONObject reports whether b, after leading space, opens an object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// inspectAnswer checks that no object of a non-streamed answer of api has
// ambiguous keys (uniqueKeys), then reads its usage and tool calls. An
// answer it cannot read whole — bad JSON, a field of another type — is an
// error: a lenient client could still read a tool call in it.
func inspectAnswer(api API, b []byte) (*Usage, []*toolCallAcc, error) {
	switch api {
	case APIResponses:
		if err := uniqueKeys(b); err != nil {
			return nil, nil, err
		}
		var r struct {
			Output []responsesItemOut `json:"output"`
			Usage  *responsesUsage    `json:"usage"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, nil, err
		}
		var calls []*toolCallAcc
		for _, it := range r.Output {
			if isCallItem(it.Type) {
				acc := newToolCall(it.CallID, it.Name)
				acc.args.Write([]byte(it.Arguments))
				calls = append(calls, acc)
			}
		}
		return r.Usage.usage(), calls, nil
	case APIAnthropicMessages:
		if err := uniqueKeys(b); err != nil {
			return nil, nil, err
		}
		var m messagesResponse
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, err
		}
		var calls []*toolCallAcc
		for _, c := range m.Content {
			if c.Type == "tool_use" {
				acc := newToolCall(c.ID, c.Name)
				acc.args.Write(c.Input)
				calls = append(calls, acc)
			}
		}
		return m.Usage.usage(), calls, nil
	}
	return readCheckedChatCompletion(b) // both in one pass
}

// doneBody is a buffered answer that reports once when it has been sent
// whole (nil) or abandoned.
type doneBody struct {
	r    bytes.Reader // by value: one allocation less per answer
	done func(error)
	sent bool
}

func (d *doneBody) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, io.EOF) && !d.sent {
		d.sent = true
		d.done(nil)
	}
	return n, err
}

func (d *doneBody) Close() error {
	if !d.sent {
		d.sent = true
		d.done(errors.New("response closed before it was sent"))
	}
	return nil
}

// upstreamError answers a request whose provider could not be reached, or
// whose answer was refused, before any byte went to the client.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	x.upErr = err
	status, code := http.StatusBadGateway, codeUpstream
	msg := fmt.Sprintf("the provider %q could not be reached", x.route.Provider.Name)
	var denied *toolDeniedError
	switch {
	case errors.As(err, &denied):
		status, code = http.StatusForbidden, codeToolDenied
		msg = fmt.Sprintf("the model called the tool %q, which policy does not allow for this caller (%s); the response is withheld",
			denied.Name, strings.Join(denied.Reasons, "; "))
	case errors.Is(err, errResponseTooLarge):
		msg = fmt.Sprintf("the provider %q sent an answer too large for the gateway to inspect", x.route.Provider.Name)
	case errors.Is(err, errAmbiguousKeys):
		msg = fmt.Sprintf("the provider %q sent an answer with an object that repeats a key (or spells it in two cases), which clients may read differently than the gateway checked it, so it is withheld", x.route.Provider.Name)
	case errors.Is(err, errUnreadable):
		msg = fmt.Sprintf("the provider %q sent an answer the gateway could not inspect for tool calls (it does not parse as the API's response), so it is withheld", x.route.Provider.Name)
	case errors.Is(err, errUnrequestedStream):
		msg = fmt.Sprintf("the provider %q answered with an event stream, which this request did not ask for; the answer is withheld", x.route.Provider.Name)
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusGatewayTimeout, fmt.Sprintf("the provider %q did not answer in time", x.route.Provider.Name)
	case x.status >= 200 && x.status < 300:
		msg = fmt.Sprintf("the provider %q sent an answer the gateway could not read", x.route.Provider.Name)
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		status, msg = 499, "client closed the request"
	}
	x.status = status
	g.complete(r.Context(), x)
	if status == 499 {
		return
	}
	writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: x.caller.id, Shape: x.shape})
}
