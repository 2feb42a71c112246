package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sirupsen/logrus"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy"
)

// JSON-RPC error codes of the MCP endpoint, in the server-error range and
// clear of the codes the SDK gives meaning to (-32001 to -32005 among
// them). The error's data is an MCPErrorData saying why.
const (
	// MCPErrorRefused: the gateway refused the tools/call (policy denied it,
	// it is parked for a human approval, a presented approval does not
	// cover it, the caller is rate limited, or it could not be recorded).
	MCPErrorRefused = -32010
	// MCPErrorUpstream: the upstream MCP server could not be reached.
	MCPErrorUpstream = -32011
)

const (
	// MCPMetaAudit is the _meta key of a tools/call result that names its
	// audit records: an MCPAudit.
	MCPMetaAudit = "portcullis.dev/audit"
	// MCPMetaApproval is the _meta key of a tools/call request that presents
	// an approval id, like the ApprovalHeader header; and, on a listed tool,
	// true when calling it needs a human approval.
	MCPMetaApproval = "portcullis.dev/approval"
)

// MCPErrorData is the data of an MCPErrorRefused or MCPErrorUpstream error.
type MCPErrorData struct {
	Code        string  `json:"code"` // e.g. tool_call_denied, approval_required
	RequestID   string  `json:"request_id"`
	DecisionSeq *uint64 `json:"decision_seq,omitempty"` // the refusal's audit record
	ApprovalID  string  `json:"approval_id,omitempty"`
}

// MCPAudit is the MCPMetaAudit of a tools/call result.
type MCPAudit struct {
	RequestID   string `json:"request_id"`
	DecisionSeq uint64 `json:"decision_seq"`
	ResultSeq   uint64 `json:"result_seq,omitempty"`
}

// mcpSession is one MCP HTTP request's view of the gateway: the caller,
// its task context and the upstream.
type mcpSession struct {
	g    *Gateway
	r    *http.Request
	c    *caller
	task *taskContext
	up   *mcpUpstream
}

// mcpServerFor builds the MCP server that answers one HTTP request. It has no
// tools of its own: its middleware answers tools/list and tools/call from the
// upstream server, through policy.
func (g *Gateway) mcpServerFor(r *http.Request, c *caller, task *taskContext, up *mcpUpstream) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "portcullis/" + up.cfg.Name, Version: "1"},
		&mcp.ServerOptions{Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}}})
	m := &mcpSession{g: g, r: r, c: c, task: task, up: up}
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/list":
				return m.listTools(ctx)
			case "tools/call":
				p, _ := req.GetParams().(*mcp.CallToolParamsRaw)
				if p == nil {
					return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "tools/call without params"}
				}
				return m.callTool(ctx, p)
			}
			return next(ctx, method, req)
		}
	})
	return s
}

func (m *mcpSession) input(name string) *policy.Input {
	return toolInput(m.c, m.task, nil, toolUse{name: name, server: m.up.cfg.Name})
}

// listTools lists the upstream's tools that policy allows this caller, each
// decided as a tool.call, and records one audit record for the list.
func (m *mcpSession) listTools(ctx context.Context) (mcp.Result, error) {
	g := m.g
	tools, err := m.up.listTools(ctx)
	ev := &audit.Event{Type: "decision", RequestID: m.c.id, Action: "mcp.tools_list", Principal: auditPrincipal(m.c.principal),
		Detail: map[string]any{"mcp_server": m.up.cfg.Name}}
	m.grantDetail(ev)
	if err != nil {
		g.log.WithError(err).WithField("request_id", m.c.id).Warn("MCP upstream unavailable")
		ev.Decision = &audit.Decision{Allow: false, Reasons: []string{"upstream MCP server unavailable"}}
		ev.Status, ev.Error = http.StatusBadGateway, err.Error()
		var recorded *uint64 // the refusal's record, when the log took it
		if seq, aerr := g.cfg.Audit.Append(context.WithoutCancel(ctx), ev); aerr == nil {
			recorded = &seq
		}
		return nil, m.refusal(MCPErrorUpstream, codeUpstream, recorded, "", "the MCP server "+m.up.cfg.Name+" is unavailable")
	}
	res := &mcp.ListToolsResult{Tools: []*mcp.Tool{}}
	allowed, hidden := []string{}, []string{}
	var rev string
	for _, t := range tools {
		d, err := g.cfg.Policy.Decide(ctx, m.input(t.Name))
		rev = d.Revision
		if err != nil || !d.Allow {
			hidden = append(hidden, t.Name)
			continue
		}
		allowed = append(allowed, t.Name)
		if d.Obligations.RequireApproval {
			c := *t
			c.Meta = maps.Clone(t.Meta)
			if c.Meta == nil {
				c.Meta = mcp.Meta{}
			}
			c.Meta[MCPMetaApproval] = true
			t = &c
		}
		res.Tools = append(res.Tools, t)
	}
	ev.Decision = &audit.Decision{Allow: true, Revision: rev,
		Reasons: []string{fmt.Sprintf("%d of %d tools of %s allowed", len(allowed), len(tools), m.up.cfg.Name)}}
	ev.Detail["allowed"], ev.Detail["hidden"] = allowed, hidden
	if _, err := g.cfg.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		g.log.WithError(err).WithField("request_id", m.c.id).Error("audit log unavailable: refusing tools/list")
		return nil, m.refusal(MCPErrorRefused, codeAuditFailed, nil, "", "the gateway cannot record this request in its audit log, so it will not process it")
	}
	return res, nil
}

