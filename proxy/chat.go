package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy"
)

// exchange is one proxied model call, from decision to completion.
type exchange struct {
	caller     *caller
	req        *LLMRequest
	route      *Route // the route being tried; after the call, the one that answered
	clientBody []byte // the request body as the client sent it
	shape      errorShape
	decision   policy.Decision
	seq        uint64 // audit seq of the decision record
	capTokens  int    // max tokens obligation to enforce upstream; 0: none
	plans      []*plan
	plan       *plan // the plan being tried, then the one that answered
	attempts   []attempt

	status   int
	usage    *Usage
	calls    []ToolCall
	upErr    error
	finished bool
	timedOut atomic.Bool // cut by the request timeout (attempt.go)

	task     *taskContext // grant and user context (grantcheck.go)
	approval *gateResult  // the approval step's outcome, if it ran (approval.go)

	// inputTokens is a count_tokens answer's count (counttokens.go): not
	// usage, as counting spends no tokens.
	inputTokens *int64
}

// serveLLM serves every model API (apiParsers): parse → route → decide →
// obligations → plan → durable decision record → forward.
func (g *Gateway) serveLLM(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	parse := apiParsers[r.URL.Path]
	body, err := readSized(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes), r.ContentLength, g.cfg.MaxBodyBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			g.reject(w, r, c, nil, http.StatusRequestEntityTooLarge, codeBodyTooLarge,
				fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", g.cfg.MaxBodyBytes))
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			g.reject(w, r, c, nil, http.StatusRequestTimeout, codeRequestTimeout,
				fmt.Sprintf("the request body did not arrive within the gateway's limit of %v", g.limits.BodyReadTimeout))
			return
		}
		g.reject(w, r, c, nil, http.StatusBadRequest, codeBadRequest, "could not read request body: "+err.Error())
		return
	}
	req, err := parse(body, g.digestKey(c.principal.Tenant))
	if err != nil {
		g.reject(w, r, c, nil, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	// The provider receives the client's bytes (or them with the model
	// renamed), and reads its keys exactly, first or last; the parsers above
	// read them as encoding/json does, the last of equal keys and any case.
	// A body with keys a reader could take as one could be decided as one
	// request and served as another: refuse it.
	if err := uniqueKeys(body); err != nil {
		g.reject(w, r, c, nil, http.StatusBadRequest, codeBadRequest,
			"ambiguous request body: "+err.Error()+"; the gateway and the provider could read it differently")
		return
	}
	route, err := g.cfg.Router.Lookup(req.Model)
	if err != nil {
		g.reject(w, r, c, req, http.StatusNotFound, codeUnknownModel,
			fmt.Sprintf("the model %q does not exist on this gateway", req.Model))
		return
	}
	x := &exchange{caller: c, req: req, route: route, clientBody: body, shape: shapeOf(r.URL.Path)}

	in := &policy.Input{
		Action:    "llm.invoke",
		Principal: policyPrincipal(c.principal),
		Request: &policy.Request{
			API:         string(req.API),
			Model:       req.Model,
			Provider:    route.Provider.Name,
			Stream:      req.Stream,
			Tools:       req.Tools,
			ToolResults: req.ToolResults,
			MaxTokens:   req.MaxTokens,
			Prompt:      policy.Prompt{Bytes: req.PromptBytes, Messages: req.Messages},
		},
	}
	if !g.checkTask(w, r, x, in) {
		return
	}
	d, perr := g.cfg.Policy.Decide(r.Context(), in)
	if perr != nil {
		d.Allow = false
		if len(d.Reasons) == 0 {
			d.Reasons = []string{"policy evaluation failed"}
		}
	}
	x.decision = d
	status, code, msg := http.StatusOK, "", ""
	if perr != nil {
		status, code = http.StatusForbidden, codePolicyError
		msg = "the policy engine could not decide this request, so it is refused (decision id " + c.id + ")"
	} else if !d.Allow {
		status, code = http.StatusForbidden, codePolicyDenied
		msg = "denied by policy: " + strings.Join(d.Reasons, "; ")
	} else if m, why := g.applyObligations(x); m != "" {
		status, code, msg = http.StatusForbidden, codePolicyDenied, m
		x.decision.Allow = false
		x.decision.Reasons = append(x.decision.Reasons, why)
	} else if m, why := g.checkToolResults(r.Context(), x); m != "" {
		status, code, msg = http.StatusForbidden, codeToolDenied, m
		x.decision.Allow = false
		x.decision.Reasons = append(x.decision.Reasons, why)
	} else if err := servable(x); err != nil {
		status, code, msg = http.StatusBadRequest, codeBadRequest, err.Error()
	} else if ap := g.chatApproval(w, r, x, in); ap.refused() {
		status, code, msg = ap.status, ap.code, ap.msg
		x.decision.Allow = false
		x.decision.Reasons = append(x.decision.Reasons, ap.reason)
	} else if m, err := g.reserveBudget(r.Context(), x); m != "" || err != nil {
		status, code, msg = budgetRefusal(m, err)
		x.decision.Allow = false
		x.decision.Reasons = append(x.decision.Reasons, msg)
	} else if x.plans, err = g.plans(x); err != nil {
		status, code, msg = http.StatusBadRequest, codeBadRequest, err.Error()
	}

	ev := g.decisionEvent(x, status)
	ev.Detail = inputDetail(in)
	approvalDetail(ev, x.approval)
	if perr != nil {
		ev.Error = perr.Error()
	} else if status == http.StatusBadRequest {
		ev.Error = msg
	}
	seq, err := g.cfg.Audit.Append(r.Context(), ev)
	if err != nil {
		g.releaseBudget(r.Context(), x) // refused: nothing will be spent
		g.auditUnavailableAs(w, x.shape, c.id, err)
		return
	}
	x.seq = seq
	w.Header().Set("X-Portcullis-Audit-Seq", strconv.FormatUint(seq, 10))
	if status != http.StatusOK {
		g.releaseBudget(r.Context(), x)
		g.logRequest(x, status, perr)
		writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: c.id, Shape: x.shape})
		return
	}
	g.forward(w, r, x)
}

