package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGrantDefaults(t *testing.T) {
	doc, dir := valid(t)
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Grants
	if g.Audience != "portcullis" || g.DefaultTTL != 10*time.Minute || g.MaxTTL != 15*time.Minute || g.MaxDelegationDepth != 2 {
		t.Errorf("grant defaults = %+v", g)
	}
	if want := filepath.Join(dir, "audit.grant-keys.pem"); g.SigningKeyFile != want {
		t.Errorf("signing_key_file = %q, want %q", g.SigningKeyFile, want)
	}
	if want := filepath.Join(dir, "audit.state.db"); g.Store != want {
		t.Errorf("store = %q, want %q", g.Store, want)
	}
	if c.UserContext.Audience != "portcullis" {
		t.Errorf("user_context.audience = %q, want the grants audience", c.UserContext.Audience)
	}
}

func TestGrantConfigErrors(t *testing.T) {
	doc, dir := valid(t)
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, add, field string
	}{
		{"ttl above max", "grants: {default_ttl: 20m, max_ttl: 15m}\n", "grants.default_ttl"},
		{"days", "grants: {max_ttl: 48h, default_ttl: 1m}\n", "grants.max_ttl"},
		{"depth", "grants: {max_delegation_depth: 99}\n", "grants.max_delegation_depth"},
		{"workload api without source", "user_context: {workload_api: true}\n", "user_context.workload_api"},
		{"bundle file missing", "user_context: {jwt_bundles: [{trust_domain: example.org, file: /nope}]}\n", "user_context.jwt_bundles[0].file"},
		{"issuer not https", "user_context: {oidc_issuers: [{issuer: 'http://idp', jwks_file: " + jwks + "}]}\n", "user_context.oidc_issuers[0].issuer"},
		{"unknown kind", "rate_limits: {robot: {requests_per_second: 1, burst: 1}}\n", "rate_limits"},
		{"zero rate", "rate_limits: {agent: {requests_per_second: 0, burst: 1}}\n", "rate_limits.agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(doc + tc.add))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tc.field)
			}
		})
	}
	ok := doc + "rate_limits: {agent: {requests_per_second: 2.5, burst: 5}}\nuser_context: {oidc_issuers: [{issuer: 'https://idp', jwks_file: " + jwks + "}]}\n"
	c, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if rl := c.RateLimits["agent"]; rl.RequestsPerSecond != 2.5 || rl.Burst != 5 || !strings.HasPrefix(c.UserContext.OIDCIssuers[0].Issuer, "https://") {
		t.Errorf("parsed %+v %+v", c.RateLimits, c.UserContext)
	}
}
