// Command baseline is the BASELINE of `make bench`: a bare Go mTLS reverse
// proxy with no governance at all. It is not part of Portcullis and must
// never be deployed; it exists so that the gateway's cost can be stated
// against the cheapest honest alternative, measured in the same run.
//
// It does what any team would write in an afternoon, and nothing more:
// TLS 1.3 with a required client X.509-SVID verified by go-spiffe's
// tlsconfig (the same settings as the gateway's listener), the caller's
// SPIFFE ID read in the handler, stdlib httputil.ReverseProxy with Rewrite,
// the provider key put on the upstream request, SSE flushed at once. No
// principal templates, no policy, no audit log, no body parsing, no logging.
//
//	baseline -listen 127.0.0.1:9443 -upstream http://127.0.0.1:9000/v1 \
//	    -cert svid.pem -key svid-key.pem -bundle bundle.pem -api-key-file key
//
// The upstream transport has the same pool settings as the gateway's
// (proxy.NewTransport), copied rather than imported so that the baseline
// depends on nothing of ours but a few lines of setup.
package main
