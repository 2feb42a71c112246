package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
	"github.com/portcullis-dev/portcullis/proxy"
)

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    shared.ChatModel(model),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func requestID(t *testing.T, resp *http.Response) string {
	t.Helper()
	id := resp.Header.Get("X-Request-Id")
	if !strings.HasPrefix(id, "req_") {
		t.Fatalf("response has no gateway request id (X-Request-Id=%q)", id)
	}
	return id
}

func TestChatCompletionAsApp(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.openai(identity.DevAppID)
	var resp *http.Response
	got, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini", "Hello, Portcullis"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if want := "Hello from fake gpt-4o-mini: you said Hello, Portcullis"; got.Choices[0].Message.Content != want {
		t.Errorf("content = %q, want %q", got.Choices[0].Message.Content, want)
	}
	if got.Usage.TotalTokens == 0 {
		t.Error("no usage in the response")
	}

	// The provider saw the gateway's key, never the client's.
	reqs := env.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(reqs))
	}
	if a := reqs[0].Header.Get("Authorization"); a != "Bearer "+providerKey {
		t.Errorf("provider Authorization = %q, want the gateway's key", a)
	}

	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 {
		t.Fatalf("audit has %d records for the request, want decision + completion", len(recs))
	}
	dec, comp := recs[0], recs[1]
	if dec["type"] != "decision" || get(dec, "decision", "allow") != true {
		t.Errorf("first record is not an allow decision: %v", dec)
	}
	for k, want := range map[string]string{"spiffe_id": identity.DevAppID, "kind": "application", "tenant": "acme", "name": "demo-app"} {
		if got := get(dec, "principal", k); got != want {
			t.Errorf("decision principal.%s = %v, want %s", k, got, want)
		}
	}
	if get(dec, "request", "model") != "gpt-4o-mini" || get(dec, "request", "provider") != "fake" {
		t.Errorf("decision request = %v", dec["request"])
	}
	if get(dec, "request", "prompt", "messages") != float64(1) || get(dec, "request", "prompt", "bytes") == nil {
		t.Errorf("prompt metadata = %v", get(dec, "request", "prompt"))
	}
	if rev, _ := get(dec, "decision", "revision").(string); rev == "" || rev != env.engine.Revision() {
		t.Errorf("decision revision = %q, want %q", rev, env.engine.Revision())
	}
	if comp["type"] != "completion" || comp["status"] != float64(200) {
		t.Errorf("second record is not a 200 completion: %v", comp)
	}
	if get(comp, "usage", "total_tokens") != float64(got.Usage.TotalTokens) {
		t.Errorf("completion usage = %v, want total %d", comp["usage"], got.Usage.TotalTokens)
	}
	for _, r := range env.records() {
		b, _ := r["request"].(map[string]any)
		for _, v := range b {
			if s, ok := v.(string); ok && strings.Contains(s, "Hello, Portcullis") {
				t.Fatal("prompt text appears in the audit log")
			}
		}
	}
	if seq := resp.Header.Get("X-Portcullis-Audit-Seq"); seq == "" {
		t.Error("response carries no audit sequence number")
	}
}

func TestChatCompletionStream(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.openai(identity.DevAppID)
	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-4o-mini", "stream me [fake:chunks=20]"), option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if chunks < 20 {
		t.Errorf("got %d chunks, want at least 20 relayed one by one", chunks)
	}
	if words := len(strings.Fields(acc.Choices[0].Message.Content)); words != 20 {
		t.Errorf("accumulated %d words, want 20", words)
	}
	// The gateway asked for usage on the client's behalf and recorded it.
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 {
		t.Fatalf("audit has %d records, want 2", len(recs))
	}
	if get(recs[0], "request", "stream") != true {
		t.Error("decision record does not say stream")
	}
	if tot, _ := get(recs[1], "usage", "total_tokens").(float64); tot == 0 || int64(tot) != acc.Usage.TotalTokens {
		t.Errorf("completion usage total = %v, stream reported %d", get(recs[1], "usage", "total_tokens"), acc.Usage.TotalTokens)
	}
	if recs[1]["error"] != nil {
		t.Errorf("clean stream recorded an error: %v", recs[1]["error"])
	}
}

