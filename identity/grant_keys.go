package identity

import (
	"crypto/ed25519"
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
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// GrantKey is one Ed25519 key of a [GrantKeys] set, named by its kid (the
// RFC 7638 JWK thumbprint of the public key).
type GrantKey struct {
	ID      string
	Public  ed25519.PublicKey
	private ed25519.PrivateKey // nil for verification-only keys
}

// NewGrantKey wraps an Ed25519 private key.
func NewGrantKey(priv ed25519.PrivateKey) GrantKey {
	pub := priv.Public().(ed25519.PublicKey)
	return GrantKey{ID: thumbprint(pub), Public: pub, private: priv}
}

// GenerateGrantKey returns a fresh Ed25519 key.
func GenerateGrantKey() (GrantKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return GrantKey{}, fmt.Errorf("identity: grant key: %w", err)
	}
	return NewGrantKey(priv), nil
}

// thumbprint is the RFC 7638 thumbprint of an Ed25519 JWK (RFC 8037):
// SHA-256 over {"crv":"Ed25519","kty":"OKP","x":"…"}, base64url.
func thumbprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`))
	return b64.EncodeToString(sum[:])
}

// GrantKeyring is the gateway's signing state: the current key, which signs
// new grants, and previous keys, which still verify grants they signed until
// those expire. Rotate swaps atomically; readers never lock.
type GrantKeyring struct {
	keys  atomic.Pointer[keyset]
	peers atomic.Pointer[peerKeys] // nil: only the keyring's own keys verify
	// verifyHook replaces ed25519.Verify when set: tests count signature
	// checks with it. Set before first use.
	verifyHook func(pub ed25519.PublicKey, msg, sig []byte) bool
}

type keyset struct {
	current GrantKey
	byID    map[string]GrantKey
	order   []GrantKey // current first
}

// NewGrantKeyring returns a keyring signing with current and verifying with
// current and previous.
func NewGrantKeyring(current GrantKey, previous ...GrantKey) (*GrantKeyring, error) {
	if current.private == nil {
		return nil, errors.New("identity: grant keyring: current key has no private part")
	}
	k := &GrantKeyring{}
	k.keys.Store(newKeyset(current, previous))
	return k, nil
}

func newKeyset(current GrantKey, previous []GrantKey) *keyset {
	ks := &keyset{current: current, byID: map[string]GrantKey{current.ID: current}, order: []GrantKey{current}}
	for _, p := range previous {
		if _, dup := ks.byID[p.ID]; dup {
			continue
		}
		ks.byID[p.ID] = p
		ks.order = append(ks.order, p)
	}
	return ks
}

// Rotate makes next the signing key and keeps the old ones for verification,
// at most keep previous keys (the oldest are dropped first).
func (k *GrantKeyring) Rotate(next GrantKey, keep int) error {
	if next.private == nil {
		return errors.New("identity: grant keyring: rotate: key has no private part")
	}
	old := k.keys.Load()
	prev := old.order
	if len(prev) > keep {
		prev = prev[:keep]
	}
	k.keys.Store(newKeyset(next, prev))
	return nil
}

// CurrentKeyID is the kid new grants are signed with.
func (k *GrantKeyring) CurrentKeyID() string { return k.keys.Load().current.ID }

// Sign encodes g as a compact JWS signed with the current key.
func (k *GrantKeyring) Sign(g *Grant) (string, error) {
	tok, _, err := k.sign(g)
	return tok, err
}

// sign is Sign, also returning the kid of the key that signed.
func (k *GrantKeyring) sign(g *Grant) (token, kid string, err error) {
	if err := g.validClaims(); err != nil {
		return "", "", fmt.Errorf("identity: sign grant: %w", err)
	}
	ks := k.keys.Load()
	tok, err := encodeGrant(g, ks.current.ID, ks.current.private)
	if err != nil {
		return "", "", fmt.Errorf("identity: sign grant: %w", err)
	}
	return tok, ks.current.ID, nil
}

// verifySignature parses token and checks its signature against the keyring.
// It checks nothing else.
func (k *GrantKeyring) verifySignature(token string) (*Grant, string, error) {
	p, err := parseGrant(token)
	if err != nil {
		return nil, "", err
	}
	pub, ok := k.publicKey(p.kid)
	if !ok {
		return nil, "", fmt.Errorf("%w: kid %q", ErrGrantUnknownKey, p.kid)
	}
	verify := ed25519.Verify
	if k.verifyHook != nil {
		verify = k.verifyHook
	}
	if !verify(pub, []byte(p.signed), p.sig) {
		return nil, "", ErrGrantSignature
	}
	return &p.claims, p.kid, nil
}

// has reports whether kid is in the keyring or among its peers' keys.
func (k *GrantKeyring) has(kid string) bool {
	if _, ok := k.keys.Load().byID[kid]; ok {
		return true
	}
	_, ok := k.peerKey(kid)
	return ok
}

// JWK is one key of a JWKS document (RFC 7517, RFC 8037 for OKP).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the public keys, current first, then its peers' keys (by
// kid), as a JWKS document:
// {"keys":[{"kty":"OKP","crv":"Ed25519","x":"…","kid":"…","alg":"EdDSA","use":"sig"}]}.
func (k *GrantKeyring) JWKS() []byte {
	var doc struct {
		Keys []JWK `json:"keys"`
	}
	for _, key := range k.verificationKeys() {
		doc.Keys = append(doc.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(key.Public), Kid: key.ID, Alg: grantAlg, Use: "sig"})
	}
	b, _ := json.Marshal(doc)
	return b
}

// Key file format: PEM "PRIVATE KEY" blocks (PKCS#8 Ed25519), the current
// signing key first, then previous keys still used for verification.

// LoadGrantKeyring reads a key file.
func LoadGrantKeyring(path string) (*GrantKeyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: grant keys: %w", err)
	}
	var keys []GrantKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("identity: grant keys: %s: %w", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("identity: grant keys: %s: key is %T, want Ed25519", path, k)
		}
		keys = append(keys, NewGrantKey(priv))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("identity: grant keys: %s: no PRIVATE KEY block", path)
	}
	return NewGrantKeyring(keys[0], keys[1:]...)
}

// LoadOrCreateGrantKeyring reads path, or creates it (0600, directory 0700)
// with one fresh key when it does not exist.
func LoadOrCreateGrantKeyring(path string) (*GrantKeyring, error) {
	k, err := LoadGrantKeyring(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	key, err := GenerateGrantKey()
	if err != nil {
		return nil, err
	}
	k, err = NewGrantKeyring(key)
	if err != nil {
		return nil, err
	}
	if err := k.Save(path); err != nil {
		return nil, err
	}
	return k, nil
}

// Save writes the keyring's keys that have private parts to path atomically.
func (k *GrantKeyring) Save(path string) error {
	var out []byte
	for _, key := range k.keys.Load().order {
		if key.private == nil {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(key.private)
		if err != nil {
			return fmt.Errorf("identity: grant keys: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("identity: grant keys: %w", err)
	}
	if err := writeFileAtomic(path, out, 0o600); err != nil {
		return fmt.Errorf("identity: grant keys: %w", err)
	}
	return nil
}

// GrantVerifier checks presented grants: signature against a keyring,
// audience, time, and binding to the presenter. Tokens whose signature has
// been checked are remembered (by their exact bytes) until they expire, so a
// grant used again costs a map lookup instead of an Ed25519 verification;
// time and binding are checked on every call all the same. Tokens signed
// through [GrantVerifier.Sign] are remembered from the start, so even their
// first use costs no Ed25519 verification.
type GrantVerifier struct {
	Keys     *GrantKeyring
	Audience string
	// Leeway tolerates clock skew on nbf and exp.
	Leeway time.Duration
	cache  *grantCache
}

// NewGrantVerifier returns a verifier remembering up to cacheSize verified
// tokens (0 for a default of 10,000; negative disables the memory).
func NewGrantVerifier(keys *GrantKeyring, audience string, leeway time.Duration, cacheSize int) *GrantVerifier {
	if cacheSize == 0 {
		cacheSize = 10000
	}
	v := &GrantVerifier{Keys: keys, Audience: audience, Leeway: leeway}
	if cacheSize > 0 {
		v.cache = newGrantCache(cacheSize)
	}
	return v
}

// Verify returns the claims of token if its signature is good under one of
// the keyring's keys, its audience is the verifier's, it is valid at now, and
// presenter is its subject. Every refusal wraps one of the ErrGrant* errors.
// When the signature and audience were good but time or binding failed (an
// expired or stolen grant), the claims come back with the error, for the
// audit record only. The returned Grant is shared: treat it as read-only.
func (v *GrantVerifier) Verify(token string, presenter spiffeid.ID, now time.Time) (*Grant, error) {
	e, ok := v.cache.get(token)
	if !ok || !v.Keys.has(e.kid) {
		g, kid, err := v.Keys.verifySignature(token)
		if err != nil {
			return nil, err
		}
		if g.Audience != v.Audience {
			return nil, fmt.Errorf("%w: %q, this gateway is %q", ErrGrantAudience, g.Audience, v.Audience)
		}
		if err := g.checkTime(now, v.Leeway); err != nil {
			return g, err
		}
		e = cachedGrant{g: g, kid: kid}
		v.cache.put(token, e, now)
	}
	g := e.g
	if err := g.CheckUse(presenter, now, v.Leeway); err != nil {
		return g, err
	}
	return g, nil
}
