package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// Approvers and requesters beyond the dev identities: bob is a second human
// of tenant acme, carol a human of globex, other-app another acme workload.
const (
	bobID      = "spiffe://" + identity.DevTrustDomain + "/tenant/acme/human/bob"
	carolID    = "spiffe://" + identity.DevTrustDomain + "/tenant/globex/human/carol"
	otherAppID = "spiffe://" + identity.DevTrustDomain + "/tenant/acme/app/other-app"
)

// refundParams is a chat call that offers the model the issue_refund tool,
// which the default bundle's data.approvals lists as needing an approval.
func refundParams(model, text string) openai.ChatCompletionNewParams {
	p := chatParams(model, text)
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "issue_refund",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"order": map[string]any{"type": "string"}}},
	})}
	return p
}

// attempt is one chat call's outcome.
type attempt struct {
	resp       *http.Response
	err        *openai.Error
	approvalID string // Portcullis-Approval-Id of the answer
	requestID  string
}

// tryChat calls the chat API as id, with approval (if not "") in the retry
// header and grant (if not "") as the API key.
func (e *gatewayEnv) tryChat(id, grant, approval string, p openai.ChatCompletionNewParams) attempt {
	e.t.Helper()
	var opts []option.RequestOption
	if grant != "" {
		opts = append(opts, option.WithAPIKey(grant))
	}
	var a attempt
	call := []option.RequestOption{option.WithResponseInto(&a.resp)}
	if approval != "" {
		call = append(call, option.WithHeader(proxy.ApprovalHeader, approval))
	}
	_, err := e.chat(id, opts...).New(context.Background(), p, call...)
	if err != nil && !errors.As(err, &a.err) {
		e.t.Fatalf("chat: %v", err)
	}
	if a.err != nil {
		a.resp = a.err.Response
	}
	a.approvalID = a.resp.Header.Get(proxy.ApprovalIDHeader)
	a.requestID = a.resp.Header.Get("X-Request-Id")
	return a
}

// park makes the call and expects it parked; it returns the approval id.
func (e *gatewayEnv) park(id, grant string, p openai.ChatCompletionNewParams) (string, attempt) {
	e.t.Helper()
	a := e.tryChat(id, grant, "", p)
	wantAPIError(e.t, a.err, http.StatusForbidden, "approval_required", "Portcullis-Approval: "+a.approvalID)
	if !strings.HasPrefix(a.approvalID, "apr_") || !strings.Contains(a.err.Message, a.approvalID) {
		e.t.Fatalf("parked answer names approval %q in %q", a.approvalID, a.err.Message)
	}
	return a.approvalID, a
}

// decide has id approve (or deny) approval ap.
func (e *gatewayEnv) decide(id, ap string, approve bool) (int, map[string]any) {
	e.t.Helper()
	verb := "/deny"
	if approve {
		verb = "/approve"
	}
	return e.call(id, "POST", "/v1/approvals/"+ap+verb, "", "", map[string]any{"reason": "checked order 42"})
}

func (e *gatewayEnv) approve(id, ap string) {
	e.t.Helper()
	if status, m := e.decide(id, ap, true); status != http.StatusOK || m["state"] != "approved" {
		e.t.Fatalf("approve by %s: %d %v", id, status, m)
	}
}

// approvalRecords returns the approval steps of approval ap, in log order.
func (e *gatewayEnv) approvalRecords(ap string) []map[string]any {
	var out []map[string]any
	for _, r := range e.records() {
		if r["type"] == "approval" && get(r, "detail", "approval_id") == ap {
			out = append(out, r)
		}
	}
	return out
}

func steps(recs []map[string]any) []string {
	var s []string
	for _, r := range recs {
		s = append(s, strings.TrimPrefix(r["action"].(string), "approval."))
	}
	return s
}

