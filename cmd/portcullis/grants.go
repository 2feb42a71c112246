package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

// DevUserTokenFile is where dev mode writes the demo human's user token (a
// JWT-SVID for alice, addressed to the gateway).
const devUserTokenFile = "human.jwt"

// grantOptions builds task grants from the configuration: the signing
// keyring (created if missing), the state store, and the user-token
// verifier. It returns nil when grants are disabled.
func (g *gateway) grantOptions(ctx context.Context, resolver *identity.Resolver) (*proxy.GrantOptions, error) {
	gc := g.cfg.Grants
	if gc.Disable {
		return nil, nil
	}
	keys, err := identity.LoadOrCreateGrantKeyring(gc.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("grants.signing_key_file: %w", err)
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, err
	}
	// Every replica publishes the keys it signs with and accepts the
	// others': replicas may share one key file or each have its own.
	pub, err := proxy.PublishGrantKeys(ctx, keys, st, proxy.GrantKeyPublishOptions{MaxTTL: gc.MaxTTL, Logger: g.log})
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	g.closers = append(g.closers, pub.Close)
	users, err := g.userVerifier(ctx, resolver)
	if err != nil {
		return nil, err
	}
	return &proxy.GrantOptions{
		Keys: keys, Store: st, Audience: gc.Audience,
		DefaultTTL: gc.DefaultTTL, MaxTTL: gc.MaxTTL, MaxDepth: gc.MaxDelegationDepth,
		Users: users, Leeway: gc.ClockSkew,
	}, nil
}

// userVerifier builds the verifier of Portcullis-User-Token from
// user_context (and, in dev mode, the dev JWT issuer's bundle).
func (g *gateway) userVerifier(ctx context.Context, resolver *identity.Resolver) (*identity.UserVerifier, error) {
	uc := g.cfg.UserContext
	set := jwtbundle.NewSet()
	if g.devJWT != nil {
		set.Add(g.devJWT.Bundle())
	}
	for i, b := range uc.JWTBundles {
		td, err := spiffeid.TrustDomainFromString(b.TrustDomain)
		if err != nil {
			return nil, fmt.Errorf("user_context.jwt_bundles[%d]: %w", i, err)
		}
		bundle, err := jwtbundle.Load(td, b.File)
		if err != nil {
			return nil, fmt.Errorf("user_context.jwt_bundles[%d]: %w", i, err)
		}
		set.Add(bundle)
	}
	var src jwtbundle.Source = set
	if uc.WorkloadAPI {
		opts := []workloadapi.JWTSourceOption{}
		if s := g.cfg.SVID.WorkloadAPI.Socket; s != "" {
			opts = append(opts, workloadapi.WithClientOptions(workloadapi.WithAddr(s)))
		}
		wctx, cancel := context.WithTimeout(ctx, g.cfg.SVID.WorkloadAPI.Timeout)
		defer cancel()
		js, err := workloadapi.NewJWTSource(wctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("user_context.workload_api: %w", err)
		}
		g.closers = append(g.closers, js.Close)
		src = bundleSources{set, js}
	}
	v := &identity.UserVerifier{Audience: uc.Audience, Resolver: resolver}
	if set.Len() > 0 || uc.WorkloadAPI {
		v.JWTBundles = src
	}
	for i, o := range uc.OIDCIssuers {
		aud := o.Audience
		if aud == "" {
			aud = uc.Audience
		}
		is, err := identity.LoadOIDCIssuer(o.Issuer, aud, o.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("user_context.oidc_issuers[%d]: %w", i, err)
		}
		v.Issuers = append(v.Issuers, is)
	}
	return v, nil
}

// bundleSources asks each source in turn.
type bundleSources []jwtbundle.Source

func (s bundleSources) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	var err error
	for _, src := range s {
		var b *jwtbundle.Bundle
		if b, err = src.GetJWTBundleForTrustDomain(td); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// rateLimits converts rate_limits to the gateway's form.
func rateLimits(in map[string]config.RateLimit) map[identity.Kind]proxy.RateLimit {
	if len(in) == 0 {
		return nil
	}
	out := make(map[identity.Kind]proxy.RateLimit, len(in))
	for k, rl := range in {
		out[identity.Kind(k)] = proxy.RateLimit{Rate: rl.RequestsPerSecond, Burst: rl.Burst}
	}
	return out
}

// rateState is where rate-limit counters live: in the state store when
// one is open for grants (etcd shares them between replicas; bolt keeps
// them in memory). With grants disabled, store.backend etcd still opens
// the store for the counters when rate_limits are set, so that replicas
// share them; otherwise they are kept in the gateway's memory (nil).
func (g *gateway) rateState(ctx context.Context, grants *proxy.GrantOptions) (store.RateLimiter, error) {
	if grants != nil {
		rl, _ := grants.Store.(store.RateLimiter)
		return rl, nil
	}
	if g.cfg.Store.Backend != "etcd" {
		return nil, nil
	}
	if len(g.cfg.RateLimits) == 0 {
		g.log.Warn("store.backend is etcd, but nothing is kept in it: grants are disabled and no rate_limits are set")
		return nil, nil
	}
	return g.openStore(ctx)
}

// devGrants sets up grants for dev mode under dataDir: the signing key and
// state store there, and a dev JWT issuer whose JWT-SVID for the demo human
// is written to <dev>/human.jwt as a user token.
func (g *gateway) devGrants(dataDir, devDir string, td spiffeid.TrustDomain) error {
	g.cfg.Grants = config.Grants{
		Audience: config.DefaultGrantAudience, DefaultTTL: config.DefaultGrantTTL, MaxTTL: config.DefaultGrantMaxTTL,
		MaxDelegationDepth: config.DefaultDelegationDepth,
		SigningKeyFile:     filepath.Join(dataDir, "grant-keys.pem"),
		Store:              filepath.Join(dataDir, "state.db"),
	}
	g.cfg.UserContext = config.UserContext{Audience: config.DefaultGrantAudience}
	iss, err := identity.LoadOrCreateDevJWTIssuer(devDir, td, time.Now)
	if err != nil {
		return fmt.Errorf("dev JWT issuer: %w", err)
	}
	g.devJWT = iss
	alice, err := spiffeid.FromPath(td, spiffeid.RequireFromString(identity.DevHumanID).Path())
	if err != nil {
		return err
	}
	tok, err := iss.Issue(alice, config.DefaultGrantAudience, devSVIDTTL)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(devDir, devUserTokenFile), []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("dev user token: %w", err)
	}
	return nil
}
