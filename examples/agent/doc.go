// Command agent is the example autonomous agent workload. Like the example
// app it calls a model through Portcullis with the official OpenAI Go SDK
// and its own X.509-SVID, but the default policy lets agents act only under a
// task grant: pass one with -grant (see examples/delegation for how an
// application mints one and delegates it to an agent). Without a grant the
// gateway refuses the call, and says why.
//
//	go run ./examples/agent -cert .portcullis/dev/agent.pem -key .portcullis/dev/agent-key.pem \
//	  -ca .portcullis/dev/bundle.pem -grant "$GRANT" "Summarize ticket 42."
//
// The grant travels as the SDK's API key (Authorization: Bearer); the
// gateway verifies it, binds it to this agent's SPIFFE ID, and never
// forwards it. Exit status: 0 answered, 3 refused, 1 other error.
package main
