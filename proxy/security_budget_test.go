package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

// budgetUsage is what the store has charged to the grant and its task.
func budgetUsage(t *testing.T, env *gatewayEnv, grant, task string) (grantUsed, taskUsed int64) {
	t.Helper()
	ctx := context.Background()
	g, err := env.grants.store.Usage(ctx, "grant/"+grantID(t, grant))
	if err != nil {
		t.Fatal(err)
	}
	k, err := env.grants.store.Usage(ctx, "task/acme/"+task)
	if err != nil {
		t.Fatal(err)
	}
	return g, k
}

// A request refused after its tokens were reserved — because its decision
// could not be recorded, or because no provider can take it — gives the
// reservation back: it was never sent, so nothing of the budget is spent.
func TestRefusedRequestReleasesBudget(t *testing.T) {
	t.Run("audit unavailable", func(t *testing.T) {
		env, h := startHookedGateway(t, envOptions{})
		g := env.signGrant(identity.DevAgentID, "t-leak", "support", []string{"gpt-4o-mini"}, 1000)
		h.set(func(ev *audit.Event) bool { return ev.Type == "decision" && ev.Action == "llm.invoke" }, nil)
		for range 3 {
			err := env.chatWith(identity.DevAgentID, g, "gpt-4o-mini")
			wantAPIError(t, err, http.StatusServiceUnavailable, "audit_unavailable", "")
		}
		if gu, tu := budgetUsage(t, env, g, "t-leak"); gu != 0 || tu != 0 {
			t.Errorf("after 3 refused calls: grant charged %d, task %d; want 0", gu, tu)
		}
		if n := env.fake.RequestCount(); n != 0 {
			t.Errorf("%d requests reached the provider", n)
		}
		h.set(nil, nil)
		if err := env.chatWith(identity.DevAgentID, g, "gpt-4o-mini"); err != nil {
			t.Fatalf("with the log back: %v", err)
		}
		if gu, _ := budgetUsage(t, env, g, "t-leak"); gu <= 0 || gu > 100 {
			t.Errorf("after one call: grant charged %d, want its usage", gu)
		}
	})
	t.Run("no provider for the API", func(t *testing.T) {
		// gpt-4o-mini served by an Anthropic-format provider: the
		// Responses API cannot be translated to it, which is found after
		// the reservation.
		env := startGateway(t, envOptions{routes: func(base *url.URL) []proxy.Route {
			ant := &proxy.Provider{Name: "fake-anthropic", Format: proxy.FormatAnthropic, BaseURL: base}
			ant.SetKey(providerKey)
			return []proxy.Route{{Model: "gpt-4o-mini", Provider: ant, UpstreamModel: "claude-sonnet-4-5"}}
		}})
		g := env.signGrant(identity.DevAgentID, "t-leak2", "support", []string{"gpt-4o-mini"}, 1000)
		c := env.openai(identity.DevAgentID, option.WithAPIKey(g))
		_, err := c.Responses.New(context.Background(), responsesParams("gpt-4o-mini", "hi"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
			t.Fatalf("err = %v, want 400", err)
		}
		if gu, tu := budgetUsage(t, env, g, "t-leak2"); gu != 0 || tu != 0 {
			t.Errorf("after a refused call: grant charged %d, task %d; want 0", gu, tu)
		}
	})
}
