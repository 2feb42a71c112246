package proxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/portcullis-dev/portcullis/identity"
)

// The default policy asks a human to approve a model call that offers a tool
// needing approval (issue_refund), because the model could call it. A count
// cannot call anything, so it needs no approval.
func TestCountTokensNoToolApproval(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes})
	c := env.anthropic(identity.DevAppID)
	refund := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "issue_refund", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"order": map[string]any{"type": "string"}}}}}
	var resp *http.Response
	if _, err := c.Messages.CountTokens(context.Background(), countParams("claude-sonnet-4-5", "refund it", refund), aoption.WithResponseInto(&resp)); err != nil {
		t.Fatalf("count offering issue_refund: %v", err)
	}
	if resp.Header.Get("Portcullis-Approval-Id") != "" {
		t.Error("the count was parked for approval")
	}
	_, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 50, Tools: []anthropic.ToolUnionParam{refund},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("refund it"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(apiErr.RawJSON(), "approval_required") {
		t.Errorf("the Messages call: err = %v, want 403 approval_required (else the check above proves nothing)", err)
	}
}

// A count its model's provider cannot serve (an OpenAI-format model) is
// refused at once, even where every call of the model needs an approval: a
// human is not asked to approve what could never be served. A count of an
// Anthropic-format model in the same list is parked as a call would be.
func TestCountTokensUnservableAsksNoApproval(t *testing.T) {
	env := startGateway(t, envOptions{routes: multiRoutes,
		bundleDir: bundleWithApprovals(t, []string{"gpt-4o-mini", "claude-sonnet-4-5"}, []string{})})
	hc := env.httpClient(env.svid(identity.DevAppID))
	for _, tc := range []struct {
		model  string
		status int
		parked bool
	}{
		{"gpt-4o-mini", http.StatusBadRequest, false},
		{"claude-sonnet-4-5", http.StatusForbidden, true},
	} {
		resp, err := hc.Post("https://"+env.addr+"/v1/messages/count_tokens", "application/json",
			strings.NewReader(`{"model":"`+tc.model+`","messages":[{"role":"user","content":"x"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (resp.Header.Get("Portcullis-Approval-Id") != "") != tc.parked {
			t.Errorf("%s: got %d, approval %q, %s; want %d, parked %v", tc.model, resp.StatusCode,
				resp.Header.Get("Portcullis-Approval-Id"), b, tc.status, tc.parked)
		}
	}
	if n := len(env.fake.Requests()); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
}
