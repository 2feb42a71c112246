// Package proxy is the data plane of Portcullis: the mTLS listeners and the
// request pipeline that makes every model call an identity decision.
//
// A [Gateway] is an http.Handler built from parts its caller owns: an
// identity resolver, a policy engine, an audit log and a [Router] of models
// to providers.
//
//	gw, err := proxy.New(proxy.Config{
//		Resolver: resolver,      // *identity.Resolver: SPIFFE ID → principal
//		Policy:   engine,        // *policy.Engine: decides llm.invoke and friends
//		Audit:    auditLog,      // *audit.Log: durable, hash-chained records
//		Router:   router,        // model name → provider, upstream model, key
//		DigestKey: key,          // master key: per-tenant keys of audit digests
//	})
//	srv, err := proxy.NewServer(gw, tlsConfig, proxy.ServerOptions{HTTP3Port: port}, logger)
//	go srv.Serve(tcpListener)      // HTTP/2 and HTTP/1.1
//	go srv.ServeHTTP3(udpConn)     // HTTP/3, same TLS config, same handler
//
// For each request the gateway:
//
//  1. drops every client header that could assert an identity and takes the
//     caller's SPIFFE ID from the verified client certificate;
//  2. resolves it to a principal (unknown IDs are refused);
//  3. parses the body into an [LLMRequest] (sizes, counts, tool names and a
//     keyed digest — never the prompt text);
//  4. routes the model to a provider and asks policy for a decision; errors
//     deny (fail closed);
//  5. applies the decision's obligations (token caps, tool lists, provider
//     pins);
//  6. appends the decision to the audit log and waits until it is durable —
//     if it cannot be written the request is refused with 503;
//  7. proxies to the provider with httputil.ReverseProxy, replacing every
//     client header by an allowlist and adding the provider's credential;
//  8. relays the response (SSE event by event, flushed at once), reading
//     usage and tool calls as they pass, turning a broken upstream stream
//     into an error event and an aborted response;
//  9. appends a completion record: status, usage, tool calls, latency, error.
//
// Errors reach clients in the API's own error shape with a request id;
// details that could leak (paths, keys) stay in the log.
//
// # Task grants
//
// With Config.Grants set (a keyring, a state store, an audience), the gateway
// serves POST /v1/grants, POST /v1/grants/{id}/delegate, DELETE
// /v1/grants/{id}, POST /v1/tasks/{task}/complete and GET
// /.well-known/jwks.json (grants.go, grants_delegate.go). On model calls,
// between steps 4 and the decision, a grant presented as the API key
// (Authorization: Bearer, or X-Api-Key) is verified, bound to the caller's
// SPIFFE ID and checked against revocations on every use, outside the
// decision cache, and adds grant, chain and user to the policy input
// (grantcheck.go); after the obligations the call's tokens are reserved
// against the grant's budget and settled from the reported usage (budget.go).
// Config.RateLimits adds a request rate per principal by kind, counted in
// Config.RateState (this process's memory, or shared in etcd) with GCRA
// (ratelimit.go); Config.Limits caps each principal's requests in flight
// and bounds request and body-read time (limits.go).
// docs/grants.md is the user's view.
package proxy
