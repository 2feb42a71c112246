package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakemcp"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

// answer is a response whose body has been read.
type answer struct {
	*http.Response
	body []byte
}

// send makes one request as id over mTLS; edit, when not nil, changes the
// request before it goes.
func (e *gatewayEnv) send(id, method, path string, body io.Reader, edit func(*http.Request)) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, "https://"+e.addr+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if edit != nil {
		edit(req)
	}
	resp, err := e.httpClient(e.svid(id)).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp, b}
}

func chatBody(model string) io.Reader {
	b, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
	return bytes.NewReader(b)
}

// TestAuditSeqOnRecordedResponses: every response whose request the
// gateway recorded names, in X-Portcullis-Audit-Seq, the record that
// decided it — the request's last record when it answered — refusals
// before any decision included.
func TestAuditSeqOnRecordedResponses(t *testing.T) {
	env := startGateway(t, envOptions{
		limits:     proxy.Limits{BodyReadTimeout: 300 * time.Millisecond, MaxInFlightPerPrincipal: 2},
		rateLimits: map[identity.Kind]proxy.RateLimit{identity.KindAgent: {Rate: 0.001, Burst: 1}},
	})
	const chatPath = "/v1/chat/completions"
	park := func(t *testing.T) string {
		ap, _ := env.park(identity.DevAppID, "", refundParams("gpt-4o-mini", "refund order 42"))
		return ap
	}
	tests := []struct {
		name       string
		do         func(t *testing.T) answer
		wantStatus int
		wantAction string // of the record named
	}{
		{"unknown model", func(*testing.T) answer {
			return env.send(identity.DevAppID, "POST", chatPath, chatBody("nonexistent-model"), nil)
		}, http.StatusNotFound, "llm.invoke"},
		{"malformed body", func(*testing.T) answer {
			return env.send(identity.DevAppID, "POST", chatPath, strings.NewReader(`{"model":`), nil)
		}, http.StatusBadRequest, "llm.invoke"},
		{"ambiguous keys", func(*testing.T) answer {
			return env.send(identity.DevAppID, "POST", chatPath,
				strings.NewReader(`{"model":"gpt-4o-mini","Model":"o3-mini","messages":[{"role":"user","content":"hi"}]}`), nil)
		}, http.StatusBadRequest, "llm.invoke"},
		{"body too large", func(*testing.T) answer {
			big := append([]byte(`{"model":"gpt-4o-mini","pad":"`), bytes.Repeat([]byte("x"), 4<<20)...)
			return env.send(identity.DevAppID, "POST", chatPath, bytes.NewReader(append(big, `"}`...)), nil)
		}, http.StatusRequestEntityTooLarge, "llm.invoke"},
		{"body read timeout", func(*testing.T) answer {
			b, _ := io.ReadAll(chatBody("gpt-4o-mini"))
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write(b[:len(b)/2]) }() // and never the rest
			return env.send(identity.DevAppID, "POST", chatPath, pr, func(r *http.Request) { r.ContentLength = int64(len(b)) })
		}, http.StatusRequestTimeout, "llm.invoke"},
		{"unknown identity", func(*testing.T) answer {
			return env.send("spiffe://"+identity.DevTrustDomain+"/ops/backup-job", "POST", chatPath, chatBody("gpt-4o-mini"), nil)
		}, http.StatusForbidden, "identity.resolve"},
		{"too many in flight", func(t *testing.T) answer {
			first, _ := startStream(t, env, "[fake:chunks=30] [fake:slow=20]")
			second, _ := startStream(t, env, "[fake:chunks=30] [fake:slow=20]")
			a := env.send(identity.DevAppID, "POST", chatPath, chatBody("gpt-4o-mini"), nil)
			for _, done := range []chan error{first, second} {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			return a
		}, http.StatusTooManyRequests, "request.admit"},
		{"rate limited", func(t *testing.T) answer {
			_ = env.send(identity.DevAgentID, "POST", chatPath, chatBody("gpt-4o-mini"), nil) // spends the burst
			return env.send(identity.DevAgentID, "POST", chatPath, chatBody("gpt-4o-mini"), nil)
		}, http.StatusTooManyRequests, "llm.invoke"},
		{"invalid grant", func(*testing.T) answer {
			return env.send(identity.DevAppID, "POST", chatPath, chatBody("gpt-4o-mini"),
				func(r *http.Request) { r.Header.Set("Authorization", "Bearer eyJh.eyJi.c2ln") })
		}, http.StatusUnauthorized, "llm.invoke"},
		{"grant mint without a task", func(*testing.T) answer {
			return env.send(identity.DevHumanID, "POST", "/v1/grants", strings.NewReader(`{"purpose":"x"}`), nil)
		}, http.StatusBadRequest, "grant.mint"},
		{"parked for approval", func(t *testing.T) answer {
			b, _ := json.Marshal(refundParams("gpt-4o-mini", "refund order 43"))
			return env.send(identity.DevAppID, "POST", chatPath, bytes.NewReader(b), nil)
		}, http.StatusForbidden, "llm.invoke"},
		{"approval decided by a workload", func(t *testing.T) answer {
			ap := park(t)
			return env.send(identity.DevAppID, "POST", "/v1/approvals/"+ap+"/approve", strings.NewReader(`{"reason":"me"}`), nil)
		}, http.StatusForbidden, "approval.decision_refused"},
		{"approval approved by a human", func(t *testing.T) answer {
			ap := park(t)
			return env.send(identity.DevHumanID, "POST", "/v1/approvals/"+ap+"/approve", strings.NewReader(`{"reason":"checked"}`), nil)
		}, http.StatusOK, "approval.approved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.do(t)
			if a.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %s, want %d", a.StatusCode, a.body, tt.wantStatus)
			}
			recs := env.recordsFor(requestID(t, a.Response))
			if len(recs) == 0 {
				t.Fatal("the request has no audit record")
			}
			last := recs[len(recs)-1]
			want := strconv.FormatFloat(last["seq"].(float64), 'f', -1, 64)
			if got := a.Header.Get(proxy.AuditSeqHeader); got != want {
				t.Errorf("%s = %q, want %s, the seq of its %s record", proxy.AuditSeqHeader, got, want, last["action"])
			}
			if last["action"] != tt.wantAction {
				t.Errorf("the request's last record is %v, want %s", last["action"], tt.wantAction)
			}
			if s, ok := last["status"].(float64); ok && int(s) != a.StatusCode {
				t.Errorf("record status %v, response status %d", s, a.StatusCode)
			}
		})
	}
}

