package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/fakemcp"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/proxy"
)

// devModels are the model names the fake provider serves in dev mode in
// the OpenAI format; devAnthropicModels, in the Anthropic format (the same
// fake speaks both), so that the Messages API and its token counting work
// without translation.
var (
	devModels          = []string{"gpt-4o-mini", "gpt-4o", "o3-mini"}
	devAnthropicModels = []string{"claude-sonnet-4-5"}
)

const devSVIDTTL = 24 * time.Hour

// buildDev builds a self-contained gateway: dev CA, fake provider on a
// loopback port, the embedded default policy, an audit log under the data dir.
func buildDev(ctx context.Context, f serveFlags) (*gateway, error) {
	log, err := newLogger("text", "info")
	if err != nil {
		return nil, err
	}
	listen := f.listen
	if listen == "" {
		listen = config.DefaultListen
	}
	cfg := &config.Config{
		Listen:       listen,
		TrustDomains: []string{identity.DevTrustDomain},
		Audit:        config.Audit{Dir: filepath.Join(f.dataDir, "audit")},
		Limits:       config.Limits{MaxBodyBytes: config.DefaultMaxBodyBytes, ShutdownTimeout: 10 * time.Second},
		Ops:          config.Ops{Disable: true}, // --ops-listen turns it on
	}
	g := &gateway{log: log, cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			g.close()
		}
	}()
	td := spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)
	g.trust = []spiffeid.TrustDomain{td}
	devDir := filepath.Join(f.dataDir, "dev")
	ca, err := identity.LoadOrCreateDevCA(devDir, td, time.Now)
	if err != nil {
		return nil, fmt.Errorf("dev CA: %w", err)
	}
	if err := ca.WriteDevFiles(devDir, devSVIDTTL); err != nil {
		return nil, fmt.Errorf("dev SVIDs: %w", err)
	}
	if err := g.devGrants(f.dataDir, devDir, td); err != nil {
		return nil, err
	}
	g.source, err = ca.GatewaySource(devSVIDTTL)
	if err != nil {
		return nil, fmt.Errorf("dev gateway SVID: %w", err)
	}
	g.closers = append(g.closers, g.source.Close)

	// The fake provider demands a key, so the dev gateway shows credential
	// injection working: clients never hold this key.
	keyb := make([]byte, 16)
	_, _ = rand.Read(keyb)
	key := "sk-fake-" + hex.EncodeToString(keyb)
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: key, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("dev fake provider: %w", err)
	}
	g.closers = append(g.closers, fake.Close)
	u, err := url.Parse(fake.URL())
	if err != nil {
		return nil, err
	}
	prov := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: u}
	prov.SetKey(key)
	ant := &proxy.Provider{Name: "fake-anthropic", Format: proxy.FormatAnthropic, BaseURL: u}
	ant.SetKey(key)
	var routes []proxy.Route
	for _, m := range devModels {
		routes = append(routes, proxy.Route{Model: m, Provider: prov})
	}
	for _, m := range devAnthropicModels {
		routes = append(routes, proxy.Route{Model: m, Provider: ant})
	}
	// The in-tree MCP server, served at /mcp/tools; its bearer token is
	// read from a file like any configured MCP credential.
	if err := g.devMCP(devDir); err != nil {
		return nil, err
	}
	if err := g.assemble(ctx, identity.DevTemplates(), routes, filepath.Join(f.dataDir, "digest.key")); err != nil {
		return nil, err
	}
	g.devNotes = func(addr string) string { return devBanner(devDir, cfg.Audit.Dir, addr, fake.URL()) }
	ok = true
	return g, nil
}

func devBanner(devDir, auditDir, addr, fakeURL string) string {
	_, port, _ := net.SplitHostPort(addr)
	pem := func(n string) string { return filepath.Join(devDir, n) }
	return fmt.Sprintf(`
Portcullis dev gateway on https://localhost:%[1]s (mTLS; trust domain %[2]s)
  fake provider:  %[3]s (its key is held by the gateway only)
  demo SVIDs:     %[4]s/{app,agent,human}.pem, bundle.pem
  audit log:      %[5]s

Make a chat completion as the demo app:

  curl --cert %[6]s --key %[7]s --cacert %[8]s \
    https://localhost:%[1]s/v1/chat/completions \
    -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, Portcullis"}]}'

The Anthropic Messages API (and /v1/messages/count_tokens) with claude-sonnet-4-5:

  curl --cert %[6]s --key %[7]s --cacert %[8]s \
    https://localhost:%[1]s/v1/messages \
    -H 'Content-Type: application/json' -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello, Portcullis"}]}'

Run a human -> app -> agent task with grants (docs/grants.md):

  go run ./examples/delegation -addr localhost:%[1]s -dev-dir %[4]s

Run a model -> MCP tool -> model chain (the fake MCP server is at /mcp/tools):

  go run ./examples/toolchain -addr localhost:%[1]s -dev-dir %[4]s

Then verify the audit log, with the signatures of its checkpoints (the verifier key is
what an auditor is given; the signing key stays with the gateway):

  go run ./cmd/portcullis audit verify %[5]s \
    --key "$(go run ./cmd/portcullis audit key --key-file %[5]s.signing-key)"

and ask for the inclusion proof of a response's record (its X-Portcullis-Audit-Seq), once
a checkpoint covers it (one is signed every minute and at shutdown):

  go run ./cmd/portcullis audit prove %[5]s --seq N

`, port, identity.DevTrustDomain, fakeURL, devDir, auditDir, pem("app.pem"), pem("app-key.pem"), pem("bundle.pem"))
}

// devMCP starts the fake MCP server on loopback and configures it as the
// MCP server "tools", with a random bearer token in devDir/mcp-token.
func (g *gateway) devMCP(devDir string) error {
	tb := make([]byte, 16)
	_, _ = rand.Read(tb)
	token := "mcp-fake-" + hex.EncodeToString(tb)
	tokenFile := filepath.Join(devDir, "mcp-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("dev MCP token: %w", err)
	}
	srv, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: token, Stateful: true})
	if err != nil {
		return fmt.Errorf("dev fake MCP server: %w", err)
	}
	g.closers = append(g.closers, srv.Close)
	g.cfg.MCPServers = []config.MCPServer{{Name: "tools", URL: srv.URL(),
		Headers: []config.MCPHeader{{Name: "Authorization", ValueFile: tokenFile, Prefix: "Bearer "}}}}
	return nil
}
