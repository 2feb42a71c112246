package proxy_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/proxy"
)

const testAudience = "portcullis-test"

type grantEnvOptions struct {
	keys     *identity.GrantKeyring // nil: fresh keys
	stateDir string                 // "": a temp dir
	jwt      *identity.DevJWTIssuer // nil: fresh issuer
}

// grantEnv is the grant side of a test gateway.
type grantEnv struct {
	options  *proxy.GrantOptions
	keys     *identity.GrantKeyring
	store    *store.Bolt
	stateDir string
	jwt      *identity.DevJWTIssuer
}

func setupGrants(t *testing.T, o grantEnvOptions, resolver *identity.Resolver) *grantEnv {
	t.Helper()
	if o.keys == nil {
		k, err := identity.GenerateGrantKey()
		if err != nil {
			t.Fatal(err)
		}
		if o.keys, err = identity.NewGrantKeyring(k); err != nil {
			t.Fatal(err)
		}
	}
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	td := spiffeid.RequireTrustDomainFromString(identity.DevTrustDomain)
	if o.jwt == nil {
		var err error
		if o.jwt, err = identity.NewDevJWTIssuer(td, nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.OpenBolt(filepath.Join(o.stateDir, "state.db"), store.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &grantEnv{
		options: &proxy.GrantOptions{
			Keys: o.keys, Store: st, Audience: testAudience,
			MaxTTL: 15 * time.Minute, DefaultTTL: 5 * time.Minute, MaxDepth: 2,
			Users: &identity.UserVerifier{Audience: testAudience, JWTBundles: jwtbundle.NewSet(o.jwt.Bundle()), Resolver: resolver},
		},
		keys: o.keys, store: st, stateDir: o.stateDir, jwt: o.jwt,
	}
}

// signGrant mints a grant straight from the keyring, bypassing the mint
// endpoint's policy: test setup for callers that cannot mint (agents).
func (e *gatewayEnv) signGrant(subject, task, purpose string, models []string, budget int, edit ...func(*identity.Grant)) string {
	e.t.Helper()
	g, err := identity.Mint(identity.MintRequest{
		Subject: spiffeid.RequireFromString(subject), Audience: testAudience, Task: task, Tenant: "acme",
		Purpose: purpose, Scopes: identity.Scopes{Models: models, MaxTokens: budget}, TTL: 5 * time.Minute,
	}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range edit {
		f(g)
	}
	tok, err := e.grants.keys.Sign(g)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.grants.store.PutGrant(context.Background(), store.GrantRecord{ID: g.ID, Parent: g.Parent,
		Task: g.Tenant + "/" + g.Task, Subject: g.Subject, Expiry: g.ExpiresAt(), MaxTokens: int64(g.Scopes.MaxTokens)}); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// agentGrant is a grant for the dev agent to call model under purpose support.
func (e *gatewayEnv) agentGrant(models ...string) string {
	return e.signGrant(identity.DevAgentID, "task-"+e.t.Name(), "support", models, 0)
}

// userToken is a JWT-SVID for the dev human (alice) addressed to the gateway.
func (e *gatewayEnv) userToken(id string) string {
	e.t.Helper()
	tok, err := e.grants.jwt.Issue(spiffeid.RequireFromString(id), testAudience, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// stop shuts the gateway down and closes its grant store, so that another
// gateway can open the same state.
func (e *gatewayEnv) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	if err := e.grants.store.Close(); err != nil {
		e.t.Fatal(err)
	}
}
