package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ServerTLSConfig returns the data plane's TLS configuration: TLS 1.3 only, a
// client certificate required and verified as an X.509-SVID against src's
// bundles (go-spiffe's [tlsconfig.MTLSServerConfig]), and the peer authorized
// if its ID is a member of one of trustDomains. The server presents src's
// current SVID on every handshake, so rotation needs no restart. A resumed
// TLS session is verified again against the current bundles and trust domains.
//
// An empty trustDomains is an error: a gateway that trusts nobody is a
// misconfiguration, not a policy. NextProtos is left empty for the caller.
// VerifyConnection is set (it does the resumption check): to add a check of
// your own, wrap it rather than replace it.
func ServerTLSConfig(src Source, trustDomains []spiffeid.TrustDomain) (*tls.Config, error) {
	if src == nil {
		return nil, errors.New("identity: server TLS config: nil source")
	}
	if len(trustDomains) == 0 {
		return nil, errors.New("identity: server TLS config: no trust domains to authorize")
	}
	for _, td := range trustDomains {
		if td.IsZero() {
			return nil, errors.New("identity: server TLS config: empty trust domain in list")
		}
	}
	authorize := AuthorizeMemberOfAny(trustDomains...)
	cfg := tlsconfig.MTLSServerConfig(src, src, authorize)
	cfg.MinVersion = tls.VersionTLS13
	cfg.VerifyConnection = reverifyResumed(src, authorize)
	return cfg, nil
}

// reverifyResumed checks a resumed session's client certificate against the
// current bundles and authorizer. crypto/tls calls VerifyPeerCertificate only
// on full handshakes, and with RequireAnyClientCert checks nothing but the
// leaf's expiry when a session resumes; without this, a ticket issued before a
// CA left the bundle or a trust domain left the list would keep working for
// the ticket's lifetime.
func reverifyResumed(bundles x509bundle.Source, authorize tlsconfig.Authorizer) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return nil // VerifyPeerCertificate has just run
		}
		id, chains, err := x509svid.Verify(cs.PeerCertificates, bundles)
		if err != nil {
			return fmt.Errorf("identity: resumed session: %w", err)
		}
		if err := authorize(id, chains); err != nil {
			return fmt.Errorf("identity: resumed session: %w", err)
		}
		return nil
	}
}

// ClientTLSConfig returns a TLS 1.3 client configuration that presents src's
// SVID and accepts the server only if it presents an SVID that is a member of
// serverTD. It is for tests, examples and the CLI. Verification is by SPIFFE
// ID, not host name.
func ClientTLSConfig(src Source, serverTD spiffeid.TrustDomain) *tls.Config {
	cfg := tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeMemberOf(serverTD))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// AuthorizeMemberOfAny authorizes a peer whose SPIFFE ID is a member of any of
// the given trust domains. The list is copied.
func AuthorizeMemberOfAny(trustDomains ...spiffeid.TrustDomain) tlsconfig.Authorizer {
	allowed := make(map[spiffeid.TrustDomain]struct{}, len(trustDomains))
	for _, td := range trustDomains {
		allowed[td] = struct{}{}
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if _, ok := allowed[id.TrustDomain()]; !ok {
			return fmt.Errorf("identity: trust domain %q of %q is not authorized", id.TrustDomain(), id)
		}
		return nil
	}
}

// PeerID returns the SPIFFE ID of the peer of a completed handshake, read from
// its first certificate. It does not verify anything: call it only on
// connections whose configuration verified the peer, such as those from
// [ServerTLSConfig].
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, error) {
	if cs == nil {
		return spiffeid.ID{}, errors.New("identity: no TLS connection state")
	}
	if !cs.HandshakeComplete {
		return spiffeid.ID{}, errors.New("identity: TLS handshake not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("identity: peer presented no certificate")
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: peer certificate: %w", err)
	}
	return id, nil
}
