// Command portcullis-load drives an OpenAI-compatible chat endpoint over
// mTLS with a workload's X.509-SVID and reports throughput and latency. It is
// the load half of `make bench` (see docs/performance.md), and works against
// the gateway, the baseline proxy in bench/baseline, or the fake provider.
//
// Ten seconds of 64 concurrent non-streaming requests over 4 HTTP/2
// connections, as the dev app:
//
//	portcullis-load -target https://127.0.0.1:8443 \
//	    -cert .portcullis/dev/app.pem -key .portcullis/dev/app-key.pem \
//	    -bundle .portcullis/dev/bundle.pem -c 64 -m 4 -d 10s
//
// Streaming (SSE) instead, 50 content events per response, a fixed count of
// 5000 requests, JSON written to a file:
//
//	portcullis-load ... -stream -events 50 -n 5000 -json out.json
//
// Each request is one ~1 KB OpenAI chat completion body (-body-bytes), the
// same for every request, so a gateway's decision cache stays warm. In
// streaming mode the last user message carries the fake provider's
// [fake:chunks=N] directive and asks for a usage chunk.
//
// Open loop instead: streams due at 50 per second with Poisson gaps (-arrival
// fixed for even ones), at most 16 in flight, for 10 seconds:
//
//	portcullis-load ... -stream -events 50 -rate 50 -c 16 -m 1 -d 10s
//
// # Measures
//
// For every completed request: latency (request start to the last body
// byte) and time to first byte (request start to the first body byte: for a
// stream, the first SSE event). Reported: requests/s, p50/p90/p99/p99.9 and
// max of both, and errors by kind (HTTP status, transport failure, a stream
// that ended without data: [DONE]). A request still in flight when the
// duration ends is completed and counted; none is started after it.
//
// By default the run is closed-loop: each of the -c workers sends its next
// request as soon as the last one ends, so the target is as busy as it can
// be. With -rate R it is open-loop: requests fall due at R per second over
// all workers, whatever the target does; -c bounds how many are in flight.
// Latency and TTFB then count from each request's due time, not from when
// it went out, so a request that waited for a free worker is charged for the
// wait (no coordinated omission). Also reported: the send lag (send time
// minus due time: busy workers, or the generator's own timer slack) and the
// requests due before the end that were never sent (missed).
//
// # Protocols and identity
//
// -proto h2 (default) negotiates HTTP/2 by ALPN over TLS 1.3; -proto h3 uses
// HTTP/3 over QUIC. One request is sent before the clock starts; if the target
// does not answer on that protocol the run stops with "not supported by
// target". The client presents -cert/-key and accepts the server if its SVID
// verifies against -bundle and belongs to the client's trust domain (or is
// exactly -server-id). The N concurrent streams (-c) are spread round-robin
// over M connections (-m), one connection per client transport.
package main