func TestStreamCutMidwayIsAFailure(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.openai(identity.DevAppID)
	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-4o-mini", "[fake:chunks=30] [fake:cut]"), option.WithResponseInto(&resp))
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil {
		t.Fatalf("stream cut by the provider ended cleanly after %d chunks; want an error", n)
	}
	if n == 0 {
		t.Error("no chunk arrived before the cut; the relay buffered")
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 2 || recs[1]["error"] == nil {
		t.Fatalf("completion record does not record the failure: %v", recs)
	}
}

func TestToolCallsRecorded(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.openai(identity.DevAppID)
	p := chatParams("gpt-4o-mini", "weather please [fake:tool]")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})}
	var resp *http.Response
	got, err := client.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("no tool call in the response: %+v", got.Choices[0].Message)
	}
	recs := env.recordsFor(requestID(t, resp))
	tools, _ := get(recs[0], "request", "tools").([]any)
	if len(tools) != 1 || tools[0] != "get_weather" {
		t.Errorf("decision record tools = %v", tools)
	}
	// decision, the tool call's own tool.call decision, completion.
	if len(recs) != 3 || recs[1]["action"] != "tool.call" || get(recs[1], "decision", "allow") != true {
		t.Fatalf("records = %v", recs)
	}
	calls, _ := recs[2]["tool_calls"].([]any)
	if len(calls) != 1 || get(calls[0].(map[string]any), "name") != "get_weather" {
		t.Fatalf("completion record tool_calls = %v", recs[2]["tool_calls"])
	}
	if d, _ := get(calls[0].(map[string]any), "arguments_digest").(string); len(d) != 64 {
		t.Errorf("arguments digest = %q", d)
	}
}

func TestModelsFilteredByPolicy(t *testing.T) {
	env := startGateway(t, envOptions{})
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{identity.DevAppID, []string{"gpt-4o", "gpt-4o-mini"}},
		{identity.DevAgentID, []string{"gpt-4o-mini"}},
		{identity.DevHumanID, []string{"gpt-4o", "gpt-4o-mini", "o3-mini"}},
	} {
		var opts []option.RequestOption
		if tc.id == identity.DevAgentID { // agents act under a task grant
			opts = append(opts, option.WithAPIKey(env.agentGrant("gpt-4o-mini", "gpt-4o")))
		}
		client := env.openai(tc.id, opts...)
		page, err := client.Models.List(context.Background())
		if err != nil {
			t.Fatalf("%s: list models: %v", tc.id, err)
		}
		var got []string
		for _, m := range page.Data {
			got = append(got, m.ID)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s sees models %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestPolicyDeny(t *testing.T) {
	env := startGateway(t, envOptions{})
	var resp *http.Response
	client := env.openai(identity.DevAgentID)
	_, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o", "hi"), option.WithResponseInto(&resp))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("err = %v, want a 403 API error", err)
	}
	if apiErr.Code != "policy_denied" || !strings.Contains(apiErr.Message, "gpt-4o") {
		t.Errorf("error code %q message %q: want policy_denied naming the model", apiErr.Code, apiErr.Message)
	}
	if n := len(env.fake.Requests()); n != 0 {
		t.Errorf("a denied request reached the provider (%d requests)", n)
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 1 || get(recs[0], "decision", "allow") != false || recs[0]["status"] != float64(403) {
		t.Fatalf("deny not audited as one decision record: %v", recs)
	}
	if get(recs[0], "principal", "kind") != "agent" {
		t.Errorf("principal kind = %v", get(recs[0], "principal", "kind"))
	}
	if reasons, _ := get(recs[0], "decision", "reasons").([]any); len(reasons) == 0 {
		t.Error("deny recorded without reasons")
	}
}

func TestAgentMaxTokensObligation(t *testing.T) {
	env := startGateway(t, envOptions{})
	p := chatParams("gpt-4o-mini", "hi")
	p.MaxCompletionTokens = openai.Int(100000)
	if _, err := env.chat(identity.DevAgentID, option.WithAPIKey(env.agentGrant("gpt-4o-mini"))).New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	reqs := env.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider got %d requests", len(reqs))
	}
	if body := string(reqs[0].Body); !strings.Contains(body, `"max_completion_tokens":1024`) {
		t.Errorf("agent's max tokens were not capped upstream: %s", body)
	}
}

func TestModelAliasRewritten(t *testing.T) {
	env := startGateway(t, envOptions{})
	got, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Choices[0].Message.Content, "fake gpt-4o-mini:") {
		t.Errorf("upstream did not receive the upstream model name: %q", got.Choices[0].Message.Content)
	}
}

