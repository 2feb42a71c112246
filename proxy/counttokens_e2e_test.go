package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// countParams is a count_tokens request for model with a system prompt and
// one user message.
func countParams(model, text string, tools ...anthropic.ToolUnionParam) anthropic.MessageCountTokensParams {
	p := anthropic.MessageCountTokensParams{
		Model:    anthropic.Model(model),
		System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: []anthropic.TextBlockParam{{Text: "be brief"}}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
	for _, t := range tools {
		p.Tools = append(p.Tools, anthropic.MessageCountTokensToolUnionParam{OfTool: t.OfTool})
	}
	return p
}

// fakeRequests returns what the fake provider received on path.
func (e *gatewayEnv) fakeRequests(path string) []fakeprovider.Recorded {
	var out []fakeprovider.Recorded
	for _, r := range e.fake.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// An allowed count goes to the Anthropic provider with the gateway's key,
// comes back as the provider's count, and leaves a decision record (the
// prompt's metadata and keyed digest, never its text) and a completion
// record with the count.
func TestCountTokensAllowed(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAppID)
	const secret = "count the tokens of this confidential prompt"
	var resp *http.Response
	got, err := c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", secret, antWeather), aoption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	// The fake's count is the input tokens its Messages answer reports for
	// the same prompt.
	var msgResp *http.Response
	msg, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 50, System: []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(secret))},
		Tools:    []anthropic.ToolUnionParam{antWeather},
	}, aoption.WithResponseInto(&msgResp))
	if err != nil {
		t.Fatal(err)
	}
	if got.InputTokens != msg.Usage.InputTokens || got.InputTokens == 0 {
		t.Errorf("count = %d, want the provider's %d", got.InputTokens, msg.Usage.InputTokens)
	}

	ups := env.fakeRequests("/v1/messages/count_tokens")
	if len(ups) != 1 {
		t.Fatalf("provider got %d counts", len(ups))
	}
	up := ups[0]
	if up.Header.Get("X-Api-Key") != providerKey || up.Header.Get("Authorization") != "" || up.Header.Get("Anthropic-Version") == "" {
		t.Errorf("provider got x-api-key=%q authorization=%q version=%q", up.Header.Get("X-Api-Key"), up.Header.Get("Authorization"), up.Header.Get("Anthropic-Version"))
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(up.Body, &sent); err != nil || sent["max_tokens"] != nil || sent["stream"] != nil || string(sent["model"]) != `"claude-sonnet-4-5"` {
		t.Errorf("provider got body %s (%v)", up.Body, err)
	}

	reqID := requestID(t, resp)
	recs := env.settled(reqID)
	if len(recs) != 2 {
		t.Fatalf("want a decision and a completion record, got %v", recs)
	}
	dec, done := recs[0], recs[1]
	if dec["action"] != "llm.invoke" || get(dec, "request", "api") != "anthropic.count_tokens" || get(dec, "decision", "allow") != true ||
		get(dec, "request", "provider") != "fake-anthropic" || get(dec, "request", "model") != "claude-sonnet-4-5" {
		t.Errorf("decision record = %v", dec)
	}
	if seq := resp.Header.Get("X-Portcullis-Audit-Seq"); seq == "" || seq != strconv.FormatFloat(dec["seq"].(float64), 'f', -1, 64) {
		t.Errorf("X-Portcullis-Audit-Seq = %q, decision record seq %v", seq, dec["seq"])
	}
	if tools, _ := get(dec, "request", "tools").([]any); len(tools) != 1 || tools[0] != "get_weather" {
		t.Errorf("decision request tools = %v", get(dec, "request", "tools"))
	}
	// The same prompt metadata and digest as the Messages call that follows.
	msgDec := env.recordsFor(requestID(t, msgResp))[0]
	for _, f := range []string{"bytes", "messages", "digest"} {
		if a, b := get(dec, "request", "prompt", f), get(msgDec, "request", "prompt", f); a == nil || a != b {
			t.Errorf("prompt.%s: count %v, messages %v", f, a, b)
		}
	}
	if done["type"] != "completion" || done["status"] != float64(200) || get(done, "detail", "input_tokens") != float64(got.InputTokens) ||
		get(done, "detail", "decision_seq") != dec["seq"] || done["usage"] != nil || done["error"] != nil {
		t.Errorf("completion record = %v", done)
	}
	checkAuditHasNo(t, env.auditDir, secret)
}

// checkAuditHasNo fails if any audit file holds text.
func checkAuditHasNo(t *testing.T, dir, text string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(text)) {
			t.Errorf("%s holds the prompt text", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A caller that may not use the model may not count against it either: 403
// in Anthropic's shape, a deny record, nothing forwarded.
func TestCountTokensDenied(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAgentID) // agents: gpt-4o-mini only, and under a grant
	var resp *http.Response
	_, err := c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "hi"), aoption.WithResponseInto(&resp))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("err = %v, want a 403 API error", err)
	}
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type, Message, Code string
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(apiErr.RawJSON()), &body); err != nil || body.Type != "error" || body.Error.Type != "permission_error" ||
		body.Error.Code != "policy_denied" || !strings.Contains(body.Error.Message, "model claude-sonnet-4-5 is not allowed for agents of tenant acme") {
		t.Errorf("error body %s (%v)", apiErr.RawJSON(), err)
	}
	if len(env.fakeRequests("/v1/messages/count_tokens")) != 0 {
		t.Error("a denied count reached the provider")
	}
	recs := env.recordsFor(requestID(t, resp))
	if len(recs) != 1 || get(recs[0], "decision", "allow") != false || recs[0]["status"] != float64(403) ||
		get(recs[0], "request", "api") != "anthropic.count_tokens" || recs[0]["action"] != "llm.invoke" {
		t.Fatalf("records = %v, want one deny record", recs)
	}
	if seq := resp.Header.Get("X-Portcullis-Audit-Seq"); seq != strconv.FormatFloat(recs[0]["seq"].(float64), 'f', -1, 64) {
		t.Errorf("X-Portcullis-Audit-Seq = %q, record seq %v", seq, recs[0]["seq"])
	}
}

