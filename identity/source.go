package identity

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source is what the TLS layer needs: our own X.509-SVID and the trust bundles
// that peers are verified against. Implementations are safe for concurrent use
// and may rotate both at any time; the TLS configs built by [ServerTLSConfig]
// and [ClientTLSConfig] ask the source on every handshake. Close releases it.
type Source interface {
	x509svid.Source
	x509bundle.Source
	Close() error
}

var (
	_ Source = (*staticSource)(nil)
	_ Source = (*FileSource)(nil)
	_ Source = (*WorkloadSource)(nil)
)

type staticSource struct {
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

// NewStaticSource returns a Source that always serves svid and bundles. It is
// what dev mode and tests use. Either may be nil: a nil svid makes
// GetX509SVID fail, and nil bundles trust nobody.
func NewStaticSource(svid *x509svid.SVID, bundles *x509bundle.Set) Source {
	if bundles == nil {
		bundles = x509bundle.NewSet()
	}
	return &staticSource{svid: svid, bundles: bundles}
}

func (s *staticSource) GetX509SVID() (*x509svid.SVID, error) {
	if s.svid == nil {
		return nil, errors.New("identity: static source has no X.509-SVID")
	}
	return s.svid, nil
}

func (s *staticSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b, ok := s.bundles.Get(td)
	if !ok {
		return nil, fmt.Errorf("identity: no X.509 bundle for trust domain %q", td)
	}
	return b, nil
}

func (s *staticSource) Close() error { return nil }
