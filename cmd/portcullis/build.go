package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// buildFromConfig builds the gateway described by a YAML file. Every part is
// checked before the caller starts listening.
func buildFromConfig(ctx context.Context, path string) (*gateway, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return nil, fmt.Errorf("config: log.level: %w", err)
	}
	g := &gateway{log: log, cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			g.close()
		}
	}()
	for _, td := range cfg.TrustDomains {
		t, err := spiffeid.TrustDomainFromString(td)
		if err != nil {
			return nil, fmt.Errorf("config: trust_domains: %w", err)
		}
		g.trust = append(g.trust, t)
	}
	switch cfg.SVID.Source {
	case "files":
		fs, err := identity.NewFileSource(ctx, identity.FileSourceConfig{
			CertFile: cfg.SVID.Files.Cert, KeyFile: cfg.SVID.Files.Key, BundleFile: cfg.SVID.Files.Bundle,
			TrustDomain: g.trust[0], Interval: cfg.SVID.Files.Interval, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("svid.files: %w", err)
		}
		g.source = fs
	case "workload_api":
		ws, err := identity.NewWorkloadSource(ctx, cfg.SVID.WorkloadAPI.Socket, cfg.SVID.WorkloadAPI.Timeout, identity.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("svid.workload_api: %w", err)
		}
		g.source = ws
	}
	g.closers = append(g.closers, g.source.Close)

	var templates []identity.Template
	for _, p := range cfg.Principals {
		templates = append(templates, identity.Template{Pattern: p.Match, Kind: identity.Kind(p.Kind), Tenant: p.Tenant})
	}
	provs := map[string]*proxy.Provider{}
	for _, p := range cfg.Providers {
		u, _ := url.Parse(p.BaseURL)
		prov := &proxy.Provider{Name: p.Name, Format: p.Format, BaseURL: u, Timeout: p.Timeout, AnthropicVersion: p.AnthropicVersion}
		key, err := p.APIKey()
		if err != nil {
			return nil, err
		}
		prov.SetKey(key)
		provs[p.Name] = prov
	}
	var routes []proxy.Route
	for _, p := range cfg.Providers {
		for _, m := range p.Models {
			rt := proxy.Route{Model: m.Name, Provider: provs[p.Name], UpstreamModel: m.Upstream}
			for _, f := range m.Fallback {
				name, model, _ := config.SplitFallback(f)
				rt.Fallback = append(rt.Fallback, proxy.Upstream{Provider: provs[name], Model: model})
			}
			routes = append(routes, rt)
		}
	}
	keyFile := cfg.Audit.DigestKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Audit.Dir, "..", filepath.Base(cfg.Audit.Dir)+".digest-key")
	}
	if err := g.assemble(ctx, templates, routes, keyFile); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// assemble builds the parts common to dev and config mode: resolver, policy
// engine, audit log and the gateway handler.
func (g *gateway) assemble(ctx context.Context, templates []identity.Template, routes []proxy.Route, digestKeyFile string) error {
	cfg := g.cfg
	resolver, err := identity.NewResolver(templates)
	if err != nil {
		return fmt.Errorf("principals: %w", err)
	}
	router, err := proxy.NewRouter(routes)
	if err != nil {
		return fmt.Errorf("providers: %w", err)
	}
	engine, err := policy.New(ctx, policy.Options{
		BundleDir: cfg.Policy.Bundle, Timeout: cfg.Policy.Timeout, CacheSize: cfg.Policy.CacheSize, Logger: g.log,
	})
	if err != nil {
		return fmt.Errorf("policy.bundle: %w", err)
	}
	g.engine = engine
	digestKey, err := loadOrCreateKey(digestKeyFile)
	if err != nil {
		return fmt.Errorf("audit.digest_key_file: %w", err)
	}
	if g.signer, g.verifierKey, err = checkpointSigner(cfg.Audit); err != nil {
		return err
	}
	verifier, err := note.NewVerifier(g.verifierKey)
	if err != nil {
		return fmt.Errorf("audit.signing_key_file: %w", err)
	}
	alog, err := audit.Open(cfg.Audit.Dir, audit.Options{Logger: g.log, Verifier: verifier,
		SegmentMaxBytes: cfg.Audit.SegmentMaxBytes, SegmentMaxAge: cfg.Audit.SegmentMaxAge})
	if err != nil {
		return auditOpenError(cfg.Audit.Dir, err)
	}
	g.audit = alog
	g.closers = append(g.closers, alog.Close)
	g.registry = prometheus.NewRegistry()
	g.svidRotations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portcullis_svid_rotations_total",
		Help: "Rotations of the gateway's own X.509-SVID seen since start.",
	})
	if err := g.registerGatewayCollectors(g.registry); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	metrics, err := proxy.NewMetrics(g.registry)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	grants, err := g.grantOptions(ctx, resolver)
	if err != nil {
		return err
	}
	mcps, err := mcpServers(cfg.MCPServers)
	if err != nil {
		return err
	}
	rates, err := g.rateState(ctx, grants)
	if err != nil {
		return err
	}
	g.handler, err = proxy.New(proxy.Config{
		Metrics:      metrics,
		Resolver:     resolver,
		Policy:       engine,
		Audit:        alog,
		Checkpoints:  alog,
		Router:       router,
		Logger:       g.log,
		DigestKey:    digestKey,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		Grants:       grants,
		RateLimits:   rateLimits(cfg.RateLimits),
		RateState:    rates,
		Approvals:    g.approvalOptions(grants),
		MCPServers:   mcps,
		Limits: proxy.Limits{
			MaxInFlightPerPrincipal: cfg.Limits.MaxInFlightPerPrincipal,
			RequestTimeout:          cfg.Limits.RequestTimeout,
			BodyReadTimeout:         cfg.Limits.BodyReadTimeout,
		},
	})
	return err
}

// mcpServers reads each MCP server's credential headers (from env or file).
func mcpServers(list []config.MCPServer) ([]proxy.MCPServer, error) {
	var out []proxy.MCPServer
	for _, s := range list {
		h, err := s.Header()
		if err != nil {
			return nil, fmt.Errorf("mcp_servers: %w", err)
		}
		out = append(out, proxy.MCPServer{Name: s.Name, URL: s.URL, Header: h, Timeout: s.Timeout})
	}
	return out, nil
}

// loadOrCreateKey reads a 32-byte hex key from path, creating it (0600) if
// the file does not exist.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(k) < 16 {
			return nil, fmt.Errorf("%s: want at least 16 hex-encoded bytes", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// auditOpenError says what an operator does about a log that audit.Open
// refused: the gateway never starts on a damaged log or with a replaced key.
func auditOpenError(dir string, err error) error {
	switch {
	case errors.Is(err, audit.ErrKeyMismatch):
		return fmt.Errorf("audit.dir: %w (refusing to start; see docs/operations.md, \"Startup refusals\")", err)
	case errors.Is(err, audit.ErrCorrupt):
		return fmt.Errorf("audit.dir: %w (refusing to start and writing nothing: investigate with `portcullis audit verify %s`; see docs/operations.md, \"Startup refusals\")", err, dir)
	}
	return fmt.Errorf("audit.dir: %w", err)
}
