// Package spire keeps a SPIRE server's workload entries in a file.
//
// Operators describe the workloads that may get SVIDs in a small YAML file
// (spire/entries.yaml in this repository):
//
//	trust_domain: example.org
//	parent_id: spiffe://example.org/host
//	entries:
//	  - spiffe_id: spiffe://example.org/tenant/acme/app/demo-app
//	    selectors: [unix:uid:1000, "unix:path:${PORTCULLIS_ROOT}/bin/example-app"]
//	    x509_svid_ttl: 1h
//	    jwt_svid_ttl: 5m
//	    portcullis: {kind: application, tenant: acme}
//
// [ReadFile] (or [Parse]) checks it strictly and says which line is wrong and
// why. [Apply] then makes the server's entries match it over the server's
// admin API ([Dial] its unix socket):
//
//	f, err := spire.ReadFile("spire/entries.yaml", os.LookupEnv)
//	conn, err := spire.Dial("/tmp/pc-spire-x/server/api.sock")
//	defer conn.Close()
//	res, err := spire.Apply(ctx, conn, f, spire.Options{Prune: true})
//	res.Report(os.Stdout)
//
// Apply creates what is missing, updates what differs and, with Prune,
// deletes what the file no longer names, but only among the entries it owns:
// those whose entry ID starts with [OwnedPrefix]. Apply gives each entry a
// stable ID derived from its SPIFFE ID and parent, so a second run finds
// everything in place and reports "no changes". It never writes to SPIRE's
// datastore directly.
//
// [File.Templates] turns the entries' optional Portcullis kind and tenant
// into principal templates for the gateway's identity resolver.
//
// The scripts and configurations beside this package (up.sh, down.sh,
// server.conf, agent.conf) run a local SPIRE server and agent; see
// spire/README.md and docs/spire.md.
package spire
