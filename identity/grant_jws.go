package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// The compact JWS form of a grant (RFC 7515):
//
//	BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(signature)
//
// with the header exactly {"alg":"EdDSA","kid":"<kid>","typ":"portcullis-grant+jwt"}
// and an Ed25519 signature over the first two parts. The algorithm is fixed by
// the gateway: a token whose header names anything else ("none", "HS256",
// "ES256", ...) is refused before any key is looked at, so no header field can
// choose how the token is checked. The typ keeps grants apart from other JWTs
// (JWT-SVIDs, ID tokens) that might be signed by related keys.
const (
	grantAlg = "EdDSA"
	grantTyp = "portcullis-grant+jwt"
	// MaxGrantTokenBytes caps a grant token; longer ones are refused unread.
	MaxGrantTokenBytes = 8 << 10
)

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var b64 = base64.RawURLEncoding

// encodeGrant signs g with key as kid.
func encodeGrant(g *Grant, kid string, key ed25519.PrivateKey) (string, error) {
	h, err := json.Marshal(jwsHeader{Alg: grantAlg, Kid: kid, Typ: grantTyp})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(b64.EncodedLen(len(h)) + b64.EncodedLen(len(c)) + 90)
	sb.WriteString(b64.EncodeToString(h))
	sb.WriteByte('.')
	sb.WriteString(b64.EncodeToString(c))
	sig := ed25519.Sign(key, []byte(sb.String()))
	sb.WriteByte('.')
	sb.WriteString(b64.EncodeToString(sig))
	return sb.String(), nil
}

// parsedGrant is a token split and decoded, its signature not yet checked.
type parsedGrant struct {
	kid    string
	signed string // header.claims, the signing input
	sig    []byte
	claims Grant
}

// parseGrant splits and decodes a compact JWS strictly: size cap, exactly
// three parts, canonical base64url without padding, a header with exactly the
// fixed alg and typ and a kid, claims with no unknown or duplicate-typed
// fields, and a 64-byte signature. It checks no signature and no time.
func parseGrant(token string) (*parsedGrant, error) {
	if len(token) > MaxGrantTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrGrantMalformed, MaxGrantTokenBytes)
	}
	h, rest, ok1 := strings.Cut(token, ".")
	c, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: not a compact JWS (want three dot-separated parts)", ErrGrantMalformed)
	}
	hb, err := b64.Strict().DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrGrantMalformed, err)
	}
	var hdr jwsHeader
	if err := decodeStrict(hb, &hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrGrantMalformed, err)
	}
	if hdr.Alg != grantAlg {
		return nil, fmt.Errorf("%w: alg %q (only %s)", ErrGrantAlgorithm, hdr.Alg, grantAlg)
	}
	if hdr.Typ != grantTyp {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrGrantMalformed, hdr.Typ, grantTyp)
	}
	if hdr.Kid == "" {
		return nil, fmt.Errorf("%w: no kid", ErrGrantMalformed)
	}
	sig, err := b64.Strict().DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is not %d base64url bytes", ErrGrantMalformed, ed25519.SignatureSize)
	}
	cb, err := b64.Strict().DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrGrantMalformed, err)
	}
	p := &parsedGrant{kid: hdr.Kid, signed: token[:len(h)+1+len(c)], sig: sig}
	if err := decodeStrict(cb, &p.claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrGrantMalformed, err)
	}
	if err := p.claims.validClaims(); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrGrantMalformed, err)
	}
	return p, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
