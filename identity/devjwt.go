package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DevJWTKeyFile is where [LoadOrCreateDevJWTIssuer] keeps its key.
const DevJWTKeyFile = "jwt-key.pem"

// DevJWTIssuer issues JWT-SVIDs (ES256) for a dev trust domain, as a SPIRE
// server would: dev mode uses it to give the demo human a user token, and
// tests use it to make JWT-SVIDs that go-spiffe validates.
type DevJWTIssuer struct {
	td    spiffeid.TrustDomain
	key   *ecdsa.PrivateKey
	kid   string
	clock func() time.Time
}

// NewDevJWTIssuer returns an issuer with a fresh P-256 key.
func NewDevJWTIssuer(td spiffeid.TrustDomain, clock func() time.Time) (*DevJWTIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: dev JWT issuer: %w", err)
	}
	return newDevJWTIssuer(td, key, clock), nil
}

func newDevJWTIssuer(td spiffeid.TrustDomain, key *ecdsa.PrivateKey, clock func() time.Time) *DevJWTIssuer {
	if clock == nil {
		clock = time.Now
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(der)
	return &DevJWTIssuer{td: td, key: key, kid: b64.EncodeToString(sum[:12]), clock: clock}
}

// LoadOrCreateDevJWTIssuer keeps the issuer's key in dir/jwt-key.pem.
func LoadOrCreateDevJWTIssuer(dir string, td spiffeid.TrustDomain, clock func() time.Time) (*DevJWTIssuer, error) {
	path := filepath.Join(dir, DevJWTKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("identity: dev JWT issuer: %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("identity: dev JWT issuer: %s: %w", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("identity: dev JWT issuer: %s: not an EC key", path)
		}
		return newDevJWTIssuer(td, ek, clock), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: dev JWT issuer: %w", err)
	}
	iss, err := NewDevJWTIssuer(td, clock)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(iss.key)
	if err != nil {
		return nil, fmt.Errorf("identity: dev JWT issuer: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: dev JWT issuer: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return iss, nil
}

// Bundle returns the JWT bundle that verifies the issuer's JWT-SVIDs.
func (d *DevJWTIssuer) Bundle() *jwtbundle.Bundle {
	return jwtbundle.FromJWTAuthorities(d.td, map[string]crypto.PublicKey{d.kid: &d.key.PublicKey})
}

// Issue returns a JWT-SVID for id (which must be in the issuer's trust
// domain) with the given audience, valid for ttl.
func (d *DevJWTIssuer) Issue(id spiffeid.ID, audience string, ttl time.Duration) (string, error) {
	if !id.MemberOf(d.td) {
		return "", fmt.Errorf("identity: dev JWT issuer: %s is not in %s", id, d.td)
	}
	now := d.clock()
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": d.kid, "typ": "JWT"})
	c, _ := json.Marshal(map[string]any{
		"sub": id.String(), "aud": []string{audience},
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	signed := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, d.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("identity: dev JWT issuer: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64.EncodeToString(sig), nil
}
