package spiffetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// CA is a test certificate authority for one trust domain.
type CA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  crypto.Signer
}

// NewCA creates a CA for td (a trust domain name such as "example.org"):
// ECDSA P-256, self-signed, URI SAN spiffe://<td>, valid from an hour ago for
// a day.
func NewCA(t testing.TB, td string) *CA {
	t.Helper()
	trustDomain, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		t.Fatalf("spiffetest: trust domain %q: %v", td, err)
	}
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"spiffetest"}, CommonName: td},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		URIs:                  []*url.URL{trustDomain.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &CA{td: trustDomain, cert: create(t, tmpl, tmpl, key, key), key: key}
}

// TrustDomain returns the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Bundle returns a bundle holding the CA certificate.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// BundleSet returns a set holding only this CA's bundle.
func (ca *CA) BundleSet() *x509bundle.Set { return x509bundle.NewSet(ca.Bundle()) }

// Option changes the certificate that CA.SVID issues.
type Option func(*x509.Certificate)

// Expired makes the SVID's validity end an hour ago.
func Expired() Option {
	return func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-2 * time.Hour)
		c.NotAfter = time.Now().Add(-time.Hour)
	}
}

// NoURI leaves out the URI SAN, so the certificate is no SVID at all. The
// returned SVID's ID is then zero.
func NoURI() Option { return func(c *x509.Certificate) { c.URIs = nil } }

// TTL makes the SVID valid from now for d.
func TTL(d time.Duration) Option {
	return func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-time.Second)
		c.NotAfter = time.Now().Add(d)
	}
}

// DNSNames adds DNS or IP SANs (IP literals become IP SANs).
func DNSNames(names ...string) Option {
	return func(c *x509.Certificate) {
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				c.IPAddresses = append(c.IPAddresses, ip)
			} else {
				c.DNSNames = append(c.DNSNames, n)
			}
		}
	}
}

// SVID issues an X.509-SVID for id (a full SPIFFE ID string). By default it is
// valid from a minute ago for an hour, with key usage digital signature and
// extended key usage client and server auth. id need not be in the CA's trust
// domain: signing a foreign ID is how tests build a forged SVID.
func (ca *CA) SVID(t testing.TB, id string, opts ...Option) *x509svid.SVID {
	t.Helper()
	sid, err := spiffeid.FromString(id)
	if err != nil {
		t.Fatalf("spiffetest: SPIFFE ID %q: %v", id, err)
	}
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		URIs:                  []*url.URL{sid.URL()},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, o := range opts {
		o(tmpl)
	}
	if len(tmpl.URIs) == 0 {
		sid = spiffeid.ID{}
		tmpl.Subject = pkix.Name{CommonName: "not-a-spiffe-id"}
	}
	leaf := create(t, tmpl, ca.cert, key, ca.key)
	return &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}
}

// WritePEM writes svid to <dir>/<name>.pem and <dir>/<name>-key.pem (PKCS#8,
// 0600) and returns their paths. Files are replaced by rename, so a watcher
// never reads half of one.
func WritePEM(t testing.TB, dir, name string, svid *x509svid.SVID) (certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		t.Fatalf("spiffetest: marshal SVID: %v", err)
	}
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	WriteFile(t, keyPath, keyPEM, 0o600)
	WriteFile(t, certPath, certPEM, 0o644)
	return certPath, keyPath
}

// WriteBundlePEM writes the bundle's certificates as PEM to path.
func WriteBundlePEM(t testing.TB, path string, b *x509bundle.Bundle) {
	t.Helper()
	data, err := b.Marshal()
	if err != nil {
		t.Fatalf("spiffetest: marshal bundle: %v", err)
	}
	WriteFile(t, path, data, 0o644)
}

// WriteFile replaces path with data by writing a temporary file and renaming
// it.
func WriteFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		t.Fatalf("spiffetest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("spiffetest: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("spiffetest: generate key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("spiffetest: serial: %v", err)
	}
	return s
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatalf("spiffetest: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("spiffetest: parse certificate: %v", err)
	}
	return cert
}
