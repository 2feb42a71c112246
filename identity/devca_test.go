package identity_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var devTD = spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)

func TestLoadOrCreateDevCAPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca1, err := identity.LoadOrCreateDevCA(dir, devTD, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := identity.LoadOrCreateDevCA(dir, devTD, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ca1.Certificate().Equal(ca2.Certificate()) {
		t.Fatal("second load created a new CA")
	}
	// An SVID issued by the reloaded CA verifies against the first one's bundle:
	// same key.
	svid, err := ca2.Issue(spiffeid.RequireFromString(identity.DevAppID), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, ca1.Bundle()); err != nil {
		t.Fatalf("SVID from reloaded CA does not verify against the original bundle: %v", err)
	}

	for name, want := range map[string]os.FileMode{"": 0o700, identity.DevCAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %q = %o, want %o", name, got, want)
		}
	}
	c := ca1.Certificate()
	if !c.IsCA || len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://"+identity.DevTrustDomain {
		t.Errorf("CA: IsCA=%v URIs=%v", c.IsCA, c.URIs)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("CA validity %v, want about a year", d)
	}
}

func TestLoadOrCreateDevCARefuses(t *testing.T) {
	newDir := func(t *testing.T) string {
		dir := t.TempDir()
		if _, err := identity.LoadOrCreateDevCA(dir, devTD, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	other := spiffeid.RequireTrustDomainFromString("other.example")
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		td      spiffeid.TrustDomain
		clock   func() time.Time
		wantErr string
	}{
		{"other trust domain", newDir, other, nil, `not the CA of trust domain "other.example"`},
		{"key missing", func(t *testing.T) string {
			dir := newDir(t)
			os.Remove(filepath.Join(dir, identity.DevCAKeyFile))
			return dir
		}, devTD, nil, "holds only one of"},
		{"cert missing", func(t *testing.T) string {
			dir := newDir(t)
			os.Remove(filepath.Join(dir, identity.DevCACertFile))
			return dir
		}, devTD, nil, "holds only one of"},
		{"key of another CA", func(t *testing.T) string {
			dir, otherDir := newDir(t), newDir(t)
			key, err := os.ReadFile(filepath.Join(otherDir, identity.DevCAKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			spiffetest.WriteFile(t, filepath.Join(dir, identity.DevCAKeyFile), key, 0o600)
			return dir
		}, devTD, nil, "does not match"},
		{"corrupt cert", func(t *testing.T) string {
			dir := newDir(t)
			spiffetest.WriteFile(t, filepath.Join(dir, identity.DevCACertFile), []byte("x"), 0o644)
			return dir
		}, devTD, nil, "no PEM certificate"},
		{"expired", newDir, devTD, func() time.Time { return time.Now().Add(400 * 24 * time.Hour) }, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			_, err := identity.LoadOrCreateDevCA(dir, tt.td, tt.clock)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadOrCreateDevCA = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDevCAIssue(t *testing.T) {
	now := time.Now()
	ca, err := identity.NewDevCA(devTD, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString(identity.DevAgentID)
	svid, err := ca.Issue(id, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	gotID, _, err := x509svid.Verify(svid.Certificates, ca.Bundle())
	if err != nil {
		t.Fatalf("issued SVID does not verify: %v", err)
	}
	if gotID != id || svid.ID != id {
		t.Errorf("ID = %v (svid.ID %v), want %v", gotID, svid.ID, id)
	}
	leaf := svid.Certificates[0]
	if len(leaf.URIs) != 1 || len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 {
		t.Errorf("SANs: URIs %v DNS %v IP %v; want exactly the SPIFFE ID", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("IsCA=%v KeyUsage=%v", leaf.IsCA, leaf.KeyUsage)
	}
	if want := now.Add(-time.Minute).Truncate(time.Second); !leaf.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, want)
	}
	if want := now.Add(10 * time.Minute).Truncate(time.Second); !leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	// The independent verifier in crypto/x509 agrees, for client and server use.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("crypto/x509 verify for %v: %v", usage, err)
		}
	}
	// And a CA from the other implementation does not.
	other := spiffetest.NewCA(t, identity.DevTrustDomain)
	if _, _, err := x509svid.Verify(svid.Certificates, other.Bundle()); err == nil {
		t.Error("SVID verified against an unrelated CA of the same trust domain")
	}

	for _, bad := range []struct {
		id  string
		ttl time.Duration
	}{
		{"spiffe://other.example/x", time.Hour},
		{"spiffe://" + identity.DevTrustDomain, time.Hour},
		{identity.DevAppID, 0},
	} {
		if _, err := ca.Issue(spiffeid.RequireFromString(bad.id), bad.ttl); err == nil {
			t.Errorf("Issue(%s, %v): want error", bad.id, bad.ttl)
		}
	}
	// Never past the CA's expiry.
	long, err := ca.Issue(id, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if long.Certificates[0].NotAfter.After(ca.Certificate().NotAfter) {
		t.Error("SVID outlives its CA")
	}
}

// TestDevCAServerForCurl checks that the gateway's dev certificate works for
// a plain HTTPS client that checks host names (as curl --cacert does), by
// name and by IP.
func TestDevCAServerForCurl(t *testing.T) {
	ca, err := identity.NewDevCA(devTD, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ca.GatewaySource(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if got := svid.ID.String(); got != identity.DevGatewayID {
		t.Errorf("gateway ID = %s, want %s", got, identity.DevGatewayID)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := svid.Certificates[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := svid.Certificates[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"}); err == nil {
		t.Error("verified for example.com")
	}

	// Over a real connection with a host-name-checking client holding a dev client SVID.
	cfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{devTD})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := identity.PeerID(r.TLS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Write([]byte(id.String()))
	})}
	go srv.Serve(ln)
	defer srv.Close()

	dir := t.TempDir()
	if err := ca.WriteDevFiles(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "app.pem"), filepath.Join(dir, "app-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, identity.DevBundleFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("bundle.pem holds no certificates")
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{cert},
	}}}
	defer client.CloseIdleConnections()
	for _, host := range []string{"localhost", "127.0.0.1"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Errorf("GET via %s: %v", host, err)
			continue
		}
		body := make([]byte, 256)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if got := string(body[:n]); got != identity.DevAppID {
			t.Errorf("via %s: server saw %q, want %q", host, got, identity.DevAppID)
		}
	}

	// The real thing, when it is installed: curl with OpenSSL.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("curl not installed; skipping the curl check")
		return
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := "https://" + net.JoinHostPort(host, port) + "/"
		out, err := exec.CommandContext(t.Context(), curl, "--silent", "--show-error", "--noproxy", "*", "--max-time", "10",
			"--cacert", filepath.Join(dir, identity.DevBundleFile),
			"--cert", filepath.Join(dir, "agent.pem"), "--key", filepath.Join(dir, "agent-key.pem"), url).CombinedOutput()
		if err != nil || string(out) != identity.DevAgentID {
			t.Errorf("curl %s = %q, %v; want %q", url, out, err, identity.DevAgentID)
		}
	}
	// And without a client certificate curl is refused.
	out, err := exec.CommandContext(t.Context(), curl, "--silent", "--show-error", "--noproxy", "*", "--max-time", "10",
		"--cacert", filepath.Join(dir, identity.DevBundleFile), "https://"+net.JoinHostPort("localhost", port)+"/").CombinedOutput()
	if err == nil {
		t.Errorf("curl without a client certificate succeeded: %q", out)
	}
}

func TestWriteDevFiles(t *testing.T) {
	ca, err := identity.NewDevCA(devTD, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	if err := ca.WriteDevFiles(dir, time.Hour); err != nil {
		t.Fatal(err)
	}
	bundle, err := x509bundle.Load(devTD, filepath.Join(dir, identity.DevBundleFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := identity.NewResolver(identity.DevTemplates())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		file, id string
		kind     identity.Kind
	}{
		{"app", identity.DevAppID, identity.KindApplication},
		{"agent", identity.DevAgentID, identity.KindAgent},
		{"human", identity.DevHumanID, identity.KindHuman},
	} {
		keyPath := filepath.Join(dir, w.file+"-key.pem")
		svid, err := x509svid.Load(filepath.Join(dir, w.file+".pem"), keyPath)
		if err != nil {
			t.Fatalf("%s: %v", w.file, err)
		}
		id, _, err := x509svid.Verify(svid.Certificates, bundle)
		if err != nil {
			t.Fatalf("%s: %v", w.file, err)
		}
		if id.String() != w.id {
			t.Errorf("%s.pem ID = %s, want %s", w.file, id, w.id)
		}
		p, err := r.Resolve(id)
		if err != nil || p.Kind != w.kind || p.Tenant != "acme" {
			t.Errorf("%s resolves to %+v, %v; want %s of tenant acme", w.file, p, err, w.kind)
		}
		if fi, err := os.Stat(keyPath); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 600", keyPath, fi.Mode().Perm())
		}
	}
	if err := identity.WriteSVID(dir, "x", nil); err == nil {
		t.Error("WriteSVID(nil): want error")
	}
	if err := identity.WriteBundle(filepath.Join(dir, "b.pem"), x509bundle.New(devTD)); err == nil {
		t.Error("WriteBundle(empty): want error")
	}
}
