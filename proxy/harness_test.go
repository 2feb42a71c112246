package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/sirupsen/logrus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

const providerKey = "sk-provider-secret-0123456789"

// testPolicyTimeout replaces the 50 ms production default: under -race on a
// busy 2-core machine a dozen concurrent uncached decisions can take longer,
// and these tests are about what the gateway does with decisions, not about
// timeouts (policy's own tests check that a timeout denies).
const testPolicyTimeout = 5 * time.Second

// gatewayEnv is a complete gateway on loopback: dev CA, fake provider,
// embedded default policy, a real audit log in a temp dir.
type gatewayEnv struct {
	t        *testing.T
	ca       *identity.DevCA
	fake     *fakeprovider.Server
	auditDir string
	log      *audit.Log
	engine   *policy.Engine
	addr     string
	srv      *proxy.Server
	gw       *proxy.Gateway
	grants   *grantEnv // task grants (grants_harness_test.go)
}

type envOptions struct {
	bundleDir string         // "" = embedded default
	decider   proxy.Decider  // overrides the engine when set
	recorder  proxy.Recorder // overrides the audit log when set
	metrics   *proxy.Metrics
	// routes, when set, replaces the default routes; it gets the fake
	// provider's base URL (which speaks both OpenAI and Anthropic).
	routes func(base *url.URL) []proxy.Route

	grants     grantEnvOptions // grant keys, state dir (grants_harness_test.go)
	rateLimits map[identity.Kind]proxy.RateLimit
	// approvalTTL is how long approvals live (0: the default); approvals
	// share the grant store.
	approvalTTL time.Duration
	// mcpServers are the upstream MCP servers (mcp_test.go).
	mcpServers []proxy.MCPServer
	// limits bound requests in flight and their duration (limits_test.go).
	limits proxy.Limits
}

func startGateway(t *testing.T, opts envOptions) *gatewayEnv {
	t.Helper()
	ctx := context.Background()
	td := spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: providerKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	u, _ := url.Parse(fake.URL())
	prov := &proxy.Provider{Name: "fake", Format: proxy.FormatOpenAI, BaseURL: u}
	prov.SetKey(providerKey)
	routes := []proxy.Route{
		{Model: "gpt-4o-mini", Provider: prov},
		// An alias: clients (and policy) say gpt-4o, the provider gets gpt-4o-mini.
		{Model: "gpt-4o", Provider: prov, UpstreamModel: "gpt-4o-mini"},
		{Model: "o3-mini", Provider: prov},
	}
	if opts.routes != nil {
		routes = opts.routes(u)
	}
	router, err := proxy.NewRouter(routes)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Options{BundleDir: opts.bundleDir, Timeout: testPolicyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	auditDir := filepath.Join(t.TempDir(), "audit")
	alog, err := audit.Open(auditDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	resolver, err := identity.NewResolver(identity.DevTemplates())
	if err != nil {
		t.Fatal(err)
	}
	logger := logrus.New()
	logger.Out = testWriter{t}
	cfg := proxy.Config{
		Resolver: resolver, Policy: engine, Audit: alog, Router: router, Logger: logger,
		DigestKey: []byte(harnessDigestKey),
	}
	if opts.decider != nil {
		cfg.Policy = opts.decider
	}
	if opts.recorder != nil {
		cfg.Audit = opts.recorder
	}
	cfg.Metrics = opts.metrics
	ge := setupGrants(t, opts.grants, resolver)
	cfg.Grants, cfg.RateLimits = ge.options, opts.rateLimits
	cfg.Approvals = &proxy.ApprovalOptions{Store: ge.store, TTL: opts.approvalTTL}
	cfg.MCPServers = opts.mcpServers
	cfg.Limits = opts.limits
	gw, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ca.GatewaySource(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{td})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// HTTP/3 on the same port number, over UDP.
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.NewServer(gw, tlsCfg, proxy.ServerOptions{HTTP3Port: pc.LocalAddr().(*net.UDPAddr).Port}, logger)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = srv.ServeHTTP3(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &gatewayEnv{t: t, ca: ca, fake: fake, auditDir: auditDir, log: alog, engine: engine, addr: ln.Addr().String(), srv: srv, gw: gw, grants: ge}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// svid issues a client SVID from the gateway's dev CA.
func (e *gatewayEnv) svid(id string) *x509svid.SVID {
	e.t.Helper()
	s, err := e.ca.Issue(spiffeid.RequireFromString(id), time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// httpClient returns an HTTP/2 client presenting svid and trusting the dev CA.
func (e *gatewayEnv) httpClient(svid *x509svid.SVID) *http.Client {
	src := identity.NewStaticSource(svid, x509bundle.NewSet(e.ca.Bundle()))
	tlsCfg := identity.ClientTLSConfig(src, e.ca.TrustDomain())
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	// Cleanups run last-in first-out: idle connections close before the
	// server shuts down, so shutdown need not wait out HTTP/2's GOAWAY grace.
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// openai returns the official OpenAI SDK client configured as a workload:
// base URL, client certificate, and no provider key.
func (e *gatewayEnv) openai(id string, opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL("https://" + e.addr + "/v1/"),
		option.WithHTTPClient(e.httpClient(e.svid(id))),
		option.WithAPIKey("not-a-provider-key"),
		option.WithMaxRetries(0),
	}
	return openai.NewClient(append(base, opts...)...)
}

// records reads the audit log back, verifying it first.
func (e *gatewayEnv) records() []map[string]any {
	e.t.Helper()
	if _, err := audit.Verify(e.auditDir); err != nil {
		e.t.Fatalf("audit log does not verify: %v", err)
	}
	var out []map[string]any
	err := audit.ScanRecords(e.auditDir, func(r audit.RawRecord) error {
		var m map[string]any
		if err := json.Unmarshal(r.Line, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// recordsFor returns the audit records of one request id.
func (e *gatewayEnv) recordsFor(reqID string) []map[string]any {
	var out []map[string]any
	for _, r := range e.records() {
		if r["request_id"] == reqID {
			out = append(out, r)
		}
	}
	return out
}

// get walks a decoded JSON object by keys.
func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func clientTLS(svid *x509svid.SVID, bundle *x509bundle.Bundle, td spiffeid.TrustDomain) *tls.Config {
	return identity.ClientTLSConfig(identity.NewStaticSource(svid, x509bundle.NewSet(bundle)), td)
}

// chat returns the SDK's chat completions service for a client of id.
func (e *gatewayEnv) chat(id string, opts ...option.RequestOption) *openai.ChatCompletionService {
	c := e.openai(id, opts...)
	return &c.Chat.Completions
}