// applyObligations narrows the request as the decision demands. It returns a
// client message and an audit reason when an obligation cannot be met.
func (g *Gateway) applyObligations(x *exchange) (msg, reason string) {
	ob := x.decision.Obligations
	// require_approval is met after the others, by chatApproval (approval.go).
	if ob.Provider != "" && ob.Provider != x.route.Provider.Name {
		return fmt.Sprintf("policy pins provider %q but model %q is served by %q", ob.Provider, x.req.Model, x.route.Provider.Name),
			"obligation provider not satisfiable"
	}
	if ob.Tools != nil {
		allowed := make(map[string]bool, len(ob.Tools))
		for _, t := range ob.Tools {
			allowed[t] = true
		}
		for _, t := range x.req.Tools {
			if !allowed[t] {
				return fmt.Sprintf("tool %q is not allowed for this caller", t), "obligation tools excludes " + t
			}
		}
	}
	// A count generates nothing: an output cap has nothing to cap, and
	// count_tokens refuses a max_tokens field.
	if ob.MaxTokens > 0 && x.req.API != APICountTokens && (x.req.MaxTokens == 0 || x.req.MaxTokens > ob.MaxTokens) {
		x.capTokens = ob.MaxTokens
		x.req.MaxTokens = ob.MaxTokens
	}
	return "", ""
}

func (g *Gateway) decisionEvent(x *exchange, status int) *audit.Event {
	d := x.decision
	ad := &audit.Decision{Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision, CacheHit: d.CacheHit}
	if ob := d.Obligations; ob.MaxTokens != 0 || ob.Tools != nil || ob.RequireApproval || ob.Provider != "" {
		ad.Obligations = map[string]any{}
		if ob.MaxTokens != 0 {
			ad.Obligations["max_tokens"] = ob.MaxTokens
		}
		if ob.Tools != nil {
			ad.Obligations["tools"] = ob.Tools
		}
		if ob.RequireApproval {
			ad.Obligations["require_approval"] = true
		}
		if ob.Provider != "" {
			ad.Obligations["provider"] = ob.Provider
		}
	}
	ev := &audit.Event{
		Type:      "decision",
		RequestID: x.caller.id,
		Action:    "llm.invoke",
		Principal: auditPrincipal(x.caller.principal),
		Request:   auditRequest(x),
		Decision:  ad,
	}
	if status != http.StatusOK {
		ev.Status = status
	}
	return ev
}

func auditRequest(x *exchange) *audit.Request {
	r := &audit.Request{
		API:       string(x.req.API),
		Model:     x.req.Model,
		Stream:    x.req.Stream,
		MaxTokens: x.req.MaxTokens,
		Prompt:    &audit.Prompt{Bytes: x.req.PromptBytes, Messages: x.req.Messages, Digest: x.req.Digest},
		Tools:     x.req.Tools,
	}
	if x.route != nil {
		r.Provider = x.route.Provider.Name
		r.UpstreamModel = x.route.UpstreamModel
	}
	return r
}

