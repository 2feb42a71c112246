// Command app is the example application workload: a service that asks a
// model one question through Portcullis with the official OpenAI Go SDK,
// authenticated only by its X.509-SVID.
//
// With SPIRE (make demo, or your own agent):
//
//	SPIFFE_ENDPOINT_SOCKET=unix:///tmp/…/agent.sock \
//	  go run ./examples/app -gateway https://127.0.0.1:8443/v1/ "What is a SPIFFE ID?"
//
// Against `make run` (dev mode), with the dev SVID files:
//
//	go run ./examples/app -cert .portcullis/dev/app.pem -key .portcullis/dev/app-key.pem \
//	  -ca .portcullis/dev/bundle.pem "What is a SPIFFE ID?"
//
// It exits 0 when the gateway answered, 3 when the gateway refused the call,
// and 1 on any other error.
package main