func TestIdentityHeadersNeverTrustedOrForwarded(t *testing.T) {
	env := startGateway(t, envOptions{})
	client := env.openai(identity.DevAgentID,
		option.WithAPIKey(env.agentGrant("gpt-4o-mini")), // agents act under a task grant
		option.WithHeader("X-Spiffe-Id", identity.DevHumanID),
		option.WithHeader("X-Forwarded-Client-Cert", "By=spiffe://dev.portcullis.local/human/alice"),
		option.WithHeader("X-Portcullis-Principal", "human"),
	)
	var resp *http.Response
	// o3-mini is for humans only: if the header were believed this would pass.
	_, err := client.Chat.Completions.New(context.Background(), chatParams("o3-mini", "hi"), option.WithResponseInto(&resp))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("spoofed human identity was believed: err = %v", err)
	}
	if _, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	for _, r := range env.fake.Requests() {
		for k := range r.Header {
			if ck := http.CanonicalHeaderKey(k); ck == "X-Spiffe-Id" || ck == "X-Forwarded-Client-Cert" || strings.HasPrefix(ck, "X-Portcullis-") {
				t.Errorf("identity header %s reached the provider", k)
			}
		}
		if strings.Contains(r.Header.Get("Authorization"), "not-a-provider-key") {
			t.Error("the client's Authorization reached the provider")
		}
	}
	recs := env.recordsFor(requestID(t, resp))
	if get(recs[0], "principal", "spiffe_id") != identity.DevAgentID {
		t.Errorf("audit principal = %v, want the certificate's ID", recs[0]["principal"])
	}
}

func TestUnknownSPIFFEIDRefused(t *testing.T) {
	env := startGateway(t, envOptions{})
	_, err := env.chat("spiffe://dev.portcullis.local/ops/backup-job").New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "unknown_identity" {
		t.Fatalf("err = %v, want 403 unknown_identity", err)
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("request from an unmapped ID reached the provider")
	}
}

func TestHandshakeRefusals(t *testing.T) {
	env := startGateway(t, envOptions{})
	td := env.ca.TrustDomain()
	foreign := spiffetest.NewCA(t, "evil.example")
	devLike := spiffetest.NewCA(t, identity.DevTrustDomain) // same name, different keys
	cases := map[string]*tls.Config{
		"foreign trust domain":                    clientTLS(foreign.SVID(t, "spiffe://evil.example/tenant/acme/app/x"), env.ca.Bundle(), td),
		"untrusted CA with our trust domain name": clientTLS(devLike.SVID(t, identity.DevAppID), env.ca.Bundle(), td),
		"expired SVID":                            clientTLS(devLike.SVID(t, identity.DevAppID, spiffetest.Expired()), env.ca.Bundle(), td),
		"no SPIFFE ID":                            clientTLS(devLike.SVID(t, identity.DevAppID, spiffetest.NoURI()), env.ca.Bundle(), td),
	}
	// An expired and a URI-less certificate from the real CA, so only the
	// named defect is wrong.
	cases["expired SVID from the trusted CA"] = expiredFromDevCA(t, env)
	noCert := clientTLS(env.svid(identity.DevAppID), env.ca.Bundle(), td)
	noCert.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	cases["no client certificate"] = noCert
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
			resp, err := c.Get("https://" + env.addr + "/v1/models")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request succeeded with status %d; want the handshake refused", resp.StatusCode)
			}
		})
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("a refused handshake reached the provider")
	}
}

