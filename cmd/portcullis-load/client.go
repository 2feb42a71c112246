package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Protocols the load generator speaks.
const (
	protoH2 = "h2"
	protoH3 = "h3"
)

// errUnsupported marks a target that does not speak the requested protocol.
var errUnsupported = errors.New("not supported by target")

// identityFiles names the client SVID and the trust bundle, all PEM.
type identityFiles struct {
	Cert, Key, Bundle string
	// ServerID, if set, is the only SPIFFE ID accepted from the server;
	// otherwise any member of the client's own trust domain is.
	ServerID string
}

// clientTLS builds a TLS 1.3 client configuration that presents the SVID
// and verifies the server's SVID with go-spiffe, as a workload would.
func clientTLS(f identityFiles) (*tls.Config, error) {
	svid, err := x509svid.Load(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("client SVID: %w", err)
	}
	td := svid.ID.TrustDomain()
	authorize := tlsconfig.AuthorizeMemberOf(td)
	if f.ServerID != "" {
		id, err := spiffeid.FromString(f.ServerID)
		if err != nil {
			return nil, fmt.Errorf("server id: %w", err)
		}
		td, authorize = id.TrustDomain(), tlsconfig.AuthorizeID(id)
	}
	bundle, err := x509bundle.Load(td, f.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	cfg := tlsconfig.MTLSClientConfig(svid, bundle, authorize)
	cfg.MinVersion = tls.VersionTLS13
	return cfg, nil
}

// newTransport returns a RoundTripper that keeps at most one connection to
// the target, so M transports are M connections.
func newTransport(proto string, tlsCfg *tls.Config, timeout time.Duration) (http.RoundTripper, func(), error) {
	switch proto {
	case protoH2:
		var p http.Protocols
		p.SetHTTP2(true) // ALPN offers only h2: a target without it fails the preflight
		tr := &http.Transport{
			TLSClientConfig:     tlsCfg.Clone(),
			Protocols:           &p,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			TLSHandshakeTimeout: timeout,
			DisableCompression:  true,
		}
		return tr, tr.CloseIdleConnections, nil
	case protoH3:
		cfg := tlsCfg.Clone()
		cfg.NextProtos = []string{http3.NextProtoH3}
		tr := &http3.Transport{
			TLSClientConfig:    cfg,
			QUICConfig:         &quic.Config{HandshakeIdleTimeout: min(timeout, 3*time.Second)},
			DisableCompression: true,
		}
		return tr, func() { _ = tr.Close() }, nil
	default:
		return nil, nil, fmt.Errorf("unknown protocol %q (want h2 or h3)", proto)
	}
}
