package identity_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// handshake runs one TLS handshake between a server using serverCfg and a
// client using clientCfg over 127.0.0.1, and returns the server side's
// verdict, with the client's peer ID on success.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (spiffeid.ID, error) {
	t.Helper()
	id, _, err := handshakeState(t, serverCfg, clientCfg)
	return id, err
}

// handshakeState is handshake that also says whether the session resumed.
func handshakeState(t *testing.T, serverCfg, clientCfg *tls.Config) (spiffeid.ID, bool, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id      spiffeid.ID
		resumed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		cs := tc.ConnectionState()
		id, err := identity.PeerID(&cs)
		if err == nil && cs.Version != tls.VersionTLS13 {
			err = errors.New("negotiated a version other than TLS 1.3")
		}
		done <- result{id: id, resumed: cs.DidResume, err: err}
	}()

	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(&d, "tcp", ln.Addr().String(), clientCfg)
	if err == nil {
		// In TLS 1.3 the client learns of a refused certificate only on read.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(make([]byte, 1))
		conn.Close()
	}
	r := <-done
	return r.id, r.resumed, r.err
}

func TestServerTLSConfigHandshake(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	foreign := spiffetest.NewCA(t, "evil.example")
	partner := spiffetest.NewCA(t, "partner.example")
	td := ca.TrustDomain()

	serverSVID := ca.SVID(t, "spiffe://example.org/portcullis")
	bundles := x509bundle.NewSet(ca.Bundle(), partner.Bundle(), foreign.Bundle())
	// The server holds evil.example's bundle but does not authorize it.
	serverCfg, err := identity.ServerTLSConfig(identity.NewStaticSource(serverSVID, bundles),
		[]spiffeid.TrustDomain{td, partner.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}

	clientFor := func(svid *spiffetest.CA, id string, opts ...spiffetest.Option) *tls.Config {
		return identity.ClientTLSConfig(identity.NewStaticSource(svid.SVID(t, id, opts...), ca.BundleSet()), td)
	}
	tls12 := clientFor(ca, "spiffe://example.org/tenant/acme/app/a")
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	unknownCA := spiffetest.NewCA(t, "example.org") // same name, different key

	tests := []struct {
		name    string
		client  *tls.Config
		wantID  string
		wantErr string // substring of the server's handshake error
	}{
		{name: "valid SVID", client: clientFor(ca, "spiffe://example.org/tenant/acme/app/a"), wantID: "spiffe://example.org/tenant/acme/app/a"},
		{name: "federated trust domain", client: clientFor(partner, "spiffe://partner.example/x"), wantID: "spiffe://partner.example/x"},
		{name: "foreign trust domain", client: clientFor(foreign, "spiffe://evil.example/x"), wantErr: "not authorized"},
		{name: "foreign ID signed by our CA", client: clientFor(ca, "spiffe://evil.example/x"), wantErr: "certificate signed by unknown authority"},
		{name: "our ID signed by another CA", client: clientFor(unknownCA, "spiffe://example.org/x"), wantErr: "certificate signed by unknown authority"},
		{name: "expired", client: clientFor(ca, "spiffe://example.org/x", spiffetest.Expired()), wantErr: "expired"},
		{name: "no URI SAN", client: clientFor(ca, "spiffe://example.org/x", spiffetest.NoURI()), wantErr: "no URI SAN"},
		{name: "no client certificate", client: tlsconfig.TLSClientConfig(ca.BundleSet(), tlsconfig.AuthorizeAny()), wantErr: "client didn't provide a certificate"},
		{name: "TLS 1.2 client", client: tls12, wantErr: "unsupported versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := handshake(t, serverCfg, tt.client)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("server handshake error = %v, want one containing %q (peer %v)", err, tt.wantErr, id)
				}
				return
			}
			if err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			if got := id.String(); got != tt.wantID {
				t.Errorf("PeerID = %s, want %s", got, tt.wantID)
			}
		})
	}
}

