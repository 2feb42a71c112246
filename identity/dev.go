package identity

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Dev-mode identities. `portcullis serve --dev` runs a [DevCA] for
// DevTrustDomain, serves as DevGatewayID and writes client SVIDs for the
// other three with [DevCA.WriteDevFiles].
const (
	DevTrustDomain = "dev.portcullis.local"
	DevGatewayID   = "spiffe://" + DevTrustDomain + "/portcullis"
	DevAppID       = "spiffe://" + DevTrustDomain + "/tenant/acme/app/demo-app"
	DevAgentID     = "spiffe://" + DevTrustDomain + "/tenant/acme/agent/demo-agent"
	DevHumanID     = "spiffe://" + DevTrustDomain + "/human/alice"
)

// Files that WriteDevFiles writes: the bundle, and for each SVID
// <name>.pem with <name>-key.pem.
const (
	DevBundleFile = "bundle.pem"
	DevAppName    = "app"
	DevAgentName  = "agent"
	DevHumanName  = "human"
)

// DefaultTemplates returns the conventional templates for trust domain td:
//
//	spiffe://<td>/tenant/{tenant}/app/{name}    application
//	spiffe://<td>/tenant/{tenant}/agent/{name}  agent
//	spiffe://<td>/tenant/{tenant}/human/{name}  human
func DefaultTemplates(td spiffeid.TrustDomain) []Template {
	base := td.IDString() + "/tenant/" + PlaceholderTenant
	return []Template{
		{Pattern: base + "/app/" + PlaceholderName, Kind: KindApplication},
		{Pattern: base + "/agent/" + PlaceholderName, Kind: KindAgent},
		{Pattern: base + "/human/" + PlaceholderName, Kind: KindHuman},
	}
}

// DevTemplates returns DefaultTemplates for DevTrustDomain plus
// spiffe://dev.portcullis.local/human/{name} as a human of tenant "acme".
func DevTemplates() []Template {
	td := spiffeid.RequireTrustDomainFromString(DevTrustDomain)
	return append(DefaultTemplates(td),
		Template{Pattern: td.IDString() + "/human/" + PlaceholderName, Kind: KindHuman, Tenant: "acme"})
}

// WriteDevFiles writes into dir (created 0700 if missing) the CA bundle as
// bundle.pem and freshly issued SVIDs, valid for ttl, for DevAppID (app.pem),
// DevAgentID (agent.pem) and DevHumanID (human.pem), each with its -key.pem.
// The CA's trust domain is used with the paths of those IDs.
func (ca *DevCA) WriteDevFiles(dir string, ttl time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: dev files: %w", err)
	}
	if err := WriteBundle(filepath.Join(dir, DevBundleFile), ca.Bundle()); err != nil {
		return err
	}
	for _, w := range []struct{ name, id string }{
		{DevAppName, DevAppID},
		{DevAgentName, DevAgentID},
		{DevHumanName, DevHumanID},
	} {
		id, err := spiffeid.FromPath(ca.td, spiffeid.RequireFromString(w.id).Path())
		if err != nil {
			return fmt.Errorf("identity: dev files: %w", err)
		}
		svid, err := ca.Issue(id, ttl)
		if err != nil {
			return err
		}
		if err := WriteSVID(dir, w.name, svid); err != nil {
			return err
		}
	}
	return nil
}

// GatewaySource issues a server SVID for the gateway (the path of
// DevGatewayID in the CA's trust domain, with the SANs of
// [DevCA.IssueServer]'s defaults) valid for ttl, and returns a static Source
// serving it with the CA's bundle. It does not renew: pick a ttl that covers
// the dev session.
func (ca *DevCA) GatewaySource(ttl time.Duration) (Source, error) {
	id, err := spiffeid.FromPath(ca.td, spiffeid.RequireFromString(DevGatewayID).Path())
	if err != nil {
		return nil, fmt.Errorf("identity: dev gateway: %w", err)
	}
	svid, err := ca.IssueServer(id, nil, ttl)
	if err != nil {
		return nil, err
	}
	return NewStaticSource(svid, x509bundle.NewSet(ca.Bundle())), nil
}
