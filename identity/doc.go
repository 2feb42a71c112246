// Package identity turns mTLS connections into principals: it supplies the
// gateway's own X.509-SVID and trust bundles, builds the TLS configuration
// that verifies callers' SVIDs, and maps each verified SPIFFE ID to a
// [Principal] (kind, tenant, name) through operator-configured templates.
//
// # Sources
//
// A [Source] is an SVID plus trust bundles, which may rotate at any time.
// Production reads them from a SPIRE agent; files and an embedded dev CA
// serve where there is none:
//
//	src, err := identity.NewWorkloadSource(ctx, "unix:///run/spire/agent.sock", 10*time.Second)
//
//	src, err := identity.NewFileSource(ctx, identity.FileSourceConfig{
//		CertFile: "svid.pem", KeyFile: "svid-key.pem", BundleFile: "bundle.pem",
//		TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
//		Logger:      log,
//	})
//
//	ca, err := identity.LoadOrCreateDevCA(dataDir, td, time.Now) // dev mode
//	src, err := ca.GatewaySource(24 * time.Hour)
//
// All three block until they hold a first SVID and must be closed. A file
// source re-reads its files when they change and keeps the last good state
// when a read fails; a Workload API source follows what the agent pushes.
//
// # TLS
//
// [ServerTLSConfig] is TLS 1.3 only and requires a client certificate that
// verifies as an X.509-SVID against the source's bundles, from one of the
// listed trust domains. After the handshake, [PeerID] gives the caller's
// verified SPIFFE ID:
//
//	cfg, err := identity.ServerTLSConfig(src, []spiffeid.TrustDomain{td})
//	cfg.NextProtos = []string{"h2", "http/1.1"}
//	...
//	id, err := identity.PeerID(r.TLS)
//
// [ClientTLSConfig] is the matching client side for tests, examples and the
// CLI.
//
// # Principals
//
// A [Resolver] maps a verified ID to a [Principal] with the first [Template]
// that matches. Placeholders {tenant} and {name} each match one whole path
// segment; everything else is literal, including the trust domain:
//
//	r, err := identity.NewResolver([]identity.Template{
//		{Pattern: "spiffe://example.org/tenant/{tenant}/agent/{name}", Kind: identity.KindAgent},
//		{Pattern: "spiffe://example.org/ops/{name}", Kind: identity.KindHuman, Tenant: "internal"},
//	})
//	p, err := r.Resolve(id) // errors.Is(err, identity.ErrUnknownID) if none matches
//
// An ID that no template matches is refused even though its SVID is valid.
// Resolve allocates nothing on success; it runs on every request.
//
// # Task grants
//
// A [Grant] is a short-lived, signed statement that one workload may act for
// one task within scopes (models, tools, token budget). The gateway mints it
// ([Mint]), signs it with its [GrantKeyring] (Ed25519 compact JWS, alg fixed,
// kid = JWK thumbprint, previous keys kept for verification after Rotate,
// published with JWKS) and checks it on every use with a [GrantVerifier]:
//
//	g, err := identity.Mint(identity.MintRequest{Subject: appID, Audience: "portcullis",
//		Task: "ticket-4711", Tenant: "acme", Purpose: "support", Scopes: scopes, TTL: 10 * time.Minute}, now)
//	token, err := keys.Sign(g)
//	...
//	g, err := verifier.Verify(token, presenterID, now) // errors.Is(err, identity.ErrGrantBinding), ...
//
// The verifier remembers the exact bytes of each token whose signature it
// checked, with the key that signed it, so only a token's first use costs an
// Ed25519 verification; signing through [GrantVerifier.Sign] instead of the
// keyring remembers the token as it is signed, so a grant minted on this
// gateway costs none. Expiry and binding are checked on every use either way,
// and a remembered token counts only while its key is in the keyring.
//
// [Delegate] derives a narrower grant for another workload: scopes only
// shrink, expiry only comes sooner, tenant, task, purpose and user stay, and
// the chain of actors grows by one, up to a depth limit.
//
// A [UserVerifier] validates the original user's token ([UserTokenHeader]):
// a JWT-SVID of a human principal, or an OIDC ID token from a configured
// issuer.
//
// # Dev mode
//
// A [DevCA] issues real SVIDs for [DevTrustDomain]. [DevCA.WriteDevFiles]
// writes bundle.pem and client SVIDs for [DevAppID], [DevAgentID] and
// [DevHumanID], which [DevTemplates] resolve to an application, an agent and a
// human of tenant "acme":
//
//	curl --cacert dev/bundle.pem --cert dev/app.pem --key dev/app-key.pem https://localhost:8443/v1/chat/completions -d @request.json
package identity
