package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/etcdtest"
	"github.com/portcullis-dev/portcullis/internal/fakeprovider"
)

// replicaProc is one `portcullis serve --config` running in this process.
type replicaProc struct {
	addr, ops, auditDir, vkey string
	stop                      func() // stops serving (and signs a final checkpoint)
}

// replicaYAML is what a test changes in the replicas' configuration: the
// grants section (default: the fleet's grant key) and more top-level
// settings.
type replicaYAML struct{ grants, extra string }

// startReplica writes a configuration for replica name (its own listener,
// ops listener, audit log and checkpoint key; the fleet's CA, grant key and
// etcd) and serves it until the test ends.
func startReplica(t *testing.T, name, dir, etcdURL, providerURL string, y replicaYAML) *replicaProc {
	t.Helper()
	if y.grants == "" {
		y.grants = "{signing_key_file: " + dir + "/grant-keys.pem}"
	}
	free := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}
	r := &replicaProc{addr: free(), ops: free(), auditDir: filepath.Join(dir, name, "audit")}
	keyFile := filepath.Join(dir, name, "audit.key")
	var err error
	if r.vkey, err = audit.GenerateKeyFile(keyFile, name+".example/audit"); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
listen: %s
disable_http3: true
trust_domains: [example.org]
svid:
  source: files
  files: {cert: %[2]s/gateway.pem, key: %[2]s/gateway-key.pem, bundle: %[2]s/bundle.pem}
principals:
  - {match: "spiffe://example.org/tenant/{tenant}/app/{name}", kind: application}
providers:
  - {name: fake, base_url: %[3]s, api_key_env: PORTCULLIS_TEST_PROVIDER_KEY, models: [{name: gpt-4o-mini}]}
audit: {dir: %[4]s, signing_key_file: %[5]s, origin: %[6]s.example/audit}
grants: %[9]s
log: {format: text, level: warn}
ops: {listen: %[7]s}
store:
  backend: etcd
  etcd: {endpoints: [%[8]s], prefix: /fleet/, stale_after: 1s, request_timeout: 500ms}
%[10]s
`, r.addr, dir, providerURL, r.auditDir, keyFile, name, r.ops, etcdURL, y.grants, y.extra)
	path := filepath.Join(dir, name, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, serveFlags{configFile: path}, io.Discard) }()
	r.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", name, err)
		}
	})
	t.Cleanup(r.stop)
	for deadline := time.Now().Add(15 * time.Second); ; {
		if code, _ := r.readyz(t); code == http.StatusOK {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyz returns /readyz's status and its store check.
func (r *replicaProc) readyz(t *testing.T) (int, checkResult) {
	resp, err := http.Get("http://" + r.ops + "/readyz")
	if err != nil {
		return 0, checkResult{}
	}
	defer resp.Body.Close()
	var out struct {
		Checks map[string]checkResult `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Checks["store"]
}

