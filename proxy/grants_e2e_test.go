package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// call sends a JSON request to a grant endpoint as id, with an optional
// bearer grant and user token, and decodes the JSON answer.
func (e *gatewayEnv) call(id, method, path, bearer, userToken string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+e.addr+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if userToken != "" {
		req.Header.Set(identity.UserTokenHeader, userToken)
	}
	resp, err := e.httpClient(e.svid(id)).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if m == nil {
		m = map[string]any{}
	}
	m["_request_id"] = resp.Header.Get("X-Request-Id")
	return resp.StatusCode, m
}

func mintBody(task, purpose string, models, tools []string, budget int) map[string]any {
	return map[string]any{"task": task, "purpose": purpose, "ttl_seconds": 600,
		"scopes": map[string]any{"models": models, "tools": tools, "max_tokens": budget}}
}

// mint has the dev app mint a grant and returns the token and grant id.
func (e *gatewayEnv) mint(userToken string, body map[string]any) (string, string) {
	e.t.Helper()
	status, m := e.call(identity.DevAppID, "POST", "/v1/grants", "", userToken, body)
	if status != http.StatusCreated {
		e.t.Fatalf("mint: status %d: %v", status, m)
	}
	return m["grant"].(string), m["id"].(string)
}

// chatWith makes a chat call as id presenting grant, and returns the API
// error (nil on success).
func (e *gatewayEnv) chatWith(id, grant, model string) *openai.Error {
	e.t.Helper()
	_, err := e.chat(id, option.WithAPIKey(grant)).New(context.Background(), chatParams(model, "hi"))
	if err == nil {
		return nil
	}
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		e.t.Fatalf("chat: %v", err)
	}
	return apiErr
}

func wantAPIError(t *testing.T, err *openai.Error, status int, code, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %d %s", status, code)
	}
	if err.StatusCode != status || err.Code != code || !strings.Contains(err.Message, contains) {
		t.Fatalf("got %d %s %q, want %d %s containing %q", err.StatusCode, err.Code, err.Message, status, code, contains)
	}
}

func TestGrantChainHumanAppAgent(t *testing.T) {
	env := startGateway(t, envOptions{})
	alice := env.userToken(identity.DevHumanID)
	// The app, acting for alice, mints a grant for the task...
	status, m := env.call(identity.DevAppID, "POST", "/v1/grants", "", alice, mintBody("ticket-1", "support", []string{"gpt-4o-mini"}, []string{"search"}, 5000))
	if status != http.StatusCreated {
		t.Fatalf("mint: %d %v", status, m)
	}
	appGrant, id := m["grant"].(string), m["id"].(string)
	// ...and hands a narrower one to the agent.
	status, m = env.call(identity.DevAppID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "",
		map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "max_tokens": 1000}, "ttl_seconds": 120})
	if status != http.StatusCreated {
		t.Fatalf("delegate: %d %v", status, m)
	}
	agentGrant := m["grant"].(string)
	if chain := m["chain"].([]any); len(chain) != 2 || chain[0] != identity.DevAppID || chain[1] != identity.DevAgentID || m["parent"] != id {
		t.Errorf("delegated chain %v parent %v, want app then agent under %s", chain, m["parent"], id)
	}
	var resp *http.Response
	got, err := env.chat(identity.DevAgentID, option.WithAPIKey(agentGrant)).New(context.Background(), chatParams("gpt-4o-mini", "hi"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("agent under the delegated grant: %v", err)
	}
	// The decision record carries the whole chain and the user.
	dec := env.recordsFor(requestID(t, resp))[0]
	if chain, _ := get(dec, "detail", "chain").([]any); len(chain) != 2 || chain[1] != identity.DevAgentID {
		t.Errorf("audit chain = %v", get(dec, "detail", "chain"))
	}
	if get(dec, "detail", "user", "subject") != identity.DevHumanID || get(dec, "detail", "grant", "task") != "ticket-1" {
		t.Errorf("audit detail = %v", dec["detail"])
	}
	// The provider never sees the grant.
	for _, r := range env.fake.Requests() {
		if strings.Contains(r.Header.Get("Authorization"), agentGrant[:20]) {
			t.Error("the grant reached the provider")
		}
	}
	// Usage was charged to the agent's grant and its parent.
	time.Sleep(50 * time.Millisecond) // settle runs as the body closes
	for _, k := range []string{"grant/" + id, "task/acme/ticket-1"} {
		if n, _ := env.grants.store.Usage(context.Background(), k); n != got.Usage.TotalTokens {
			t.Errorf("usage of %s = %d, want %d", k, n, got.Usage.TotalTokens)
		}
	}
	// Every grant action was audited with its chain.
	for _, r := range env.records() {
		if a, _ := r["action"].(string); strings.HasPrefix(a, "grant.") && get(r, "detail", "chain") == nil {
			t.Errorf("%s record without chain: %v", a, r)
		}
	}
}

