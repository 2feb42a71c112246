package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/policy"
)

// BenchmarkObserveRequest is what the metrics cost an allowed chat request
// once its series exist: the request outcome and the decision.
func BenchmarkObserveRequest(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	o := requestOutcome{api: "chat.completions", model: "gpt-4o-mini", provider: "fake", kind: "application", tenant: "acme",
		decision: "allow", status: 200, elapsed: 3 * time.Millisecond, usage: &Usage{PromptTokens: 256, CompletionTokens: 11, TotalTokens: 267}}
	d := instrumentedDecider{next: allowAll{}, m: m}
	in := &policy.Input{Action: "llm.invoke"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.observeRequest(o)
		if _, err := d.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

type allowAll struct{}

func (allowAll) Decide(context.Context, *policy.Input) (policy.Decision, error) {
	return policy.Decision{Allow: true, CacheHit: true}, nil
}
