package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakemcp"
	"github.com/portcullis-dev/portcullis/proxy"
)

const (
	mcpToken = "mcp-upstream-secret-42"
	globexID = "spiffe://" + identity.DevTrustDomain + "/tenant/globex/app/ledger"
)

// startMCPGateway starts the harness gateway fronting a fake MCP server as
// "tools", with the upstream credential held by the gateway only.
func startMCPGateway(t *testing.T) (*gatewayEnv, *fakemcp.Server) {
	t.Helper()
	up, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: mcpToken, Stateful: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	env := startGateway(t, envOptions{mcpServers: []proxy.MCPServer{{
		Name: "tools", URL: up.URL(), Header: http.Header{"Authorization": {"Bearer " + mcpToken}},
	}}})
	return env, up
}

// headers adds fixed headers to a client's requests (a grant, an approval).
type headers struct {
	next http.RoundTripper
	h    http.Header
}

func (t headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.next.RoundTrip(r)
}

// mcpClient connects the official MCP SDK client to /mcp/{server} over mTLS
// as id, presenting the grant (if not "").
func (e *gatewayEnv) mcpClient(id, server, grant string) (*mcp.ClientSession, error) {
	e.t.Helper()
	hc := e.httpClient(e.svid(id))
	if grant != "" {
		hc.Transport = headers{hc.Transport, http.Header{"Authorization": {"Bearer " + grant}}}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: "https://" + e.addr + "/mcp/" + server, HTTPClient: hc, MaxRetries: -1}, nil)
	if err == nil {
		e.t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

func (e *gatewayEnv) mustMCP(id, grant string) *mcp.ClientSession {
	e.t.Helper()
	cs, err := e.mcpClient(id, "tools", grant)
	if err != nil {
		e.t.Fatalf("connect as %s: %v", id, err)
	}
	return cs
}

// refused expects err to be the gateway's refusal with code.
func refused(t *testing.T, err error, code string) proxy.MCPErrorData {
	t.Helper()
	var wire *jsonrpc.Error
	if !errors.As(err, &wire) {
		t.Fatalf("err = %v, want a JSON-RPC error %s", err, code)
	}
	var d proxy.MCPErrorData
	_ = json.Unmarshal(wire.Data, &d)
	if wire.Code != proxy.MCPErrorRefused || d.Code != code {
		t.Fatalf("error %d %q data %+v, want %d %s", wire.Code, wire.Message, d, proxy.MCPErrorRefused, code)
	}
	return d
}

func auditOf(t *testing.T, res *mcp.CallToolResult) proxy.MCPAudit {
	t.Helper()
	b, _ := json.Marshal(res.Meta[proxy.MCPMetaAudit])
	var a proxy.MCPAudit
	if err := json.Unmarshal(b, &a); err != nil || a.RequestID == "" || a.ResultSeq <= a.DecisionSeq {
		t.Fatalf("result _meta %v: want decision and result seqs", res.Meta)
	}
	return a
}

func TestMCPToolsListFilteredPerPrincipal(t *testing.T) {
	env, _ := startMCPGateway(t)
	tests := []struct {
		id   string
		want []string
	}{
		{identity.DevHumanID, []string{"delete_records", "get_weather", "search_docs"}},
		{identity.DevAppID, []string{"delete_records", "get_weather", "search_docs"}},
		{identity.DevAgentID, []string{"get_weather"}},
		{globexID, nil},
	}
	for _, tt := range tests {
		res, err := env.mustMCP(tt.id, "").ListTools(context.Background(), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		var got []string
		for _, tl := range res.Tools {
			got = append(got, tl.Name)
			if approval := tl.Meta[proxy.MCPMetaApproval] == true; approval != (tl.Name == "delete_records") {
				t.Errorf("%s: tool %s marked as needing approval: %v", tt.id, tl.Name, approval)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s lists %v, want %v", tt.id, got, tt.want)
		}
	}
	var lists int
	for _, r := range env.records() {
		if r["action"] == "mcp.tools_list" {
			lists++
		}
	}
	if lists != len(tests) {
		t.Errorf("%d tools_list audit records, want %d", lists, len(tests))
	}
}

func TestMCPAllowedCallIsAuditedWithDigestsOnly(t *testing.T) {
	env, up := startMCPGateway(t)
	res, err := env.mustMCP(identity.DevAppID, "").CallTool(context.Background(), &mcp.CallToolParams{
		Name: "get_weather", Arguments: map[string]any{"location": "Reykjavik"}})
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; res.IsError || !strings.Contains(text, "sunny") {
		t.Fatalf("result = %v %q", res.IsError, text)
	}
	a := auditOf(t, res)
	if calls := up.Calls(); len(calls) != 1 || calls[0].Arguments["location"] != "Reykjavik" {
		t.Fatalf("upstream saw %v", calls)
	}
	recs := env.recordsFor(a.RequestID)
	var dec, done map[string]any
	for _, r := range recs {
		switch {
		case r["action"] == "tool.call" && r["type"] == "decision":
			dec = r
		case r["action"] == "tool.call" && r["type"] == "completion":
			done = r
		}
	}
	if dec == nil || done == nil {
		t.Fatalf("records of %s: %v", a.RequestID, recs)
	}
	if got := uint64(dec["seq"].(float64)); got != a.DecisionSeq {
		t.Errorf("decision seq %d, result says %d", got, a.DecisionSeq)
	}
	if get(dec, "decision", "allow") != true || get(dec, "detail", "source") != "mcp" ||
		get(dec, "detail", "tool", "server") != "tools" || get(dec, "detail", "tool", "name") != "get_weather" {
		t.Errorf("decision record %v", dec)
	}
	digest, _ := dec["tool_calls"].([]any)[0].(map[string]any)["arguments_digest"].(string)
	// Keyed with the caller's tenant key, over the canonical arguments.
	if want := hmacHex(tenantKeyFor("acme"), "portcullis mcp arguments v1\x00", `{"location":"Reykjavik"}`); digest != want {
		t.Errorf("arguments digest %q, want %q", digest, want)
	}
	if done["status"] != float64(200) || get(done, "detail", "decision_seq") != float64(a.DecisionSeq) ||
		len(get(done, "detail", "result_digest").(string)) != 64 || done["latency_ms"] == nil {
		t.Errorf("result record %v", done)
	}
	// Neither the arguments, nor the result, nor the upstream credential is in the log.
	segs, _ := filepath.Glob(filepath.Join(env.auditDir, "*", "*.log"))
	more, _ := filepath.Glob(filepath.Join(env.auditDir, "*.log"))
	for _, s := range append(segs, more...) {
		b, _ := os.ReadFile(s)
		for _, secret := range []string{"Reykjavik", "sunny", mcpToken} {
			if strings.Contains(string(b), secret) {
				t.Errorf("audit segment %s contains %q", s, secret)
			}
		}
	}
}

func TestMCPDeniedCalls(t *testing.T) {
	env, up := startMCPGateway(t)
	// The app mints a research grant (tools: search) for the agent: the
	// agent's grant does not cover get_weather, though agents may use it.
	status, m := env.call(identity.DevAppID, "POST", "/v1/grants", "", "", mintBody("mcp-1", "research", []string{"gpt-4o-mini"}, []string{"search"}, 5000))
	if status != http.StatusCreated {
		t.Fatalf("mint: %d %v", status, m)
	}
	appGrant, id := m["grant"].(string), m["id"].(string)
	status, m = env.call(identity.DevAppID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "",
		map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"search"}, "max_tokens": 1000}, "ttl_seconds": 120})
	if status != http.StatusCreated {
		t.Fatalf("delegate: %d %v", status, m)
	}
	agentGrant := m["grant"].(string)

	tests := []struct {
		name, id, grant, tool, reason string
	}{
		{"agent, tool not in its kind's list", identity.DevAgentID, "", "search_docs", "tool tools/search_docs is not allowed for agents of tenant acme"},
		{"other tenant", globexID, "", "get_weather", "is not allowed for applications of tenant globex"},
		{"agent, tool outside its grant", identity.DevAgentID, agentGrant, "get_weather", "is not in the scopes of grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.mustMCP(tt.id, tt.grant).CallTool(context.Background(), &mcp.CallToolParams{
				Name: tt.tool, Arguments: map[string]any{"location": "Oslo", "query": "x"}})
			d := refused(t, err, "tool_call_denied")
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q, want it to say %q", err, tt.reason)
			}
			recs := env.recordsFor(d.RequestID)
			if len(recs) != 1 || recs[0]["action"] != "tool.call" || get(recs[0], "decision", "allow") != false ||
				recs[0]["status"] != float64(403) || d.DecisionSeq == nil || uint64(recs[0]["seq"].(float64)) != *d.DecisionSeq {
				t.Fatalf("records %v", recs)
			}
			if tt.grant != "" && get(recs[0], "detail", "grant_id") == nil {
				t.Errorf("denial under a grant does not name it: %v", recs[0])
			}
		})
	}
	if n := len(up.Calls()); n != 0 {
		t.Errorf("denied calls reached the upstream: %d", n)
	}
	// An invalid grant is refused before any MCP exchange.
	if _, err := env.mcpClient(identity.DevAgentID, "tools", appGrant); err == nil {
		t.Error("connected with another workload's grant")
	}
}

