package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/portcullis-dev/portcullis/identity"
)

// benchTD is the trust domain of every SVID the bench issues.
const benchTD = "bench.portcullis.local"

// files are the SVIDs, keys and configuration the bench writes to its
// temporary directory.
type files struct {
	dir         string
	bundle      string
	providerKey string
	// server SVIDs, by name: provider, baseline, portcullis; and the client.
	cert, key map[string]string
	config    string // Portcullis YAML
	auditDir  string
}

// writeIdentities issues, from a fresh dev CA, server SVIDs for the three
// targets and one client SVID (an application of tenant acme, which the
// default policy allows on gpt-4o-mini), plus a provider key.
func writeIdentities(dir string) (*files, error) {
	td := spiffeid.RequireTrustDomainFromString(benchTD)
	ca, err := identity.NewDevCA(td, time.Now)
	if err != nil {
		return nil, err
	}
	f := &files{dir: dir, bundle: filepath.Join(dir, "bundle.pem"), cert: map[string]string{}, key: map[string]string{}}
	if err := identity.WriteBundle(f.bundle, ca.Bundle()); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		name, path string
		server     bool
	}{
		{"provider", "/provider", true},
		{"baseline", "/baseline", true},
		{"portcullis", "/portcullis", true},
		{"client", "/tenant/acme/app/bench", false},
	} {
		id := spiffeid.RequireFromPath(td, s.path)
		issue := ca.Issue
		if s.server {
			issue = func(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) { return ca.IssueServer(id, nil, ttl) }
		}
		svid, err := issue(id, 6*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := identity.WriteSVID(dir, s.name, svid); err != nil {
			return nil, err
		}
		f.cert[s.name] = filepath.Join(dir, s.name+".pem")
		f.key[s.name] = filepath.Join(dir, s.name+"-key.pem")
	}
	k := make([]byte, 24)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f.providerKey = filepath.Join(dir, "provider.key")
	if err := os.WriteFile(f.providerKey, []byte("sk-bench-"+hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return f, nil
}

// writeConfig writes Portcullis's YAML: files SVID source, the embedded
// default policy with its decision cache, the fake provider upstream, an
// audit log (always fsync'd: the gateway has no switch to turn that off) and
// one JSON log line per request, as in production.
func (f *files) writeConfig(listen, upstreamURL string) error {
	f.config = filepath.Join(f.dir, "portcullis.yaml")
	f.auditDir = filepath.Join(f.dir, "audit")
	yaml := fmt.Sprintf(`# Written by bench/run for one benchmark; deleted afterwards.
listen: %s
trust_domains: [%s]
svid:
  source: files
  files:
    cert: %s
    key: %s
    bundle: %s
principals:
  - match: spiffe://%s/tenant/{tenant}/app/{name}
    kind: application
policy:
  bundle: ""
  cache_size: 10000
providers:
  - name: fake
    format: openai
    base_url: %s
    api_key_file: %s
    models:
      - name: gpt-4o-mini
audit:
  dir: %s
log:
  format: json
  level: info
`, listen, benchTD, f.cert["portcullis"], f.key["portcullis"], f.bundle, benchTD, upstreamURL, f.providerKey, f.auditDir)
	return os.WriteFile(f.config, []byte(yaml), 0o600)
}