// grantDetail adds the caller's grant, chain and user to a record.
func (m *mcpSession) grantDetail(ev *audit.Event) {
	if m.task == nil {
		return
	}
	if gr := m.task.grant; gr != nil {
		ev.Detail["grant_id"], ev.Detail["task"], ev.Detail["chain"] = gr.ID, gr.Task, gr.Chain
	}
	if m.task.user != nil {
		ev.Detail["user"] = m.task.user.Subject
	}
}

// callTool decides, records and forwards one tools/call: the decision record
// is durable before the upstream sees the call, and a result record follows
// it. Neither holds the arguments or the result, only keyed digests.
func (m *mcpSession) callTool(ctx context.Context, p *mcp.CallToolParamsRaw) (mcp.Result, error) {
	g, c := m.g, m.c
	start := g.clock()
	server := m.up.cfg.Name
	in := m.input(p.Name)
	ev := &audit.Event{Type: "decision", RequestID: c.id, Action: "tool.call", Principal: auditPrincipal(c.principal),
		Detail: map[string]any{"tool": map[string]string{"name": p.Name, "server": server}, "source": "mcp"}}
	m.grantDetail(ev)

	args, argErr := canonicalArgs(p.Arguments)
	digest := keyedDigest(g.digestKey(c.principal.Tenant), "portcullis mcp arguments v1", args)
	ev.ToolCalls = []audit.ToolCall{{Name: p.Name, ArgumentsDigest: digest}}

	var (
		d       policy.Decision
		reasons []string
		code    string // refusal code; "" when allowed
		msg     string
		gate    gateResult
	)
	if ok, wait, err := g.limiter.take(ctx, c.principal); err != nil {
		g.log.WithError(err).WithField("request_id", c.id).Error("rate-limit state unavailable: refusing")
		code, msg = codeStore, "the gateway cannot reach its shared rate-limit state, so it refuses rather than guess; try again later"
		reasons = []string{msg}
	} else if !ok {
		code, msg = codeRateLimited, fmt.Sprintf("rate limit for %s principals exceeded; retry after %v", c.principal.Kind, wait.Round(1e9))
		reasons = []string{msg}
	} else if p.Name == "" || argErr != nil {
		code, msg = codeBadRequest, "tools/call needs a tool name and arguments that are a JSON object"
		reasons = []string{msg}
	} else {
		var err error
		d, err = g.cfg.Policy.Decide(ctx, in)
		reasons = d.Reasons
		switch {
		case err != nil:
			code, msg = codePolicyError, "the policy engine could not decide this call, so it is refused (decision id "+c.id+")"
			reasons, ev.Error = []string{"policy evaluation failed"}, err.Error()
		case !d.Allow:
			code, msg = codeToolDenied, fmt.Sprintf("denied by policy: the tool %s/%s: %s", server, p.Name, strings.Join(d.Reasons, "; "))
		case d.Obligations.RequireApproval:
			gate = g.approvalGate(m.approvalRequest(p), m.parkable(in, d, p.Name, args, digest))
			approvalDetail(ev, &gate)
			if gate.refused() {
				code, msg = gate.code, gate.msg
				reasons = append(reasons, gate.reason)
			}
		}
	}
	ev.Decision = &audit.Decision{Allow: code == "", Reasons: nonNilStrings(reasons), Revision: d.Revision, CacheHit: d.CacheHit}
	if d.Obligations.RequireApproval {
		ev.Decision.Obligations = map[string]any{"require_approval": true}
	}
	if code != "" {
		switch code {
		case codeBadRequest:
			ev.Status = http.StatusBadRequest
		case codeRateLimited:
			ev.Status = http.StatusTooManyRequests
		case codeStore:
			ev.Status = http.StatusServiceUnavailable
		default:
			ev.Status = http.StatusForbidden
		}
	}
	seq, err := g.cfg.Audit.Append(context.WithoutCancel(ctx), ev)
	if err != nil {
		g.log.WithError(err).WithField("request_id", c.id).Error("audit log unavailable: refusing tools/call")
		return nil, m.refusal(MCPErrorRefused, codeAuditFailed, nil, "", "the gateway cannot record this call in its audit log, so it will not forward it; try again later")
	}
	m.log(p.Name, code)
	if code != "" {
		rpc := int64(MCPErrorRefused)
		if code == codeBadRequest {
			rpc = jsonrpc.CodeInvalidParams
		}
		return nil, m.refusal(rpc, code, &seq, gate.approvalID, msg)
	}

	res, callErr := m.up.callTool(ctx, p.Name, args)
	done := &audit.Event{Type: "completion", RequestID: c.id, Action: "tool.call", Principal: auditPrincipal(c.principal),
		Status: http.StatusOK, ToolCalls: ev.ToolCalls, LatencyMS: float64(g.clock().Sub(start).Microseconds()) / 1000,
		Detail: map[string]any{"decision_seq": seq, "tool": map[string]string{"name": p.Name, "server": server}}}
	var wire *jsonrpc.Error
	switch {
	case callErr != nil && errors.As(callErr, &wire):
		done.Status, done.Error = http.StatusBadGateway, fmt.Sprintf("upstream error %d: %s", wire.Code, wire.Message)
	case callErr != nil:
		done.Status, done.Error = http.StatusBadGateway, callErr.Error()
	default:
		b, _ := json.Marshal(res)
		done.Detail["result_digest"] = keyedDigest(g.digestKey(c.principal.Tenant), "portcullis mcp result v1", b)
		done.Detail["result_bytes"] = len(b)
		if res.IsError {
			done.Detail["is_error"] = true
			done.Error = "the tool reported an error"
		}
	}
	rseq, aerr := g.cfg.Audit.Append(context.WithoutCancel(ctx), done)
	if aerr != nil {
		g.log.WithError(aerr).WithField("request_id", c.id).Error("audit: tools/call result not recorded")
	}
	switch {
	case wire != nil:
		return nil, wire // the server's own answer (unknown tool, bad arguments)
	case callErr != nil:
		g.log.WithError(callErr).WithField("request_id", c.id).Warn("MCP upstream call failed")
		return nil, m.refusal(MCPErrorUpstream, codeUpstream, &seq, "", "the MCP server "+server+" could not run the call: it is unavailable or failed")
	}
	if res.Meta == nil {
		res.Meta = mcp.Meta{}
	}
	res.Meta[MCPMetaAudit] = MCPAudit{RequestID: c.id, DecisionSeq: seq, ResultSeq: rseq}
	return res, nil
}

