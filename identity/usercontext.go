package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

// UserTokenHeader is the request header that carries the original user's
// context: a JWT-SVID of a human principal, or an OIDC ID token from a
// configured issuer. It is not an identity assertion the gateway trusts: the
// token is verified (signature, issuer, audience, expiry) like a credential,
// and a request whose token does not verify is refused. That is why it is not
// under X-Portcullis-*, which the gateway drops unread.
const UserTokenHeader = "Portcullis-User-Token"

// ErrUserToken is wrapped by every refusal of a user token.
var ErrUserToken = errors.New("identity: user token refused")

// UserVerifier validates user tokens. JWT-SVIDs are checked with go-spiffe's
// jwtsvid.ParseAndValidate against JWTBundles, and their SPIFFE ID must
// resolve (with Resolver) to a human principal; OIDC ID tokens are checked
// against the issuer they name, which must be configured.
type UserVerifier struct {
	// Audience is what user tokens must be addressed to.
	Audience   string
	JWTBundles jwtbundle.Source // nil: JWT-SVIDs are not accepted
	Resolver   *Resolver
	Issuers    []*OIDCIssuer
	Clock      func() time.Time
}

// OIDCIssuer is an OpenID Connect issuer whose ID tokens are accepted, with
// the keys it signs with.
type OIDCIssuer struct {
	Issuer string
	// Audience overrides the verifier's audience (the OIDC client id).
	Audience string
	keys     map[string]crypto.PublicKey
}

// LoadOIDCIssuer reads the issuer's keys from a JWKS file.
func LoadOIDCIssuer(issuer, audience, jwksFile string) (*OIDCIssuer, error) {
	b, err := os.ReadFile(jwksFile)
	if err != nil {
		return nil, fmt.Errorf("identity: OIDC issuer %s: %w", issuer, err)
	}
	return NewOIDCIssuer(issuer, audience, b)
}

// NewOIDCIssuer parses a JWKS document (RFC 7517) for issuer. Keys need a kid.
func NewOIDCIssuer(issuer, audience string, jwks []byte) (*OIDCIssuer, error) {
	if issuer == "" {
		return nil, errors.New("identity: OIDC issuer: empty issuer")
	}
	// go-spiffe's JWKS parser; the trust domain is a placeholder.
	bundle, err := jwtbundle.Parse(spiffeid.RequireTrustDomainFromString("oidc.invalid"), jwks)
	if err != nil {
		return nil, fmt.Errorf("identity: OIDC issuer %s: %w", issuer, err)
	}
	return &OIDCIssuer{Issuer: issuer, Audience: audience, keys: bundle.JWTAuthorities()}, nil
}

// Verify returns the user a token names. A token whose subject is a SPIFFE
// ID is taken as a JWT-SVID; any other as an OIDC ID token.
func (v *UserVerifier) Verify(token string) (*UserInfo, error) {
	if len(token) > MaxGrantTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrUserToken, MaxGrantTokenBytes)
	}
	hdr, claims, signed, sig, err := splitJWT(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserToken, err)
	}
	if strings.HasPrefix(claims.Subject, "spiffe://") {
		return v.verifyJWTSVID(token)
	}
	return v.verifyOIDC(hdr, claims, signed, sig)
}

func (v *UserVerifier) verifyJWTSVID(token string) (*UserInfo, error) {
	if v.JWTBundles == nil {
		return nil, fmt.Errorf("%w: JWT-SVIDs are not accepted (no JWT bundles configured)", ErrUserToken)
	}
	svid, err := jwtsvid.ParseAndValidate(token, v.JWTBundles, []string{v.Audience})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserToken, err)
	}
	p, err := v.Resolver.Resolve(svid.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserToken, err)
	}
	if p.Kind != KindHuman {
		return nil, fmt.Errorf("%w: %s is a %s, not a human", ErrUserToken, svid.ID, p.Kind)
	}
	return &UserInfo{Subject: svid.ID.String(), Issuer: svid.ID.TrustDomain().IDString(), Kind: string(KindHuman)}, nil
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	Expiry    int64           `json:"exp"`
	NotBefore int64           `json:"nbf"`
	IssuedAt  int64           `json:"iat"`
}

// splitJWT decodes a compact JWS's header and registered claims without
// checking anything.
func splitJWT(token string) (jwtHeader, jwtClaims, string, []byte, error) {
	var h jwtHeader
	var c jwtClaims
	hs, rest, ok1 := strings.Cut(token, ".")
	cs, ss, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(ss, ".") {
		return h, c, "", nil, errors.New("not a compact JWS")
	}
	hb, err1 := b64.Strict().DecodeString(hs)
	cb, err2 := b64.Strict().DecodeString(cs)
	sig, err3 := b64.Strict().DecodeString(ss)
	if err := errors.Join(err1, err2, err3); err != nil {
		return h, c, "", nil, fmt.Errorf("bad base64url: %v", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, c, "", nil, fmt.Errorf("header: %v", err)
	}
	if err := json.Unmarshal(cb, &c); err != nil {
		return h, c, "", nil, fmt.Errorf("claims: %v", err)
	}
	return h, c, token[:len(hs)+1+len(cs)], sig, nil
}

func (v *UserVerifier) verifyOIDC(h jwtHeader, c jwtClaims, signed string, sig []byte) (*UserInfo, error) {
	i := slices.IndexFunc(v.Issuers, func(is *OIDCIssuer) bool { return is.Issuer == c.Issuer })
	if i < 0 {
		return nil, fmt.Errorf("%w: issuer %q is not configured", ErrUserToken, c.Issuer)
	}
	is := v.Issuers[i]
	key, ok := is.keys[h.Kid]
	if !ok {
		return nil, fmt.Errorf("%w: issuer %s has no key %q", ErrUserToken, c.Issuer, h.Kid)
	}
	if err := verifyJWS(h.Alg, key, signed, sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserToken, err)
	}
	aud := is.Audience
	if aud == "" {
		aud = v.Audience
	}
	if !audienceHas(c.Audience, aud) {
		return nil, fmt.Errorf("%w: audience is not %q", ErrUserToken, aud)
	}
	now := time.Now
	if v.Clock != nil {
		now = v.Clock
	}
	t := now().Unix()
	switch {
	case c.Subject == "":
		return nil, fmt.Errorf("%w: no sub", ErrUserToken)
	case c.Expiry == 0 || t >= c.Expiry:
		return nil, fmt.Errorf("%w: expired or no exp", ErrUserToken)
	case c.NotBefore != 0 && t < c.NotBefore:
		return nil, fmt.Errorf("%w: not valid yet", ErrUserToken)
	}
	return &UserInfo{Subject: c.Subject, Issuer: c.Issuer, Kind: string(KindHuman)}, nil
}

// verifyJWS checks an RS256, ES256 or EdDSA signature; the algorithm must
// match the key's type, so a header cannot pick a weaker check.
func verifyJWS(alg string, key crypto.PublicKey, signed string, sig []byte) error {
	digest := sha256.Sum256([]byte(signed))
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return fmt.Errorf("alg %q with an RSA key", alg)
		}
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		if alg != "ES256" || k.Curve != elliptic.P256() || len(sig) != 64 {
			return fmt.Errorf("alg %q with an EC key", alg)
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, digest[:], r, s) {
			return errors.New("bad signature")
		}
		return nil
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("alg %q with an Ed25519 key", alg)
		}
		if !ed25519.Verify(k, []byte(signed), sig) {
			return errors.New("bad signature")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", key)
}

func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, want)
}