// reject refuses a request before any decision could be made (bad input,
// unknown model), and records the refusal.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, c *caller, req *LLMRequest, status int, code, msg string) {
	ev := &audit.Event{
		Type:      "decision",
		RequestID: c.id,
		Action:    "llm.invoke",
		Principal: auditPrincipal(c.principal),
		Decision:  &audit.Decision{Allow: false, Reasons: []string{msg}},
		Status:    status,
	}
	if req != nil {
		ev.Request = auditRequest(&exchange{req: req})
	}
	seq, err := g.cfg.Audit.Append(r.Context(), ev)
	if err != nil {
		g.auditUnavailableAs(w, shapeOf(r.URL.Path), c.id, err)
		return
	}
	setAuditSeq(w, seq)
	g.log.WithFields(logrus.Fields{"request_id": c.id, "spiffe_id": c.principal.ID.String(), "status": status}).Info(msg)
	g.cfg.Metrics.observeRequest(requestOutcome{api: string(APIChatCompletions), model: "unknown", kind: string(c.principal.Kind),
		tenant: c.principal.Tenant, decision: "refused", status: status, elapsed: g.clock().Sub(c.start)})
	writeError(w, apiError{Status: status, Code: code, Message: msg, RequestID: c.id, Shape: shapeOf(r.URL.Path)})
}

// completionEvent is the second record of an allowed exchange.
func (g *Gateway) completionEvent(x *exchange) *audit.Event {
	ev := &audit.Event{
		Type:      "completion",
		RequestID: x.caller.id,
		Action:    "llm.invoke",
		Principal: auditPrincipal(x.caller.principal),
		Request:   &audit.Request{API: string(x.req.API), Model: x.req.Model, Provider: x.route.Provider.Name, UpstreamModel: x.route.UpstreamModel, Stream: x.req.Stream},
		Status:    x.status,
		LatencyMS: float64(g.clock().Sub(x.caller.start).Microseconds()) / 1000,
		Detail:    map[string]any{"decision_seq": x.seq},
	}
	if len(x.attempts) > 0 {
		ev.Detail["attempts"] = attemptList(x.attempts)
	}
	if x.inputTokens != nil {
		ev.Detail["input_tokens"] = *x.inputTokens
	}
	if x.usage != nil {
		ev.Usage = &audit.Usage{PromptTokens: x.usage.PromptTokens, CompletionTokens: x.usage.CompletionTokens, TotalTokens: x.usage.TotalTokens}
	}
	for _, tc := range x.calls {
		ev.ToolCalls = append(ev.ToolCalls, audit.ToolCall{ID: tc.ID, Name: tc.Name, ArgumentsDigest: tc.ArgumentsDigest})
	}
	if x.upErr != nil {
		ev.Error = x.upErr.Error()
	}
	return ev
}

func (g *Gateway) logRequest(x *exchange, status int, err error) {
	l := requestLine{
		requestID: x.caller.id,
		spiffeID:  x.caller.principal.ID.String(),
		kind:      string(x.caller.principal.Kind),
		tenant:    x.caller.principal.Tenant,
		model:     x.req.Model,
		allow:     x.decision.Allow,
		status:    status,
		latencyMS: float64(time.Since(x.caller.start).Microseconds()) / 1000,
		err:       err,
	}
	if x.route != nil {
		l.provider = x.route.Provider.Name
	}
	if x.usage != nil {
		l.totalTokens, l.hasTokens = x.usage.TotalTokens, true
	}
	writeRequestLine(g.log, &l)
	if g.cfg.Metrics != nil {
		o := requestOutcome{api: string(x.req.API), model: x.req.Model, kind: string(x.caller.principal.Kind),
			tenant: x.caller.principal.Tenant, decision: "deny", status: status, elapsed: g.clock().Sub(x.caller.start), usage: x.usage}
		if x.route != nil {
			o.provider = x.route.Provider.Name
		} else {
			o.model = "unknown"
		}
		if x.decision.Allow {
			o.decision = "allow"
		}
		g.cfg.Metrics.observeRequest(o)
	}
}

// readSized reads r to its end into a buffer sized from the declared length
// (when it is within limit), so that a body is read with one allocation
// instead of io.ReadAll's doublings from 512 bytes.
func readSized(r io.Reader, declared, limit int64) ([]byte, error) {
	size := int64(512)
	if declared > 0 && declared < limit {
		size = declared + 1 // the read that sees EOF needs room
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// bodyReader gives the upstream request a fresh reader over the buffered body.
func bodyReader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
