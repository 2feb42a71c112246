// Package workload is the shared plumbing of the example programs: it gives
// a workload its X.509-SVID — from the SPIFFE Workload API (a SPIRE agent)
// or from dev-mode PEM files — and an OpenAI SDK client that calls the
// gateway over mTLS with it.
//
//	w, err := workload.FromFlags(ctx, flags)  // Workload API or PEM files
//	defer w.Close()
//	client := w.OpenAI(gatewayURL)             // official openai-go client
//
// Nothing here is special to Portcullis: the SDK is configured with a base
// URL and an HTTP client that presents the SVID, and the gateway holds the
// provider's key.
package workload