// approvalRequest is the HTTP request as the approval gate should see it: an
// approval presented in _meta counts as one presented in the header.
func (m *mcpSession) approvalRequest(p *mcp.CallToolParamsRaw) *http.Request {
	id, _ := p.Meta[MCPMetaApproval].(string)
	if id == "" || m.r.Header.Get(ApprovalHeader) != "" {
		return m.r
	}
	r := m.r.Clone(m.r.Context())
	r.Header.Set(ApprovalHeader, id)
	return r
}

// parkable binds an approval to exactly this call: who, for which task,
// which server and tool, and the canonical arguments.
func (m *mcpSession) parkable(in *policy.Input, d policy.Decision, tool string, args []byte, digest string) *parkable {
	fields := append(bindingFields(in.Action, m.c.principal, in), []byte("mcp"), []byte(m.up.cfg.Name), []byte(tool), args)
	return &parkable{c: m.c, action: in.Action, in: in, d: d,
		digest:  actionDigest(m.g.cfg.DigestKey, fields...),
		summary: map[string]any{"mcp_server": m.up.cfg.Name, "tool": tool, "arguments_digest": digest},
	}
}

// refusal is the JSON-RPC error a client sees.
func (m *mcpSession) refusal(rpcCode int64, code string, seq *uint64, approvalID, msg string) error {
	data, _ := json.Marshal(MCPErrorData{Code: code, RequestID: m.c.id, DecisionSeq: seq, ApprovalID: approvalID})
	return &jsonrpc.Error{Code: rpcCode, Message: msg, Data: data}
}

func (m *mcpSession) log(tool, refusal string) {
	m.g.log.WithFields(logrus.Fields{"request_id": m.c.id, "spiffe_id": m.c.principal.ID.String(),
		"mcp_server": m.up.cfg.Name, "tool": tool, "allow": refusal == "", "refusal": refusal}).Info("mcp tools/call")
}

// keyedDigest is the hex HMAC-SHA256 of b under key, the caller's tenant key
// (tenantKey), domain-separated: hex(HMAC-SHA256(key, domain || 0x00 || b)).
// The audit log confirms nothing to a reader without the key.
func keyedDigest(key []byte, domain string, b []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(domain))
	mac.Write([]byte{0})
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil))
}
