package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy"
)

// toolUse is one use of a tool that policy must allow: a call a model
// emitted, a tool result a request carries, or an MCP tools/call.
type toolUse struct {
	name, server string
	source       string // "model", "tool_result" or "mcp"
	id           string // call id, when known
	argsDigest   string // keyed digest of the arguments (toolArgsDigest, keyedDigest), when known
}

// toolInput is the tool.call policy input for a use within an exchange: the
// caller, the grant context and the request, with the tool.
func toolInput(c *caller, task *taskContext, req *policy.Request, u toolUse) *policy.Input {
	in := &policy.Input{
		Action:    "tool.call",
		Principal: policyPrincipal(c.principal),
		Request:   req,
		Tool:      &policy.Tool{Name: u.name, Server: u.server},
	}
	if task != nil {
		if task.grant != nil {
			in.Grant = policyGrant(task.grant)
			in.Chain = task.grant.Chain
		}
		in.User = policyUser(task.user)
	}
	return in
}

// decideTool asks policy about one tool use and records the decision. A
// denial, an engine error, an approval the gateway cannot collect for a tool
// call, or a decision it cannot record all come back as *toolDeniedError.
func (g *Gateway) decideTool(ctx context.Context, c *caller, in *policy.Input, u toolUse, ar *audit.Request) (policy.Decision, error) {
	d, err := g.cfg.Policy.Decide(ctx, in)
	reasons := d.Reasons
	switch {
	case err != nil:
		d.Allow, reasons = false, []string{"the policy engine could not decide (decision id " + c.id + ")"}
	case d.Allow && d.Obligations.RequireApproval:
		d.Allow = false
		reasons = append(reasons, "this tool requires a human approval, which a tool call cannot collect yet")
	}
	ev := &audit.Event{
		Type:      "decision",
		RequestID: c.id,
		Action:    "tool.call",
		Principal: auditPrincipal(c.principal),
		Request:   ar,
		Decision:  &audit.Decision{Allow: d.Allow, Reasons: reasons, Revision: d.Revision, CacheHit: d.CacheHit},
		Detail:    map[string]any{"tool": map[string]string{"name": u.name, "server": u.server}, "source": u.source},
	}
	if u.id != "" || u.argsDigest != "" {
		ev.ToolCalls = []audit.ToolCall{{ID: u.id, Name: u.name, ArgumentsDigest: u.argsDigest}}
	}
	if in.Grant != nil {
		ev.Detail["grant_id"] = in.Grant.ID
		ev.Detail["chain"] = in.Chain
	}
	if err != nil {
		ev.Error = err.Error()
	}
	if !d.Allow {
		ev.Status = http.StatusForbidden
	}
	if _, aerr := g.cfg.Audit.Append(context.WithoutCancel(ctx), ev); aerr != nil {
		g.log.WithError(aerr).WithField("request_id", c.id).Error("audit: tool.call decision not recorded: refusing the tool")
		return d, &toolDeniedError{Name: u.name, Reasons: []string{"the decision could not be recorded"}}
	}
	if !d.Allow {
		return d, &toolDeniedError{Name: u.name, Reasons: reasons}
	}
	return d, nil
}

// exchangeRequest is the policy view of the exchange's request.
func exchangeRequest(x *exchange) *policy.Request {
	r := &policy.Request{
		API: string(x.req.API), Model: x.req.Model, Stream: x.req.Stream,
		Tools: x.req.Tools, ToolResults: x.req.ToolResults, MaxTokens: x.req.MaxTokens,
		Prompt: policy.Prompt{Bytes: x.req.PromptBytes, Messages: x.req.Messages},
	}
	if x.route != nil {
		r.Provider = x.route.Provider.Name
	}
	return r
}

// toolCallCheck returns the check run on each tool call the model emits,
// before the client receives it.
func (g *Gateway) toolCallCheck(ctx context.Context, x *exchange) func(name string) error {
	return func(name string) error {
		u := toolUse{name: name, source: "model"}
		_, err := g.decideTool(ctx, x.caller, toolInput(x.caller, x.task, exchangeRequest(x), u), u, auditRequest(x))
		return err
	}
}

// checkToolResults decides every tool whose result the request carries,
// before anything is forwarded. It returns a client message and an audit
// reason for the first tool the caller may not use.
func (g *Gateway) checkToolResults(ctx context.Context, x *exchange) (msg, reason string) {
	seen := map[string]bool{}
	for _, name := range x.req.ToolResults {
		if seen[name] {
			continue
		}
		seen[name] = true
		u := toolUse{name: name, source: "tool_result"}
		_, err := g.decideTool(ctx, x.caller, toolInput(x.caller, x.task, exchangeRequest(x), u), u, auditRequest(x))
		if d, ok := err.(*toolDeniedError); ok {
			return fmt.Sprintf("the request carries a result of the tool %q, which policy does not allow for this caller (%s)",
				name, strings.Join(d.Reasons, "; ")), "tool result of " + name + " denied"
		}
	}
	return "", ""
}