func expiredFromDevCA(t *testing.T, env *gatewayEnv) *tls.Config {
	t.Helper()
	past, err := identity.NewDevCA(env.ca.TrustDomain(), func() time.Time { return time.Now().Add(-48 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	// A CA minted two days ago issues an SVID that expired a day ago; the
	// gateway must refuse it even though it also trusts that CA.
	svid, err := past.Issue(spiffeid.RequireFromString(identity.DevAppID), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundle := env.ca.Bundle()
	bundle.AddX509Authority(past.Certificate())
	return clientTLS(svid, bundle, env.ca.TrustDomain())
}

func TestPolicyErrorFailsClosed(t *testing.T) {
	dir := t.TempDir()
	// A bundle whose decision is undefined for every input.
	rego := "package portcullis\n\ndecision := {\"allow\": true, \"reasons\": [], \"obligations\": {}} if input.no_such_field == 42\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	env := startGateway(t, envOptions{bundleDir: dir})
	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "policy_error" {
		t.Fatalf("err = %v, want 403 policy_error", err)
	}
	if !strings.Contains(apiErr.Message, "req_") {
		t.Errorf("policy error message carries no decision id: %q", apiErr.Message)
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("request reached the provider without a decision")
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 1 || get(recs[0], "decision", "allow") != false || recs[0]["error"] == nil {
		t.Fatalf("policy error not audited: %v", recs)
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	env := startGateway(t, envOptions{})
	if err := env.log.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.Code != "audit_unavailable" {
		t.Fatalf("err = %v, want 503 audit_unavailable", err)
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("request was forwarded although its decision could not be recorded")
	}
}

func TestBadInputClearError(t *testing.T) {
	env := startGateway(t, envOptions{})
	c := env.httpClient(env.svid(identity.DevAppID))
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", `{"model":`, 400, "invalid_request"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, 400, "invalid_request"},
		{"unknown model", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"too large", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", 5<<20) + `"}]}`, 413, "request_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Post("https://"+env.addr+"/v1/chat/completions", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) || !strings.Contains(string(b), `"request_id":"req_`) {
				t.Errorf("got %d %s; want %d with code %s and a request id", resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	if len(env.fake.Requests()) != 0 {
		t.Error("bad input reached the provider")
	}
}

func TestUpstreamErrorsPassThroughAndAreAudited(t *testing.T) {
	env := startGateway(t, envOptions{})
	var resp *http.Response
	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "[fake:error=429]"), option.WithResponseInto(&resp))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("err = %v, want the provider's 429", err)
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 2 || recs[1]["status"] != float64(429) {
		t.Fatalf("provider status not in the completion record: %v", recs)
	}
}

func TestUpstreamUnreachableIs502(t *testing.T) {
	env := startGateway(t, envOptions{})
	env.fake.Close()
	_, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "upstream_error" {
		t.Fatalf("err = %v, want 502 upstream_error", err)
	}
	recs := env.recordsFor(apiErr.Response.Header.Get("X-Request-Id"))
	if len(recs) != 2 || recs[1]["error"] == nil || recs[1]["status"] != float64(502) {
		t.Fatalf("unreachable provider not audited: %v", recs)
	}
}

// TestToolCallsWithProviderTimeout: with a provider timeout set (as the
// example configuration does), reading a JSON answer ends the attempt's
// timer context before its tool calls are decided; the decisions must not
// inherit that end (they were refused as "could not decide").
func TestToolCallsWithProviderTimeout(t *testing.T) {
	env := startGateway(t, envOptions{limits: proxy.Limits{RequestTimeout: -1}, routes: func(base *url.URL) []proxy.Route {
		prov := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: base, Timeout: 30 * time.Second}
		prov.SetKey(providerKey)
		return []proxy.Route{{Model: "gpt-4o-mini", Provider: prov}}
	}})
	p := chatParams("gpt-4o-mini", "weather please [fake:tool]")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})}
	client := env.openai(identity.DevAppID)
	got, err := client.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatalf("allowed tool call through a provider with a timeout: %v", err)
	}
	if len(got.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("no tool call in the response: %+v", got.Choices[0].Message)
	}
}
