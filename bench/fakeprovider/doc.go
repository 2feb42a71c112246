// Command fakeprovider runs the in-tree fake LLM provider
// (internal/fakeprovider) as its own process, for `make bench`: the upstream
// of both proxies on a plain HTTP listener (HTTP/1.1 and h2c), and, with
// -tls-listen, the same provider behind TLS 1.3 mTLS for the "direct" runs
// that the load generator makes without a proxy in between.
//
//	fakeprovider -listen 127.0.0.1:9000 -api-key-file key \
//	    -tls-listen 127.0.0.1:9001 -cert svid.pem -key svid-key.pem -bundle bundle.pem
//
// It logs only errors and keeps no record of requests, so memory stays flat
// under load. SIGINT or SIGTERM stops it.
package main
