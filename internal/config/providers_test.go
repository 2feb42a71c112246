package config

import (
	"strings"
	"testing"
)

func TestFallbackValidation(t *testing.T) {
	base := func(fallback string) string {
		return `trust_domains: [example.org]
svid: {source: workload_api, workload_api: {socket: "unix:///tmp/x.sock"}}
principals: [{match: "spiffe://example.org/app/{name}", kind: application, tenant: t}]
audit: {dir: /tmp/audit}
providers:
  - name: openai
    base_url: https://api.openai.com/v1
    models: [{name: gpt-4o-mini, fallback: ` + fallback + `}]
  - name: anthropic
    format: anthropic
    base_url: https://api.anthropic.com/v1
    anthropic_version: "2023-06-01"
    models: [{name: claude-sonnet-4-5}]
`
	}
	for _, tc := range []struct{ fallback, wantErr string }{
		{`[anthropic/claude-haiku-4-5]`, ""},
		{`[anthropic/claude-haiku-4-5, openai/gpt-4.1-mini]`, ""},
		{`[claude-haiku]`, "providers[0].models[0].fallback[0]: \"claude-haiku\" must be provider/model"},
		{`[azure/gpt-4o-mini]`, `provider "azure" is not configured`},
		{`[openai/gpt-4o-mini]`, "already tried"},
	} {
		c, err := Parse([]byte(base(tc.fallback)))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
			t.Errorf("fallback %s: err = %q, want %q", tc.fallback, got, tc.wantErr)
			continue
		}
		if err == nil && (c.Providers[1].Format != "anthropic" || c.Providers[1].AnthropicVersion != "2023-06-01") {
			t.Errorf("anthropic provider = %+v", c.Providers[1])
		}
	}
}