// TestAuditSeqWhenTheLogFails: a refusal the audit log did not take names
// no record, not even one written earlier for the same request; one it did
// take after an earlier record names the later one.
func TestAuditSeqWhenTheLogFails(t *testing.T) {
	env, h := startHookedGateway(t, envOptions{})
	always := func(*audit.Event) bool { return true }
	// raceDenial lands another approver's denial on approval *ap between the
	// approved record and the store, so the store refuses the approval.
	raceDenial := func(ap *string) func(*audit.Event) {
		return func(ev *audit.Event) {
			if isStep("approved")(ev) {
				_, _ = env.grants.store.UpdateApproval(context.Background(), *ap, func(x *store.ApprovalRecord) error {
					return x.Decide(false, "spiffe://"+identity.DevTrustDomain+"/tenant/acme/human/carol", "raced", time.Now())
				})
			}
		}
	}
	approve := func(ap string) answer {
		return env.send(identity.DevHumanID, "POST", "/v1/approvals/"+ap+"/approve", strings.NewReader(`{"reason":"checked"}`), nil)
	}
	var ap string
	tests := []struct {
		name       string
		setup      func() // parks what the request needs, before the hooks are set
		fail       func(*audit.Event) bool
		after      func(*audit.Event)
		do         func() answer
		wantStatus int
		wantNamed  string // action of the record named; "": none
	}{
		{"unknown model", nil, always, nil, func() answer {
			return env.send(identity.DevAppID, "POST", "/v1/chat/completions", chatBody("nonexistent-model"), nil)
		}, http.StatusServiceUnavailable, ""},
		{"unknown identity", nil, always, nil, func() answer {
			return env.send("spiffe://"+identity.DevTrustDomain+"/ops/backup-job", "GET", "/v1/models", nil, nil)
		}, http.StatusServiceUnavailable, ""},
		{"grant mint", nil, always, nil, func() answer {
			return env.send(identity.DevHumanID, "POST", "/v1/grants", strings.NewReader(`{"purpose":"x"}`), nil)
		}, http.StatusServiceUnavailable, ""},
		{"no route", nil, nil, nil, func() answer {
			return env.send(identity.DevAppID, "GET", "/v1/nowhere", nil, nil)
		}, http.StatusNotFound, ""},
		{"approval conflict recorded", func() {
			ap, _ = env.park(identity.DevAppID, "", refundParams("gpt-4o-mini", "refund order 44"))
		}, nil, raceDenial(&ap), func() answer { return approve(ap) }, http.StatusConflict, "approval.not_applied"},
		{"approval conflict not recorded", func() {
			ap, _ = env.park(identity.DevAppID, "", refundParams("gpt-4o-mini", "refund order 45"))
		}, isStep("not_applied"), raceDenial(&ap), func() answer { return approve(ap) }, http.StatusServiceUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			h.set(tt.fail, tt.after)
			a := tt.do()
			h.set(nil, nil)
			if a.StatusCode != tt.wantStatus {
				t.Fatalf("status %d %s, want %d", a.StatusCode, a.body, tt.wantStatus)
			}
			got := a.Header.Get(proxy.AuditSeqHeader)
			recs := env.recordsFor(requestID(t, a.Response))
			if tt.wantNamed == "" {
				if got != "" {
					t.Errorf("unrecorded answer %d names record %s (records of the request: %d)", a.StatusCode, got, len(recs))
				}
				return
			}
			last := recs[len(recs)-1]
			if want := strconv.FormatFloat(last["seq"].(float64), 'f', -1, 64); got != want || last["action"] != tt.wantNamed {
				t.Errorf("%s = %q; want %s, the seq of the request's last record (%v, want %s)", proxy.AuditSeqHeader, got, want, last["action"], tt.wantNamed)
			}
		})
	}
}

