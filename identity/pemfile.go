package identity

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// WriteSVID writes svid as <dir>/<name>.pem (the leaf, then any intermediates)
// and <dir>/<name>-key.pem (PKCS#8, mode 0600), each replaced atomically. The
// files are what curl's --cert/--key and [FileSourceConfig] expect.
func WriteSVID(dir, name string, svid *x509svid.SVID) error {
	if svid == nil {
		return errors.New("identity: write SVID: nil SVID")
	}
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		return fmt.Errorf("identity: write SVID %s: %w", name, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, name+"-key.pem"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, name+".pem"), certPEM, 0o644)
}

// WriteBundle writes the bundle's CA certificates as PEM to path, replacing it
// atomically.
func WriteBundle(path string, b *x509bundle.Bundle) error {
	if b == nil || b.Empty() {
		return errors.New("identity: write bundle: empty bundle")
	}
	data, err := b.Marshal()
	if err != nil {
		return fmt.Errorf("identity: write bundle: %w", err)
	}
	return writeFileAtomic(path, data, 0o644)
}