// TestReplicasFromConfig runs two gateways from YAML with store.backend
// etcd, as docs/deployment.md does: a grant minted on A works on B, a
// revocation on A is enforced by B, /readyz follows etcd, and the two audit
// logs verify together, each under its own origin.
func TestReplicasFromConfig(t *testing.T) {
	f := newFleet(t)
	a := f.start(t, "replica-a", replicaYAML{})
	b := f.start(t, "replica-b", replicaYAML{})
	if _, check := b.readyz(t); !check.OK || !strings.Contains(check.Detail, "etcd") {
		t.Errorf("store readiness = %+v, want ok on etcd", check)
	}
	do, etcd := f.do, f.etcd
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	status, m := do(a, "POST", "/v1/grants", "", `{"task":"t-1","purpose":"support","scopes":{"models":["gpt-4o-mini"],"max_tokens":5000}}`)
	if status != http.StatusCreated {
		t.Fatalf("mint on A: %d %v", status, m)
	}
	grant, id := m["grant"].(string), m["id"].(string)
	if status, m := do(b, "POST", "/v1/chat/completions", grant, chat); status != http.StatusOK {
		t.Fatalf("grant from A used on B: %d %v", status, m)
	}
	if status, m := do(a, "DELETE", "/v1/grants/"+id, "", ""); status != http.StatusOK {
		t.Fatalf("revoke on A: %d %v", status, m)
	}
	revoked := time.Now()
	for {
		status, m := do(b, "POST", "/v1/chat/completions", grant, chat)
		if status == http.StatusUnauthorized && get(m, "error", "code") == "grant_revoked" {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("B still answers %d %v %s after the revocation on A", status, m, time.Since(revoked))
		}
	}

	etcd.Cut()
	cut := time.Now()
	for {
		code, check := b.readyz(t)
		if code == http.StatusServiceUnavailable && !check.OK && strings.Contains(check.Detail, "fail closed") {
			break
		}
		if time.Since(cut) > 3*time.Second {
			t.Fatalf("/readyz still %d %+v %s after etcd was cut", code, check, time.Since(cut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	etcd.Restore(t)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code, _ := a.readyz(t); code == http.StatusOK {
			if code, _ := b.readyz(t); code == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("replicas not ready again after etcd came back")
		}
		time.Sleep(50 * time.Millisecond)
	}

	a.stop()
	b.stop()
	out, err := runCLI(t, "", "audit", "verify", a.auditDir, b.auditDir, "--key", a.vkey, "--key", b.vkey)
	if err != nil || !strings.Contains(out, "all 2 audit logs are intact") ||
		!strings.Contains(out, "origin replica-a.example/audit") || !strings.Contains(out, "origin replica-b.example/audit") {
		t.Errorf("audit verify of both replicas: %v\n%s", err, out)
	}
}

// TestReplicasRateLimitsWithoutGrants: with grants disabled and
// store.backend etcd, the store is opened for the rate limits alone, and two
// replicas hold one application to one allowance (burst 3 across both, not
// 3 each).
func TestReplicasRateLimitsWithoutGrants(t *testing.T) {
	f := newFleet(t)
	y := replicaYAML{grants: "{disable: true}", extra: "rate_limits: {application: {requests_per_second: 0.001, burst: 3}}"}
	a := f.start(t, "replica-a", y)
	b := f.start(t, "replica-b", y)
	if _, check := b.readyz(t); !check.OK || !strings.Contains(check.Detail, "etcd") {
		t.Errorf("store readiness = %+v, want ok on etcd", check)
	}
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	var got []int
	for i := range 8 {
		r := a
		if i%2 == 1 {
			r = b
		}
		status, m := f.do(r, "POST", "/v1/chat/completions", "", chat)
		if status == http.StatusTooManyRequests && get(m, "error", "code") != "rate_limited" {
			t.Errorf("429 with %v, want code rate_limited", m)
		}
		got = append(got, status)
	}
	want := []int{200, 200, 200, 429, 429, 429, 429, 429}
	if !slices.Equal(got, want) {
		t.Errorf("statuses through A and B in turn: got %v, want %v (one allowance shared)", got, want)
	}
}

// fleet is what the replicas of a test share: a CA and the gateway's SVID
// in dir, a fake provider, an embedded etcd, and an mTLS client of the
// application spiffe://example.org/tenant/acme/app/billing.
type fleet struct {
	dir, providerURL string
	etcd             *etcdtest.Server
	// do sends a request to a replica and decodes the JSON answer.
	do func(r *replicaProc, method, path, bearer, body string) (int, map[string]any)
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	dir := t.TempDir()
	ca := writeGatewayFiles(t, dir)
	fake, err := fakeprovider.Listen("127.0.0.1:0", fakeprovider.Options{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	t.Setenv("PORTCULLIS_TEST_PROVIDER_KEY", "sk-test")
	app, err := ca.Issue(spiffeid.RequireFromString("spiffe://example.org/tenant/acme/app/billing"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: identity.ClientTLSConfig(identity.NewStaticSource(app, x509bundle.NewSet(ca.Bundle())), ca.TrustDomain()), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func(r *replicaProc, method, path, bearer, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+r.addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&m)
		return resp.StatusCode, m
	}
	return &fleet{dir: dir, providerURL: fake.URL(), etcd: etcdtest.Start(t), do: do}
}

// start starts replica name of the fleet.
func (f *fleet) start(t *testing.T, name string, y replicaYAML) *replicaProc {
	t.Helper()
	return startReplica(t, name, f.dir, f.etcd.Endpoints()[0], f.providerURL, y)
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
