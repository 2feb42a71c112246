// Package spiffetest provides SPIFFE test fixtures for tests across the repo:
// a certificate authority that issues real (and deliberately broken)
// X.509-SVIDs, PEM files on disk, and a fake SPIFFE Workload API server on a
// unix socket.
//
// A CA per trust domain, and SVIDs from it:
//
//	ca := spiffetest.NewCA(t, "example.org")
//	svid := ca.SVID(t, "spiffe://example.org/tenant/acme/agent/bot")
//	expired := ca.SVID(t, "spiffe://example.org/x", spiffetest.Expired())
//	anonymous := ca.SVID(t, "spiffe://example.org/x", spiffetest.NoURI())
//	bundles := ca.BundleSet() // or x509bundle.NewSet(ca.Bundle(), other.Bundle())
//
// The CA is written directly on crypto/x509, independently of the identity
// package's DevCA, so that tests of the latter check it against a second
// implementation.
//
// Files, as a SPIFFE helper would write them:
//
//	certPath, keyPath := spiffetest.WritePEM(t, dir, "svid", svid)
//	spiffetest.WriteBundlePEM(t, filepath.Join(dir, "bundle.pem"), ca.Bundle())
//
// A fake Workload API that go-spiffe's workloadapi client can talk to, with
// SVID rotation pushed to every open stream:
//
//	api := spiffetest.NewWorkloadAPI(t)
//	api.SetX509SVID(svid, ca.Bundle())
//	src, _ := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(api.Addr())))
//	api.SetX509SVID(ca.SVID(t, "spiffe://example.org/x"), ca.Bundle()) // rotate
//
// Everything started is stopped by t.Cleanup.
package spiffetest