// TestMCPListToolsRefusalNamesRecord: a tools/list refused because the
// upstream MCP server is down names its refusal record, as a refused
// tools/call does.
func TestMCPListToolsRefusalNamesRecord(t *testing.T) {
	up, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: mcpToken})
	if err != nil {
		t.Fatal(err)
	}
	env := startGateway(t, envOptions{mcpServers: []proxy.MCPServer{{
		Name: "tools", URL: up.URL(), Header: http.Header{"Authorization": {"Bearer " + mcpToken}}, Timeout: 2 * time.Second,
	}}})
	up.Close()
	cs := env.mustMCP(identity.DevAppID, "")
	_, err = cs.ListTools(context.Background(), &mcp.ListToolsParams{})
	var wire *jsonrpc.Error
	if !errors.As(err, &wire) || wire.Code != proxy.MCPErrorUpstream {
		t.Fatalf("tools/list with the upstream down: %v, want error %d", err, proxy.MCPErrorUpstream)
	}
	var d proxy.MCPErrorData
	if err := json.Unmarshal(wire.Data, &d); err != nil {
		t.Fatal(err)
	}
	recs := env.recordsFor(d.RequestID)
	if len(recs) != 1 || recs[0]["action"] != "mcp.tools_list" {
		t.Fatalf("records of %s: %v, want one mcp.tools_list", d.RequestID, recs)
	}
	if want := uint64(recs[0]["seq"].(float64)); d.DecisionSeq == nil || *d.DecisionSeq != want {
		t.Errorf("refusal names decision_seq %v, want %d", d.DecisionSeq, want)
	}
}