func TestClientTLSConfigChecksServer(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	other := spiffetest.NewCA(t, "other.example")
	both := x509bundle.NewSet(ca.Bundle(), other.Bundle())
	serverCfg, err := identity.ServerTLSConfig(
		identity.NewStaticSource(other.SVID(t, "spiffe://other.example/portcullis"), both),
		[]spiffeid.TrustDomain{ca.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}
	// The client trusts other.example's CA but expects a server of example.org.
	client := identity.ClientTLSConfig(identity.NewStaticSource(ca.SVID(t, "spiffe://example.org/x"), both), ca.TrustDomain())
	if _, err := handshake(t, serverCfg, client); err == nil {
		t.Fatal("handshake succeeded with a server outside the expected trust domain")
	}
}

func TestServerTLSConfigArgs(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	src := identity.NewStaticSource(ca.SVID(t, "spiffe://example.org/p"), ca.BundleSet())
	if _, err := identity.ServerTLSConfig(src, nil); err == nil {
		t.Error("no trust domains: want error")
	}
	if _, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{{}}); err == nil {
		t.Error("zero trust domain: want error")
	}
	if _, err := identity.ServerTLSConfig(nil, []spiffeid.TrustDomain{ca.TrustDomain()}); err == nil {
		t.Error("nil source: want error")
	}
	cfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{ca.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequireAnyClientCert || cfg.NextProtos != nil {
		t.Errorf("MinVersion=%x ClientAuth=%v NextProtos=%v; want TLS 1.3, RequireAnyClientCert, none", cfg.MinVersion, cfg.ClientAuth, cfg.NextProtos)
	}
}

func TestPeerIDErrors(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	noURI := ca.SVID(t, "spiffe://example.org/x", spiffetest.NoURI())
	for name, cs := range map[string]*tls.ConnectionState{
		"nil":              nil,
		"handshake undone": {},
		"no certificates":  {HandshakeComplete: true},
		"no URI SAN":       {HandshakeComplete: true, PeerCertificates: noURI.Certificates},
	} {
		if id, err := identity.PeerID(cs); err == nil {
			t.Errorf("%s: PeerID = %v, want error", name, id)
		}
	}
}

func TestStaticSource(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	src := identity.NewStaticSource(nil, nil)
	if _, err := src.GetX509SVID(); err == nil {
		t.Error("GetX509SVID without an SVID: want error")
	}
	if _, err := src.GetX509BundleForTrustDomain(ca.TrustDomain()); err == nil {
		t.Error("GetX509BundleForTrustDomain without bundles: want error")
	}
	svid := ca.SVID(t, "spiffe://example.org/x")
	src = identity.NewStaticSource(svid, ca.BundleSet())
	if got, err := src.GetX509SVID(); err != nil || got != svid {
		t.Errorf("GetX509SVID = %p, %v; want %p", got, err, svid)
	}
	if b, err := src.GetX509BundleForTrustDomain(ca.TrustDomain()); err != nil || !b.Equal(ca.Bundle()) {
		t.Errorf("GetX509BundleForTrustDomain = %v, %v", b, err)
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}
}

// swapSource is a Source whose bundles a test can replace.
type swapSource struct {
	svid    *x509svid.SVID
	bundles atomic.Pointer[x509bundle.Set]
}

func (s *swapSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }
func (s *swapSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundles.Load().GetX509BundleForTrustDomain(td)
}
func (s *swapSource) Close() error { return nil }

// TestServerTLSConfigResumption checks that a resumed TLS session is held to
// the bundles of the moment, not those of the session's first handshake.
func TestServerTLSConfigResumption(t *testing.T) {
	ca := spiffetest.NewCA(t, "example.org")
	partner := spiffetest.NewCA(t, "partner.example")
	src := &swapSource{svid: ca.SVID(t, "spiffe://example.org/portcullis")}
	src.bundles.Store(x509bundle.NewSet(ca.Bundle(), partner.Bundle()))
	serverCfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{ca.TrustDomain(), partner.TrustDomain()})
	if err != nil {
		t.Fatal(err)
	}
	client := identity.ClientTLSConfig(identity.NewStaticSource(partner.SVID(t, "spiffe://partner.example/x"), ca.BundleSet()), ca.TrustDomain())
	client.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	if _, resumed, err := handshakeState(t, serverCfg, client); err != nil || resumed {
		t.Fatalf("first handshake: resumed=%v err=%v; want a full handshake", resumed, err)
	}
	id, resumed, err := handshakeState(t, serverCfg, client)
	if err != nil || !resumed {
		t.Fatalf("second handshake: resumed=%v err=%v; want a resumed session (else this test proves nothing)", resumed, err)
	}
	if id.String() != "spiffe://partner.example/x" {
		t.Errorf("resumed PeerID = %s", id)
	}

	// Federation with partner.example ends: its bundle is dropped.
	src.bundles.Store(x509bundle.NewSet(ca.Bundle()))
	if _, resumed, err := handshakeState(t, serverCfg, client); err == nil {
		t.Fatalf("handshake after the partner's bundle was dropped succeeded (resumed=%v)", resumed)
	} else if !strings.Contains(err.Error(), "resumed session") && !strings.Contains(err.Error(), "no X.509 bundle") {
		t.Errorf("error = %v", err)
	}
}
