package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

// TestServeFromConfigFile runs the gateway from a YAML file with a file SVID
// source and a provider key from the environment.
func TestServeFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	ca := writeGatewayFiles(t, dir)
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: "sk-from-env"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	t.Setenv("PORTCULLIS_TEST_PROVIDER_KEY", "sk-from-env")

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	opsAddr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`
listen: %s
trust_domains: [example.org]
svid:
  source: files
  files: {cert: %[2]s/gateway.pem, key: %[2]s/gateway-key.pem, bundle: %[2]s/bundle.pem, interval: 1s}
principals:
  - {match: "spiffe://example.org/teams/{tenant}/svc/{name}", kind: application}
providers:
  - name: primary
    base_url: %s
    api_key_env: PORTCULLIS_TEST_PROVIDER_KEY
    models: [{name: gpt-4o-mini}]
audit: {dir: %[2]s/audit}
log: {format: text, level: warn}
ops: {listen: %[4]s}
`, addr, dir, fake.URL(), opsAddr)
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, serveFlags{configFile: path}, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	client, err := ca.Issue(spiffeid.RequireFromString("spiffe://example.org/teams/acme/svc/billing"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := identity.ClientTLSConfig(identity.NewStaticSource(client, x509bundle.NewSet(ca.Bundle())), ca.TrustDomain())
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var resp *http.Response
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err = c.Post("https://"+addr+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello from fake gpt-4o-mini") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if got := fake.Requests()[0].Header.Get("Authorization"); got != "Bearer sk-from-env" {
		t.Errorf("provider key from env not injected: %q", got)
	}

	// The ops listener: plain HTTP, loopback.
	for path, want := range map[string][]string{
		"/healthz": {`"alive"`},
		"/readyz":  {`"ready":true`, `"svid":{"ok":true`, `"policy":{"ok":true`, `"audit":{"ok":true`},
		"/metrics": {`portcullis_requests_total{api="chat.completions",decision="allow",kind="application",model="gpt-4o-mini",provider="primary",status="200",tenant="acme"} 1`,
			"portcullis_audit_records_total", "portcullis_svid_expiry_timestamp_seconds", "portcullis_decision_duration_seconds"},
	} {
		resp, err := http.Get("http://" + opsAddr + path)
		if err != nil {
			t.Fatalf("ops %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("ops %s: status %d: %s", path, resp.StatusCode, b)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("ops %s lacks %s", path, w)
			}
		}
	}
}

// writeGatewayFiles writes, into dir, the gateway's SVID (gateway.pem,
// gateway-key.pem) for spiffe://example.org/portcullis and the trust
// bundle (bundle.pem) of a fresh dev CA, which it returns.
func writeGatewayFiles(t *testing.T, dir string) *identity.DevCA {
	t.Helper()
	ca, err := identity.NewDevCA(spiffeid.RequireTrustDomainFromString("example.org"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ca.IssueServer(spiffeid.RequireFromString("spiffe://example.org/portcullis"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteSVID(dir, "gateway", gw); err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteBundle(filepath.Join(dir, "bundle.pem"), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	return ca
}
