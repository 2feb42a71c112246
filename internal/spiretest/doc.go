// Package spiretest starts a real SPIRE server and agent (v1.13.3) for
// tests, from the binaries that `make spire-build` puts in tools/bin.
//
//	s := spiretest.Start(t, spiretest.Options{})   // skips if SPIRE is not built
//	s.CreateEntry(t, spiretest.Entry{
//		SPIFFEID:  "spiffe://example.org/test/me",
//		Selectors: spiretest.SelfSelectors(t),       // this test binary, by uid and path
//		X509SVIDTTL: 30 * time.Second,
//	})
//	svid := s.WaitX509SVID(t, 30*time.Second)        // waits for the entry to reach the agent
//	// then, as any workload: workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(s.WorkloadAddr()))
//
// Start uses the same server.conf and agent.conf templates as `make
// spire-up` (in spire/), in a short temporary directory (unix socket paths
// are limited to 108 bytes), on a free loopback port, and stops both
// processes and removes the directory in t.Cleanup. The server's admin API
// is at ServerSocket, for the spire package's Apply, and the agent's
// Workload API at WorkloadAddr.
//
// The binaries are looked up in $PORTCULLIS_SPIRE_BIN, else in tools/bin of
// the repository. When they are absent the test is skipped with a message
// saying how to build them, unless PORTCULLIS_REQUIRE_SPIRE=1 (as on CI),
// which turns the skip into a failure.
//
// StopAgent and RestartAgent take the agent away and bring it back (with its
// own SVID, no new join token); Federate makes two deployments trust each
// other's trust domain, for entries with FederatesWith.
//
// The package's own tests are the SPIRE integration suite: the real
// portcullis binary serving on its Workload API SVID, workloads (copies of
// the test binary, each registered by its path) calling it with the OpenAI
// SDK through rotation, an agent restart, federation and JWT-SVID user
// context; and `portcullis spire apply` against a real server.
//
// Selectors: tests run as root here, and as root a bare unix:uid:0 selector
// matches every process on the machine, so register a test workload with
// [SelfSelectors] (uid and the running test binary's path, which changes on
// every go test run), a binary's sha256, or run it as another uid.
package spiretest