func TestStolenGrantReplayedFromAnotherSVID(t *testing.T) {
	env := startGateway(t, envOptions{})
	appGrant, _ := env.mint("", mintBody("t-stolen", "support", []string{"gpt-4o-mini"}, nil, 1000))
	if err := env.chatWith(identity.DevAppID, appGrant, "gpt-4o-mini"); err != nil {
		t.Fatalf("owner: %v %s", err, err.Message)
	}
	err := env.chatWith(identity.DevAgentID, appGrant, "gpt-4o-mini")
	wantAPIError(t, err, http.StatusForbidden, "grant_not_yours", "bound to "+identity.DevAppID)
	rec := env.recordsFor(err.Response.Header.Get("X-Request-Id"))
	if len(rec) != 1 || get(rec[0], "decision", "allow") != false || get(rec[0], "detail", "chain") == nil || get(rec[0], "request", "model") != "gpt-4o-mini" {
		t.Errorf("replay not audited with the chain: %v", rec)
	}
}

func TestWidenedDelegationRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	appGrant, id := env.mint("", mintBody("t-widen", "support", []string{"gpt-4o-mini"}, []string{"search"}, 1000))
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"more tools", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "tools": []string{"search", "lookup_ticket"}}}, "exceed the parent's"},
		{"other model", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o"}}}, "exceed the parent's"},
		{"bigger budget", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}, "max_tokens": 5000}}, "exceed the parent's"},
		{"later expiry", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}}, "ttl_seconds": 3600}, "after the parent's"},
		{"other tenant", map[string]any{"to": "spiffe://dev.portcullis.local/tenant/globex/agent/bot", "scopes": map[string]any{"models": []string{"gpt-4o-mini"}}}, `of tenant "globex"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := env.call(identity.DevAppID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "", tc.body)
			msg, _ := get(m, "error", "message").(string)
			if status != http.StatusForbidden || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %q, want 403 containing %q", status, msg, tc.want)
			}
			if rec := env.recordsFor(m["_request_id"].(string)); len(rec) != 1 || rec[0]["action"] != "grant.delegate" || get(rec[0], "decision", "allow") != false {
				t.Errorf("refusal not audited: %v", rec)
			}
		})
	}
	// Delegating a grant you do not hold is refused too.
	status, _ := env.call(identity.DevAgentID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "",
		map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}}})
	if status != http.StatusForbidden {
		t.Errorf("delegating someone else's grant: status %d, want 403", status)
	}
}

func TestInvalidGrantsRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	agent := identity.DevAgentID
	models := []string{"gpt-4o-mini"}
	valid := env.signGrant(agent, "t-invalid", "support", models, 0)
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding
	header := func(alg string) string {
		return b64.EncodeToString([]byte(`{"alg":"` + alg + `","kid":"` + env.grants.keys.CurrentKeyID() + `","typ":"portcullis-grant+jwt"}`))
	}
	revoked := env.signGrant(agent, "t-revoked", "support", models, 0)
	revokedID := grantID(t, revoked)
	if status, m := env.call(identity.DevHumanID, "DELETE", "/v1/grants/"+revokedID, "", "", nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, m)
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
		code   string
		reason string
	}{
		{"expired", env.signGrant(agent, "t", "support", models, 0, func(g *identity.Grant) {
			g.IssuedAt, g.NotBefore, g.Expiry = g.IssuedAt-600, g.NotBefore-600, g.IssuedAt-60
		}), 401, "invalid_grant", "expired"},
		{"not yet valid", env.signGrant(agent, "t", "support", models, 0, func(g *identity.Grant) { g.NotBefore += 120 }), 401, "invalid_grant", "not valid yet"},
		{"wrong audience", env.signGrant(agent, "t", "support", models, 0, func(g *identity.Grant) { g.Audience = "other-gateway" }), 401, "invalid_grant", "another audience"},
		{"revoked", revoked, 401, "grant_revoked", "revoked"},
		{"forged signature", parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 64)), 401, "invalid_grant", "signature is invalid"},
		{"alg none", header("none") + "." + parts[1] + ".", 401, "invalid_grant", "algorithm"},
		{"HMAC with the public key", header("HS256") + "." + parts[1] + "." + parts[2][:43], 401, "invalid_grant", "algorithm"},
		{"truncated", valid[:len(valid)-12], 401, "invalid_grant", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := env.chatWith(agent, tc.token, "gpt-4o-mini")
			wantAPIError(t, err, tc.status, tc.code, tc.reason)
			rec := env.recordsFor(err.Response.Header.Get("X-Request-Id"))
			if len(rec) != 1 || get(rec[0], "decision", "allow") != false || rec[0]["status"] != float64(tc.status) {
				t.Errorf("refusal not audited: %v", rec)
			}
		})
	}
	if n := len(env.fake.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the provider", n)
	}
}

func grantID(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestGrantPolicyOnModelCalls(t *testing.T) {
	env := startGateway(t, envOptions{})
	agent := identity.DevAgentID
	t.Run("tenant crossover", func(t *testing.T) {
		g := env.signGrant(agent, "t-x", "support", []string{"gpt-4o-mini"}, 0, func(g *identity.Grant) { g.Tenant = "globex" })
		wantAPIError(t, env.chatWith(agent, g, "gpt-4o-mini"), 403, "policy_denied", "grant tenant globex does not match principal tenant acme")
	})
	t.Run("model switch mid-task", func(t *testing.T) {
		g := env.agentGrant("gpt-4o-mini")
		if err := env.chatWith(agent, g, "gpt-4o-mini"); err != nil {
			t.Fatal(err)
		}
		wantAPIError(t, env.chatWith(agent, g, "gpt-4o"), 403, "policy_denied", "not in the scopes of grant")
	})
	t.Run("purpose mismatch", func(t *testing.T) {
		status, m := env.call(identity.DevAppID, "POST", "/v1/grants", "", "", mintBody("t-p", "support", []string{"gpt-4o"}, []string{"browse"}, 100))
		if msg, _ := get(m, "error", "message").(string); status != 403 || !strings.Contains(msg, "tool browse is not allowed for purpose support") {
			t.Errorf("mint outside the purpose: %d %q", status, msg)
		}
		g := env.signGrant(identity.DevAppID, "t-p", "research", []string{"gpt-4o"}, 0)
		if err := env.chatWith(identity.DevAppID, g, "gpt-4o"); err != nil {
			t.Fatalf("research grant: %v", err)
		}
		g = env.signGrant(identity.DevAppID, "t-p", "marketing", []string{"gpt-4o"}, 0)
		wantAPIError(t, env.chatWith(identity.DevAppID, g, "gpt-4o"), 403, "policy_denied", "not allowed for purpose marketing")
	})
	t.Run("agent without grant", func(t *testing.T) {
		wantAPIError(t, env.chatWith(agent, "not-a-grant", "gpt-4o-mini"), 403, "policy_denied", "agents need a task grant")
	})
	t.Run("agents may not mint", func(t *testing.T) {
		status, _ := env.call(agent, "POST", "/v1/grants", "", "", mintBody("t-a", "support", []string{"gpt-4o-mini"}, nil, 100))
		if status != 403 {
			t.Errorf("agent mint: %d, want 403", status)
		}
	})
}

func TestUserContextIntersection(t *testing.T) {
	env := startGateway(t, envOptions{})
	alice := env.userToken(identity.DevHumanID)
	// The app alone may call gpt-4o; acting for alice, who may not, it may not.
	if err := env.chatWith(identity.DevAppID, "not-a-grant", "gpt-4o"); err != nil {
		t.Fatalf("app alone: %v", err)
	}
	_, err := env.chat(identity.DevAppID, option.WithHeader(identity.UserTokenHeader, alice)).New(context.Background(), chatParams("gpt-4o", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("app for alice on gpt-4o: err = %v, want 403", err)
	}
	wantAPIError(t, apiErr, 403, "policy_denied", "may not use model gpt-4o")
	// Nor can it mint a grant for alice wider than alice.
	status, m := env.call(identity.DevAppID, "POST", "/v1/grants", "", alice, mintBody("t-u", "support", []string{"gpt-4o-mini"}, []string{"lookup_ticket"}, 100))
	if msg, _ := get(m, "error", "message").(string); status != 403 || !strings.Contains(msg, "may not use tool lookup_ticket") {
		t.Errorf("mint wider than alice: %d %q", status, msg)
	}
	// An agent under alice's grant, delegated by the app, is held to alice too.
	appGrant, id := env.mint(alice, mintBody("t-u", "support", []string{"gpt-4o-mini"}, []string{"search"}, 1000))
	_, m = env.call(identity.DevAppID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}}})
	agentGrant, _ := m["grant"].(string)
	if err := env.chatWith(identity.DevAgentID, agentGrant, "gpt-4o-mini"); err != nil {
		t.Fatalf("agent for alice: %v", err)
	}
	// A forged user token is refused outright.
	_, err = env.chat(identity.DevAppID, option.WithHeader(identity.UserTokenHeader, alice[:len(alice)-5]+"AAAAA")).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_user_token" {
		t.Errorf("forged user token: %v", err)
	}
}

func TestBudgetExhausted(t *testing.T) {
	env := startGateway(t, envOptions{})
	g := env.signGrant(identity.DevAgentID, "t-budget", "support", []string{"gpt-4o-mini"}, 80)
	var last *openai.Error
	ok := 0
	for range 20 {
		if last = env.chatWith(identity.DevAgentID, g, "gpt-4o-mini"); last != nil {
			break
		}
		ok++
	}
	if ok == 0 {
		t.Fatal("no call fit the budget")
	}
	wantAPIError(t, last, http.StatusTooManyRequests, "budget_exceeded", "token budget")
	used, _ := env.grants.store.Usage(context.Background(), "grant/"+grantID(t, g))
	if used > 80 {
		t.Errorf("%d tokens used of a budget of 80", used)
	}
	// A call's output is capped to what is left of the budget.
	g2 := env.signGrant(identity.DevAgentID, "t-budget2", "support", []string{"gpt-4o-mini"}, 100)
	p := chatParams("gpt-4o-mini", "hi")
	p.MaxCompletionTokens = openai.Int(500)
	if _, err := env.chat(identity.DevAgentID, option.WithAPIKey(g2)).New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	reqs := env.fake.Requests()
	var up struct {
		MaxCompletionTokens int `json:"max_completion_tokens"`
	}
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &up); err != nil || up.MaxCompletionTokens <= 0 || up.MaxCompletionTokens > 100 {
		t.Errorf("upstream max_completion_tokens = %d (%v), want within the budget of 100", up.MaxCompletionTokens, err)
	}
}

func TestRevocationSurvivesRestart(t *testing.T) {
	stateDir := t.TempDir()
	k, _ := identity.GenerateGrantKey()
	keys, _ := identity.NewGrantKeyring(k)
	opts := envOptions{grants: grantEnvOptions{keys: keys, stateDir: stateDir}}
	env := startGateway(t, opts)
	g := env.signGrant(identity.DevAgentID, "t-restart", "support", []string{"gpt-4o-mini"}, 0)
	done := env.signGrant(identity.DevAgentID, "t-done", "support", []string{"gpt-4o-mini"}, 0)
	if err := env.chatWith(identity.DevAgentID, g, "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	if status, m := env.call(identity.DevAgentID, "DELETE", "/v1/grants/"+grantID(t, g), "", "", nil); status != 200 {
		t.Fatalf("holder revokes: %d %v", status, m)
	}
	if status, m := env.call(identity.DevAgentID, "POST", "/v1/tasks/t-done/complete", done, "", nil); status != 200 {
		t.Fatalf("complete task: %d %v", status, m)
	}
	env.stop()

	opts.grants.jwt = env.grants.jwt
	env2 := startGateway(t, opts)
	wantAPIError(t, env2.chatWith(identity.DevAgentID, g, "gpt-4o-mini"), 401, "grant_revoked", "revoked")
	wantAPIError(t, env2.chatWith(identity.DevAgentID, done, "gpt-4o-mini"), 401, "grant_revoked", "task t-done")
	// A completed task takes no new grants either.
	if status, m := env2.call(identity.DevAppID, "POST", "/v1/grants", "", "", mintBody("t-done", "support", []string{"gpt-4o-mini"}, nil, 100)); status != http.StatusConflict {
		t.Errorf("mint for a completed task: %d %v, want 409", status, m)
	}
}

func TestRevokeDescendantsAndCompleteTask(t *testing.T) {
	env := startGateway(t, envOptions{})
	appGrant, id := env.mint("", mintBody("t-tree", "support", []string{"gpt-4o-mini"}, nil, 1000))
	_, m := env.call(identity.DevAppID, "POST", "/v1/grants/"+id+"/delegate", appGrant, "", map[string]any{"to": identity.DevAgentID, "scopes": map[string]any{"models": []string{"gpt-4o-mini"}}})
	agentGrant := m["grant"].(string)
	// Someone outside the chain may not revoke.
	if status, _ := env.call("spiffe://dev.portcullis.local/tenant/acme/app/other", "DELETE", "/v1/grants/"+id, "", "", nil); status != 403 {
		t.Errorf("outsider revoke: %d, want 403", status)
	}
	status, m := env.call(identity.DevAppID, "DELETE", "/v1/grants/"+id, "", "", nil)
	if ids, _ := m["revoked"].([]any); status != 200 || len(ids) != 2 {
		t.Fatalf("revoke: %d %v, want the grant and its child", status, m)
	}
	wantAPIError(t, env.chatWith(identity.DevAgentID, agentGrant, "gpt-4o-mini"), 401, "grant_revoked", "revoked")
}

func TestRateLimitPerKind(t *testing.T) {
	env := startGateway(t, envOptions{rateLimits: map[identity.Kind]proxy.RateLimit{identity.KindApplication: {Rate: 0.01, Burst: 2}}})
	for i := range 2 {
		if err := env.chatWith(identity.DevAppID, "x", "gpt-4o-mini"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	err := env.chatWith(identity.DevAppID, "x", "gpt-4o-mini")
	wantAPIError(t, err, 429, "rate_limited", "rate limit for application")
	if err.Response.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if err := env.chatWith(identity.DevHumanID, "x", "gpt-4o-mini"); err != nil {
		t.Errorf("humans have no limit configured: %v", err)
	}
}

func TestJWKS(t *testing.T) {
	env := startGateway(t, envOptions{})
	status, m := env.call(identity.DevAgentID, "GET", "/.well-known/jwks.json", "", "", nil)
	keys, _ := m["keys"].([]any)
	if status != 200 || len(keys) != 1 || get(keys[0].(map[string]any), "kid") != env.grants.keys.CurrentKeyID() {
		t.Fatalf("JWKS: %d %v", status, m)
	}
	if !slices.ContainsFunc(env.records(), func(r map[string]any) bool { return r["action"] == "grant.jwks" }) {
		t.Error("JWKS read not audited")
	}
}

func TestGrantAsAnthropicAPIKey(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	g := env.signGrant(identity.DevAppID, "t-anthropic", "support", []string{"claude-sonnet-4-5"}, 0)
	c := anthropic.NewClient(
		aoption.WithBaseURL("https://"+env.addr),
		aoption.WithHTTPClient(env.httpClient(env.svid(identity.DevAppID))),
		aoption.WithAPIKey(g), // sent as X-Api-Key
		aoption.WithMaxRetries(0),
	)
	msg, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if err != nil {
		t.Fatalf("app with its grant over the Anthropic API: %v", err)
	}
	if len(msg.Content) == 0 {
		t.Fatal("empty answer")
	}
	for _, r := range env.fake.Requests() {
		if strings.Contains(r.Header.Get("X-Api-Key")+r.Header.Get("Authorization"), g[:20]) {
			t.Error("the grant reached the provider")
		}
	}
	// The same grant from another SVID is refused in Anthropic's error shape.
	stolen := anthropic.NewClient(
		aoption.WithBaseURL("https://"+env.addr),
		aoption.WithHTTPClient(env.httpClient(env.svid(identity.DevAgentID))),
		aoption.WithAPIKey(g), aoption.WithMaxRetries(0),
	)
	_, err = stolen.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var aerr *anthropic.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != http.StatusForbidden {
		t.Fatalf("stolen grant over the Anthropic API: err = %v, want 403", err)
	}
}

// TestAgentForAliceHeldToAlice: with a bundle where alice may not use
// gpt-4o-mini, the agent may call it on its own grant, but not on a grant
// for alice — the effective permission is the intersection.
func TestAgentForAliceHeldToAlice(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, policy.DefaultBundle()); err != nil {
		t.Fatal(err)
	}
	users := `{"` + identity.DevHumanID + `": {"models": ["o3-mini"], "tools": []}}`
	if err := os.WriteFile(filepath.Join(dir, "users", "data.json"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	env := startGateway(t, envOptions{bundleDir: dir})
	own := env.signGrant(identity.DevAgentID, "t-own", "support", []string{"gpt-4o-mini"}, 0)
	if err := env.chatWith(identity.DevAgentID, own, "gpt-4o-mini"); err != nil {
		t.Fatalf("agent on its own grant: %v", err)
	}
	forAlice := env.signGrant(identity.DevAgentID, "t-alice", "support", []string{"gpt-4o-mini"}, 0, func(g *identity.Grant) {
		g.User = &identity.UserInfo{Subject: identity.DevHumanID, Issuer: "spiffe://" + identity.DevTrustDomain, Kind: "human"}
	})
	err := env.chatWith(identity.DevAgentID, forAlice, "gpt-4o-mini")
	wantAPIError(t, err, 403, "policy_denied", "user "+identity.DevHumanID+" may not use model gpt-4o-mini")
	rec := env.recordsFor(err.Response.Header.Get("X-Request-Id"))
	if len(rec) != 1 || get(rec[0], "detail", "user", "subject") != identity.DevHumanID || get(rec[0], "detail", "chain") == nil {
		t.Errorf("decision record lacks the user or chain: %v", rec)
	}
}
