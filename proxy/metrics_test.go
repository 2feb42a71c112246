package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/proxy"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := proxy.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	env := startGateway(t, envOptions{metrics: m})
	if _, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := env.chat(identity.DevAppID).New(context.Background(), chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Fatal(err)
	}
	_, _ = env.chat(identity.DevAgentID).New(context.Background(), chatParams("gpt-4o", "hi"))
	_, _ = env.chat(identity.DevAppID).New(context.Background(), chatParams("no-such-model-"+strings.Repeat("x", 10), "hi"))

	want := `
# HELP portcullis_requests_total Requests answered, by API, model, provider, principal kind, tenant, decision and HTTP status.
# TYPE portcullis_requests_total counter
portcullis_requests_total{api="chat.completions",decision="allow",kind="application",model="gpt-4o-mini",provider="fake",status="200",tenant="acme"} 2
portcullis_requests_total{api="chat.completions",decision="deny",kind="agent",model="gpt-4o",provider="fake",status="403",tenant="acme"} 1
portcullis_requests_total{api="chat.completions",decision="refused",kind="application",model="unknown",provider="",status="404",tenant="acme"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "portcullis_requests_total"); err != nil {
		t.Error(err)
	}
	wantDecisions := `
# HELP portcullis_decisions_total Policy decisions by action, outcome (allow, deny, error) and decision cache result (hit, miss).
# TYPE portcullis_decisions_total counter
portcullis_decisions_total{action="llm.invoke",cache="hit",outcome="allow"} 1
portcullis_decisions_total{action="llm.invoke",cache="miss",outcome="allow"} 1
portcullis_decisions_total{action="llm.invoke",cache="miss",outcome="deny"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantDecisions), "portcullis_decisions_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "portcullis_tokens_total"); n != 2 {
		t.Errorf("token series = %d, want prompt and completion for one tenant/model", n)
	}
	wantStreams := `
# HELP portcullis_active_streams Streaming responses in flight.
# TYPE portcullis_active_streams gauge
portcullis_active_streams 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantStreams), "portcullis_active_streams"); err != nil {
		t.Error(err)
	}
}
