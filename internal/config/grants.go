package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Grants configures task grants (docs/grants.md): how long they live, how
// deep delegation may go, the key that signs them and the store that keeps
// revocations and budgets.
type Grants struct {
	// Disable turns the grant endpoints and checks off. Agents then cannot
	// call models under the default policy.
	Disable bool `yaml:"disable"`
	// Audience is the aud of the grants this gateway issues and accepts.
	Audience string `yaml:"audience"`
	// DefaultTTL applies when a mint request names no TTL; MaxTTL caps any.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	MaxTTL     time.Duration `yaml:"max_ttl"`
	// MaxDelegationDepth is the most delegations one chain may hold.
	MaxDelegationDepth int `yaml:"max_delegation_depth"`
	// SigningKeyFile holds the Ed25519 signing key (PEM PKCS#8; the first
	// key signs, later ones only verify). Created with one key if missing.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Store is the bbolt file for grant records, revocations and budgets.
	Store string `yaml:"store"`
	// ClockSkew tolerates clocks that disagree on nbf and exp.
	ClockSkew time.Duration `yaml:"clock_skew"`
}

// UserContext says which user tokens (header Portcullis-User-Token) the
// gateway accepts.
type UserContext struct {
	// Audience user tokens must carry; default grants.audience.
	Audience string `yaml:"audience"`
	// JWTBundles are JWKS files of trust domains whose JWT-SVIDs are accepted.
	JWTBundles []JWTBundle `yaml:"jwt_bundles"`
	// WorkloadAPI also takes JWT bundles from the Workload API (needs
	// svid.source: workload_api).
	WorkloadAPI bool `yaml:"workload_api"`
	// OIDCIssuers are OpenID Connect issuers whose ID tokens are accepted.
	OIDCIssuers []OIDCIssuer `yaml:"oidc_issuers"`
}

// JWTBundle is a trust domain's JWT bundle file (a JWKS document).
type JWTBundle struct {
	TrustDomain string `yaml:"trust_domain"`
	File        string `yaml:"file"`
}

// OIDCIssuer is an issuer and the JWKS file of its signing keys.
type OIDCIssuer struct {
	Issuer string `yaml:"issuer"`
	// Audience is the client id ID tokens are issued to; default
	// user_context.audience.
	Audience string `yaml:"audience"`
	JWKSFile string `yaml:"jwks_file"`
}

// RateLimit is a per-principal token bucket.
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
}

// Defaults for grants.
const (
	DefaultGrantAudience   = "portcullis"
	DefaultGrantTTL        = 10 * time.Minute
	DefaultGrantMaxTTL     = 15 * time.Minute
	DefaultDelegationDepth = 2
)

// setGrantDefaults fills in grants defaults; file paths default to files
// beside the audit directory.
func (c *Config) setGrantDefaults() {
	g := &c.Grants
	if g.Audience == "" {
		g.Audience = DefaultGrantAudience
	}
	if g.MaxTTL == 0 {
		g.MaxTTL = DefaultGrantMaxTTL
	}
	if g.DefaultTTL == 0 {
		g.DefaultTTL = min(DefaultGrantTTL, g.MaxTTL)
	}
	if g.MaxDelegationDepth == 0 {
		g.MaxDelegationDepth = DefaultDelegationDepth
	}
	if c.Audit.Dir != "" {
		base := filepath.Join(c.Audit.Dir, "..", filepath.Base(c.Audit.Dir))
		if g.SigningKeyFile == "" {
			g.SigningKeyFile = base + ".grant-keys.pem"
		}
		if g.Store == "" {
			g.Store = base + ".state.db"
		}
	}
	if c.UserContext.Audience == "" {
		c.UserContext.Audience = g.Audience
	}
}

func (c *Config) validateGrants() error {
	g := c.Grants
	switch {
	case g.DefaultTTL < 0 || g.MaxTTL < 0 || g.ClockSkew < 0:
		return &FieldError{"grants", "durations must not be negative"}
	case g.DefaultTTL > g.MaxTTL:
		return &FieldError{"grants.default_ttl", fmt.Sprintf("%v is longer than max_ttl %v", g.DefaultTTL, g.MaxTTL)}
	case g.MaxTTL > 24*time.Hour:
		return &FieldError{"grants.max_ttl", fmt.Sprintf("%v: grants are for minutes, not days (at most 24h)", g.MaxTTL)}
	case g.MaxDelegationDepth < 0 || g.MaxDelegationDepth > 16:
		return &FieldError{"grants.max_delegation_depth", "must be between 0 and 16"}
	case g.ClockSkew > 5*time.Minute:
		return &FieldError{"grants.clock_skew", "at most 5m"}
	}
	u := c.UserContext
	if u.WorkloadAPI && c.SVID.Source != "workload_api" {
		return &FieldError{"user_context.workload_api", "needs svid.source: workload_api"}
	}
	for i, b := range u.JWTBundles {
		f := fmt.Sprintf("user_context.jwt_bundles[%d]", i)
		if b.TrustDomain == "" || strings.ContainsAny(b.TrustDomain, "/:") {
			return &FieldError{f + ".trust_domain", fmt.Sprintf("%q is not a trust domain name", b.TrustDomain)}
		}
		if _, err := os.Stat(b.File); err != nil {
			return &FieldError{f + ".file", fmt.Sprintf("cannot read %q: %v", b.File, err)}
		}
	}
	for i, o := range u.OIDCIssuers {
		f := fmt.Sprintf("user_context.oidc_issuers[%d]", i)
		if !strings.HasPrefix(o.Issuer, "https://") {
			return &FieldError{f + ".issuer", fmt.Sprintf("%q must be an https:// issuer URL", o.Issuer)}
		}
		if _, err := os.Stat(o.JWKSFile); err != nil {
			return &FieldError{f + ".jwks_file", fmt.Sprintf("cannot read %q: %v", o.JWKSFile, err)}
		}
	}
	for kind, rl := range c.RateLimits {
		f := "rate_limits." + kind
		switch kind {
		case "human", "application", "agent":
		default:
			return &FieldError{"rate_limits", fmt.Sprintf("%q is not a principal kind (human, application, agent)", kind)}
		}
		if rl.RequestsPerSecond <= 0 || rl.Burst < 1 {
			return &FieldError{f, "requests_per_second must be positive and burst at least 1"}
		}
	}
	return nil
}
