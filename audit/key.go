package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// A signing-key file holds one line: a sumdb/note Ed25519 signer key,
//
//	PRIVATE+KEY+<name>+<8 hex digits key hash>+<base64(0x01 || 32-byte seed)>
//
// whose name is the log's origin. It is created 0600 and never printed; the
// verifier key derived from it (VerifierKey) is what auditors keep.

// GenerateKeyFile creates a new Ed25519 signing key named origin in path
// (which must not exist) and returns its verifier key.
func GenerateKeyFile(path, origin string) (string, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", fmt.Errorf("audit: generate key %q: %w", origin, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("audit: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("audit: generate key: %w", err)
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("audit: generate key: %w", err)
	}
	return vkey, nil
}

// LoadKeyFile reads a signing-key file and returns its signer and verifier key.
func LoadKeyFile(path string) (note.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("audit: signing key: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	return s, vkey, nil
}

// LoadOrGenerateKeyFile loads path, creating it with a key named origin if
// it does not exist (dev mode). An existing key must be named origin when
// origin is set.
func LoadOrGenerateKeyFile(path, origin string) (note.Signer, string, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := GenerateKeyFile(path, origin); err != nil {
			return nil, "", err
		}
	}
	s, vkey, err := LoadKeyFile(path)
	if err == nil && origin != "" && s.Name() != origin {
		return nil, "", fmt.Errorf("audit: signing key %s is named %q, the configured origin is %q", path, s.Name(), origin)
	}
	return s, vkey, err
}

// VerifierKey derives the verifier key from an Ed25519 signer key.
func VerifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey := parts[2] + "+" + parts[3] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pub...))
	if _, err := note.NewVerifier(vkey); err != nil { // checks the key hash
		return "", fmt.Errorf("derived verifier key: %w", err)
	}
	return vkey, nil
}