func TestMCPApprovalParksThenExactRetryRunsOnce(t *testing.T) {
	env, up := startMCPGateway(t)
	cs := env.mustMCP(identity.DevAppID, "")
	ctx := context.Background()
	args := map[string]any{"table": "orders", "filter": "id = 42"}
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_records", Arguments: args})
	d := refused(t, err, "approval_required")
	ap := d.ApprovalID
	if !strings.HasPrefix(ap, "apr_") || !strings.Contains(err.Error(), ap) {
		t.Fatalf("parked error %q names approval %q", err, ap)
	}
	if n := len(up.Calls()); n != 0 {
		t.Fatalf("a parked call reached the upstream")
	}
	env.approve(identity.DevHumanID, ap)

	withApproval := func(a map[string]any) error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_records", Arguments: a, Meta: mcp.Meta{proxy.MCPMetaApproval: ap}})
		return err
	}
	// Other arguments: the approval does not cover them.
	refused(t, withApproval(map[string]any{"table": "orders", "filter": "1 = 1"}), "approval_refused")
	if err := withApproval(args); err != nil {
		t.Fatalf("approved retry: %v", err)
	}
	if calls := up.Calls(); len(calls) != 1 || calls[0].Arguments["filter"] != "id = 42" {
		t.Fatalf("upstream saw %v", calls)
	}
	refused(t, withApproval(args), "approval_refused")
	if got := steps(env.approvalRecords(ap)); !slices.Equal(got, []string{"requested", "approved", "refused", "used", "refused"}) {
		t.Errorf("approval steps %v", got)
	}
}

func TestMCPUpstreamAndRouteFailures(t *testing.T) {
	env := startGateway(t, envOptions{mcpServers: []proxy.MCPServer{{Name: "down", URL: "http://127.0.0.1:1/mcp"}}})
	cs, err := env.mcpClient(identity.DevAppID, "down", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.ListTools(context.Background(), nil)
	var wire *jsonrpc.Error
	if !errors.As(err, &wire) || wire.Code != proxy.MCPErrorUpstream {
		t.Errorf("list from a down server: %v", err)
	}
	if status, _ := env.call(identity.DevAppID, "POST", "/mcp/nope", "", "", map[string]any{}); status != http.StatusNotFound {
		t.Errorf("unknown server: %d, want 404", status)
	}
}
