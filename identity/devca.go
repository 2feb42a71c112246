package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Dev CA files inside the directory given to LoadOrCreateDevCA.
const (
	DevCACertFile = "ca.pem"
	DevCAKeyFile  = "ca-key.pem"
)

const (
	devCAValidity = 365 * 24 * time.Hour
	backdate      = time.Minute
)

// DevCA is a small certificate authority for one trust domain that issues real
// X.509-SVIDs. It stands in for SPIRE in dev mode and in tests; it is not for
// production (its key sits in a file, and nothing revokes what it issues).
type DevCA struct {
	td    spiffeid.TrustDomain
	cert  *x509.Certificate
	key   crypto.Signer
	clock func() time.Time
}

// NewDevCA creates a CA in memory: ECDSA P-256, self-signed, URI SAN
// spiffe://<td>, valid for one year from clock() (nil means time.Now).
func NewDevCA(td spiffeid.TrustDomain, clock func() time.Time) (*DevCA, error) {
	if td.IsZero() {
		return nil, errors.New("identity: dev CA: empty trust domain")
	}
	if clock == nil {
		clock = time.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	now := clock()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Portcullis dev CA"}, CommonName: td.Name()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(devCAValidity),
		URIs:                  []*neturl.URL{td.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	return &DevCA{td: td, cert: cert, key: key, clock: clock}, nil
}

// LoadOrCreateDevCA loads the CA from dir (ca.pem and ca-key.pem) or, if
// neither file exists, creates one with NewDevCA and writes it there (the
// directory 0700, the key 0600). It refuses a directory holding only one of
// the files, a CA of another trust domain, a key that does not match, or an
// expired CA (delete the files to start over).
func LoadOrCreateDevCA(dir string, td spiffeid.TrustDomain, clock func() time.Time) (*DevCA, error) {
	if clock == nil {
		clock = time.Now
	}
	certPath, keyPath := filepath.Join(dir, DevCACertFile), filepath.Join(dir, DevCAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return loadDevCA(certPEM, keyPEM, td, clock, dir)
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: dev CA: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: dev CA: %w", keyErr)
	default:
		return nil, fmt.Errorf("identity: dev CA: %s holds only one of %s and %s; remove it to create a new CA",
			dir, DevCACertFile, DevCAKeyFile)
	}

	ca, err := NewDevCA(td, clock)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	// Key first: a crash in between leaves a key without a certificate,
	// which the next start reports instead of silently replacing.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

func loadDevCA(certPEM, keyPEM []byte, td spiffeid.TrustDomain, clock func() time.Time, dir string) (*DevCA, error) {
	fail := func(format string, args ...any) (*DevCA, error) {
		return nil, fmt.Errorf("identity: dev CA in %s: %s", dir, fmt.Sprintf(format, args...))
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return fail("%s holds no PEM certificate", DevCACertFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fail("%s: %v", DevCACertFile, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return fail("%s holds no PEM PKCS#8 private key", DevCAKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return fail("%s: %v", DevCAKeyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return fail("%s does not match %s", DevCAKeyFile, DevCACertFile)
	}
	if !cert.IsCA {
		return fail("%s is not a CA certificate", DevCACertFile)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != td.IDString() {
		return fail("%s is not the CA of trust domain %q", DevCACertFile, td)
	}
	if now := clock(); now.After(cert.NotAfter) {
		return fail("CA expired at %s; remove %s and %s to create a new one",
			cert.NotAfter.Format(time.RFC3339), DevCACertFile, DevCAKeyFile)
	}
	return &DevCA{td: td, cert: cert, key: key, clock: clock}, nil
}

// TrustDomain returns the CA's trust domain.
func (ca *DevCA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Certificate returns the CA certificate.
func (ca *DevCA) Certificate() *x509.Certificate { return ca.cert }

// Bundle returns a new bundle holding the CA certificate.
func (ca *DevCA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// Issue issues an X.509-SVID for id, a member of the CA's trust domain: ECDSA
// P-256, URI SAN id and no other SAN, key usage digital signature, extended
// key usage client and server auth, valid from a minute ago for ttl (but never
// past the CA's own expiry).
func (ca *DevCA) Issue(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) {
	return ca.issue(id, nil, nil, ttl)
}

// IssueServer is Issue for a server that non-SPIFFE clients such as curl also
// reach by host name: names are DNS names or IP literals, and become DNS or IP
// SANs. Nil names means "localhost", 127.0.0.1 and ::1, so that
// curl --cacert bundle.pem works against https://localhost:8443 and
// https://127.0.0.1:8443 alike.
func (ca *DevCA) IssueServer(id spiffeid.ID, names []string, ttl time.Duration) (*x509svid.SVID, error) {
	if names == nil {
		names = []string{"localhost", "127.0.0.1", "::1"}
	}
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else if n != "" {
			dns = append(dns, n)
		}
	}
	return ca.issue(id, dns, ips, ttl)
}

func (ca *DevCA) issue(id spiffeid.ID, dns []string, ips []net.IP, ttl time.Duration) (*x509svid.SVID, error) {
	if !id.MemberOf(ca.td) {
		return nil, fmt.Errorf("identity: dev CA of %q cannot issue for %q", ca.td, id)
	}
	if id.Path() == "" {
		return nil, fmt.Errorf("identity: dev CA: %q names a trust domain, not a workload", id)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("identity: dev CA: ttl %s is not positive", ttl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := ca.clock()
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Portcullis dev"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		URIs:                  []*neturl.URL{id.URL()},
		DNSNames:              dns,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: issuing %q: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: dev CA: %w", err)
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, nil
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("identity: serial number: %w", err)
	}
	return s, nil
}

// writeFileAtomic writes data to a temporary file in path's directory with
// mode perm and renames it over path, so readers never see half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}