func TestApprovalApproveThenExactRetryExecutesOnce(t *testing.T) {
	env := startGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, parked := env.park(identity.DevAppID, "", p)
	if n := len(env.fake.Requests()); n != 0 {
		t.Fatalf("a parked call reached the provider (%d requests)", n)
	}

	// Approvers see it, with enough to judge.
	status, list := env.call(identity.DevHumanID, "GET", "/v1/approvals?state=pending", "", "", nil)
	data, _ := list["data"].([]any)
	if status != 200 || len(data) != 1 {
		t.Fatalf("list: %d %v", status, list)
	}
	item := data[0].(map[string]any)
	if item["id"] != ap || item["requester"] != identity.DevAppID || item["action"] != "llm.invoke" ||
		get(item, "summary", "model") != "gpt-4o-mini" || get(item, "summary", "tools").([]any)[0] != "issue_refund" {
		t.Errorf("listed approval = %v", item)
	}
	// A machine cannot list them.
	if status, _ := env.call(identity.DevAgentID, "GET", "/v1/approvals", "", "", nil); status != 403 {
		t.Errorf("agent lists approvals: %d, want 403", status)
	}
	// The requester can poll its own.
	if status, m := env.call(identity.DevAppID, "GET", "/v1/approvals/"+ap, "", "", nil); status != 200 || m["state"] != "pending" {
		t.Errorf("requester polls: %d %v", status, m)
	}

	env.approve(identity.DevHumanID, ap)
	ok := env.tryChat(identity.DevAppID, "", ap, p)
	if ok.err != nil {
		t.Fatalf("approved retry: %v", ok.err)
	}
	if n := len(env.fake.Requests()); n != 1 {
		t.Errorf("provider saw %d requests, want 1", n)
	}
	// Single use: the same retry again is refused, and nothing more is forwarded.
	replay := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, replay.err, 403, "approval_refused", "already used by request "+ok.requestID)
	if n := len(env.fake.Requests()); n != 1 {
		t.Errorf("provider saw %d requests after the replay, want 1", n)
	}

	// The audit log links request, approval and execution.
	recs := env.approvalRecords(ap)
	if got, want := steps(recs), []string{"requested", "approved", "used", "refused"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("approval steps = %v, want %v", got, want)
	}
	for _, r := range recs {
		if get(r, "detail", "origin_request_id") != parked.requestID {
			t.Errorf("%s record not linked to the parked request %s: %v", r["action"], parked.requestID, r["detail"])
		}
	}
	if get(recs[1], "detail", "decided_by") != identity.DevHumanID || get(recs[1], "decision", "allow") != true {
		t.Errorf("approved record = %v", recs[1])
	}
	if recs[2]["request_id"] != ok.requestID {
		t.Errorf("used record request_id = %v, want the retry %s", recs[2]["request_id"], ok.requestID)
	}
	exec := env.recordsFor(ok.requestID)
	var dec, done map[string]any
	for _, r := range exec {
		switch r["type"] {
		case "decision":
			dec = r
		case "completion":
			done = r
		}
	}
	if dec == nil || done == nil {
		t.Fatalf("retry records = %v", exec)
	}
	if get(dec, "detail", "approval_id") != ap || get(dec, "detail", "approval_origin_request_id") != parked.requestID ||
		get(dec, "detail", "approved_by") != identity.DevHumanID || get(dec, "decision", "allow") != true {
		t.Errorf("retry decision record = %v", dec)
	}
	if done["status"] != float64(200) {
		t.Errorf("completion record = %v", done)
	}
	var parkedDec map[string]any
	for _, r := range env.recordsFor(parked.requestID) {
		if r["type"] == "decision" {
			parkedDec = r
		}
	}
	if get(parkedDec, "detail", "approval_id") != ap || get(parkedDec, "status") != float64(403) ||
		get(parkedDec, "decision", "obligations", "require_approval") != true {
		t.Errorf("parked decision record = %v", parkedDec)
	}
}

func TestApprovalByTheWrongPrincipalRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	// alice (a human) is the requester here, so self-approval is a human's.
	ap, _ := env.park(identity.DevHumanID, "", refundParams("gpt-4o-mini", "refund order 7"))
	tests := []struct {
		name, approver, reason string
	}{
		{"self-approval", identity.DevHumanID, "the requester cannot approve their own action"},
		{"application SVID", identity.DevAppID, "only humans may approve; " + identity.DevAppID + " is a application"},
		{"agent SVID", identity.DevAgentID, "is a agent"},
		{"human of another tenant", carolID, "a principal of tenant globex cannot decide an approval of tenant acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, approve := range []bool{true, false} {
				status, m := env.decide(tt.approver, ap, approve)
				if msg, _ := get(m, "error", "message").(string); status != 403 || get(m, "error", "code") != "policy_denied" || !strings.Contains(msg, tt.reason) {
					t.Errorf("approve=%v: got %d %v, want 403 policy_denied with %q", approve, status, m, tt.reason)
				}
			}
		})
	}
	// A machine relaying a human's token is still a machine.
	status, _ := env.call(identity.DevAppID, "POST", "/v1/approvals/"+ap+"/approve", "", env.userToken(bobID), map[string]any{"reason": "relayed"})
	if status != 403 {
		t.Errorf("app relaying bob's token: %d, want 403", status)
	}
	if status, m := env.call(bobID, "GET", "/v1/approvals/"+ap, "", "", nil); status != 200 || m["state"] != "pending" {
		t.Fatalf("after refused decisions: %d %v, want still pending", status, m)
	}
	for _, r := range env.approvalRecords(ap)[1:] {
		if r["action"] != "approval.decision_refused" || get(r, "decision", "allow") != false {
			t.Errorf("refused decision recorded as %v", r)
		}
	}
	// Bob may; then nobody decides again.
	if status, m := env.decide(bobID, ap, false); status != 200 || m["state"] != "denied" || m["decided_by"] != bobID {
		t.Fatalf("bob denies: %d %v", status, m)
	}
	if status, m := env.decide(bobID, ap, true); status != http.StatusConflict {
		t.Errorf("second decision: %d %v, want 409", status, m)
	}
	a := env.tryChat(identity.DevHumanID, "", ap, refundParams("gpt-4o-mini", "refund order 7"))
	wantAPIError(t, a.err, 403, "approval_refused", "denied, not approved")
}

// TestApprovalChainMemberRefused: bob starts a task and delegates it to the
// agent; the agent's refund call is parked, and bob, in its chain (and its
// user), may not approve it. alice may.
func TestApprovalChainMemberRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	status, m := env.call(bobID, "POST", "/v1/grants", "", "", mintBody("refund-42", "support", []string{"gpt-4o-mini"}, []string{"issue_refund"}, 5000))
	if status != http.StatusCreated {
		t.Fatalf("bob mints: %d %v", status, m)
	}
	status, m = env.call(bobID, "POST", "/v1/grants/"+m["id"].(string)+"/delegate", m["grant"].(string), "",
		map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"issue_refund"}, "max_tokens": 2000}, "ttl_seconds": 300})
	if status != http.StatusCreated {
		t.Fatalf("bob delegates: %d %v", status, m)
	}
	agentGrant := m["grant"].(string)
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAgentID, agentGrant, p)
	status, m = env.decide(bobID, ap, true)
	if msg, _ := get(m, "error", "message").(string); status != 403 || !strings.Contains(msg, bobID+" is in the request's chain") {
		t.Fatalf("bob approves: %d %v, want 403 (in the chain)", status, m)
	}
	env.approve(identity.DevHumanID, ap)
	if a := env.tryChat(identity.DevAgentID, agentGrant, ap, p); a.err != nil {
		t.Fatalf("agent retries: %v", a.err)
	}
	req := env.approvalRecords(ap)[0]
	if chain, _ := get(req, "detail", "chain").([]any); len(chain) != 2 || chain[0] != bobID || get(req, "detail", "task") != "acme/refund-42" {
		t.Errorf("requested record = %v", req["detail"])
	}
}

func TestApprovedActionChangedRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(bobID, ap)
	changedModel := refundParams("gpt-4o", "refund order 42")
	changedArgs := refundParams("gpt-4o-mini", "refund order 42, and 43")
	changedTokens := refundParams("gpt-4o-mini", "refund order 42")
	changedTokens.MaxCompletionTokens = openai.Int(5)
	tests := []struct {
		name, caller string
		p            openai.ChatCompletionNewParams
		want         string
	}{
		{"changed arguments", identity.DevAppID, changedArgs, "the action differs from the one approved"},
		{"changed model", identity.DevAppID, changedModel, "the action differs from the one approved"},
		{"changed max tokens", identity.DevAppID, changedTokens, "the action differs from the one approved"},
		{"another caller", otherAppID, p, "requested by another caller"},
		{"unknown approval", identity.DevAppID, p, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := ap
			if tt.name == "unknown approval" {
				id = "apr_00000000000000000000000000000000"
			}
			a := env.tryChat(tt.caller, "", id, tt.p)
			wantAPIError(t, a.err, 403, "approval_refused", tt.want)
		})
	}
	if n := len(env.fake.Requests()); n != 0 {
		t.Fatalf("provider saw %d requests, want none", n)
	}
	// Mismatches do not spend the approval: the exact action still runs.
	if a := env.tryChat(identity.DevAppID, "", ap, p); a.err != nil {
		t.Fatalf("exact retry after mismatches: %v", a.err)
	}
	refused := 0
	for _, r := range env.approvalRecords(ap) {
		if r["action"] == "approval.refused" {
			refused++
			if d, _ := get(r, "detail", "presented_digest").(string); len(d) != 64 || d == get(r, "detail", "digest") {
				t.Errorf("refused record digests: %v", r["detail"])
			}
		}
	}
	if refused != 4 {
		t.Errorf("got %d refused records for %s, want 4", refused, ap)
	}
}

func TestApprovalExpires(t *testing.T) {
	env := startGateway(t, envOptions{approvalTTL: 1500 * time.Millisecond})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(bobID, ap)
	late, _ := env.park(identity.DevAppID, "", refundParams("gpt-4o-mini", "refund order 43"))
	time.Sleep(1600 * time.Millisecond)
	a := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, a.err, 403, "approval_refused", "approval expired")
	if status, m := env.decide(bobID, late, true); status != http.StatusConflict || !strings.Contains(get(m, "error", "message").(string), "expired") {
		t.Errorf("deciding an expired approval: %d %v, want 409", status, m)
	}
	if got := strings.Join(steps(env.approvalRecords(ap)), ","); got != "requested,approved,expired,refused" {
		t.Errorf("steps of %s = %s", ap, got)
	}
	if got := strings.Join(steps(env.approvalRecords(late)), ","); got != "requested,expired" {
		t.Errorf("steps of %s = %s", late, got)
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("an expired approval reached the provider")
	}
}

func TestApprovalWithdrawn(t *testing.T) {
	env := startGateway(t, envOptions{})
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(bobID, ap)
	if status, _ := env.call(otherAppID, "DELETE", "/v1/approvals/"+ap, "", "", nil); status != 404 {
		t.Errorf("another workload withdraws: %d, want 404", status)
	}
	if status, m := env.call(identity.DevAppID, "DELETE", "/v1/approvals/"+ap, "", "", map[string]any{"reason": "customer cancelled"}); status != 200 || m["state"] != "withdrawn" {
		t.Fatalf("requester withdraws: %d %v", status, m)
	}
	a := env.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, a.err, 403, "approval_refused", "withdrawn, not approved")
}

func TestApprovalSurvivesRestart(t *testing.T) {
	k, _ := identity.GenerateGrantKey()
	keys, _ := identity.NewGrantKeyring(k)
	opts := envOptions{grants: grantEnvOptions{keys: keys, stateDir: t.TempDir()}}
	env := startGateway(t, opts)
	p := refundParams("gpt-4o-mini", "refund order 42")
	ap, _ := env.park(identity.DevAppID, "", p)
	env.approve(bobID, ap)
	env.stop()

	opts.grants.jwt = env.grants.jwt
	env2 := startGateway(t, opts)
	if a := env2.tryChat(identity.DevAppID, "", ap, p); a.err != nil {
		t.Fatalf("retry after restart: %v", a.err)
	}
	a := env2.tryChat(identity.DevAppID, "", ap, p)
	wantAPIError(t, a.err, 403, "approval_refused", "already used")
}