// Bodies the gateway refuses before any decision: 400 in Anthropic's shape
// with a message that says what is wrong, recorded, nothing forwarded. A
// model of an OpenAI-format provider is decided, then refused: that format
// has no token counting endpoint, and the gateway makes up no count.
func TestCountTokensRefused(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	hc := env.httpClient(env.svid(identity.DevAppID))
	for _, tc := range []struct {
		name, body, errType, message string
		status                       int
		decided                      bool // policy was asked, and allowed
	}{
		{"max_tokens", `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"x"}]}`,
			"invalid_request_error", "max_tokens is not a field of count_tokens", 400, false},
		{"stream", `{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"x"}]}`,
			"invalid_request_error", "stream is not a field of count_tokens", 400, false},
		{"not JSON", `{"model":"claude-sonnet-4-5","messages":[`, "invalid_request_error", "invalid JSON body", 400, false},
		{"no messages", `{"model":"claude-sonnet-4-5"}`, "invalid_request_error", "messages must be a non-empty array", 400, false},
		{"unknown model", `{"model":"claude-9","messages":[{"role":"user","content":"x"}]}`, "not_found_error", "does not exist on this gateway", 404, false},
		{"OpenAI-format provider", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}`,
			"invalid_request_error", "in the openai format, which has no token counting endpoint", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Post("https://"+env.addr+"/v1/messages/count_tokens", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.HasPrefix(string(b), `{"type":"error","error":{"type":"`+tc.errType+`"`) || !strings.Contains(string(b), tc.message) {
				t.Errorf("got %d %s, want %d %s %q", resp.StatusCode, b, tc.status, tc.errType, tc.message)
			}
			recs := env.recordsFor(requestID(t, resp))
			if len(recs) != 1 || recs[0]["status"] != float64(tc.status) || get(recs[0], "decision", "allow") != tc.decided ||
				get(recs[0], "request", "api") != "anthropic.count_tokens" && recs[0]["request"] != nil {
				t.Errorf("records = %v, want one refusal", recs)
			}
			if tc.decided && !strings.Contains(recs[0]["error"].(string), tc.message) {
				t.Errorf("record error = %v", recs[0]["error"])
			}
		})
	}
	if n := len(env.fake.Requests()); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
	// The SDK reads the refusal as an API error.
	c := env.anthropic(identity.DevAppID)
	_, err := c.Messages.CountTokens(context.Background(), countParams("gpt-4o-mini", "hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.RawJSON(), "no token counting endpoint") {
		t.Errorf("err = %v, want a 400 naming the missing endpoint", err)
	}
}

// A count answer is checked like any answer: one that does not read as a
// count (here cut in half) is withheld with 502, and the completion record
// says why. A provider's error is relayed as it is.
func TestCountTokensAnswerChecked(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAppID)
	var resp *http.Response
	_, err := c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "[fake:truncate]"), aoption.WithResponseInto(&resp))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || !strings.Contains(apiErr.RawJSON(), "could not inspect") {
		t.Fatalf("err = %v, want a 502", err)
	}
	recs := env.settled(requestID(t, resp))
	if last := recs[len(recs)-1]; last["type"] != "completion" || !strings.Contains(last["error"].(string), "could not be parsed") {
		t.Errorf("completion record = %v", last)
	}

	_, err = c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "[fake:error=529]"), aoption.WithResponseInto(&resp))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.RawJSON(), "overloaded_error") {
		t.Fatalf("err = %v, want the provider's 529", err)
	}
	recs = env.settled(requestID(t, resp))
	if last := recs[len(recs)-1]; last["status"] != float64(529) || get(last, "detail", "input_tokens") != nil {
		t.Errorf("completion record = %v", last)
	}
}

// Under a grant, a count is a model call the grant must allow, but it
// spends nothing: the grant's token cap is not put in its body (the
// provider would refuse it) and its budget is not charged, while the
// Messages call is.
func TestCountTokensUnderGrant(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	task := "task-count"
	tok := env.signGrant(identity.DevAppID, task, "support", []string{"claude-sonnet-4-5"}, 5000)
	c := env.anthropic(identity.DevAppID)
	got, err := c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "hello"), aoption.WithAPIKey(tok))
	if err != nil {
		t.Fatal(err)
	}
	if got.InputTokens == 0 {
		t.Error("no count")
	}
	used := func() int64 {
		n, err := env.grants.store.Usage(context.Background(), store.TaskBudget("acme/"+task))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := used(); n != 0 {
		t.Errorf("a count charged %d tokens to the task", n)
	}
	var resp *http.Response
	if _, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 50, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}, aoption.WithAPIKey(tok), aoption.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	env.settled(requestID(t, resp))
	if n := used(); n == 0 {
		t.Error("the Messages call charged nothing: the check above proves nothing")
	}
	// A grant for another model does not let its holder count against this one.
	other := env.signGrant(identity.DevAppID, task, "support", []string{"gpt-4o-mini"}, 5000)
	_, err = c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "hello"), aoption.WithAPIKey(other))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(apiErr.RawJSON(), "not in the scopes of grant") {
		t.Errorf("err = %v, want a 403 outside the grant's scopes", err)
	}
}
