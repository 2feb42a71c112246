package spiretest

import (
	"os"
	"path/filepath"
	"testing"
)

// Federate makes the servers of a and b trust each other's trust domain:
// each one's bundle (X.509 authorities and JWT keys, in SPIFFE format) is set
// in the other with `spire-server bundle set`, the static form of SPIRE
// federation. Entries may then federate with the other trust domain, and
// their workloads receive its bundle from the Workload API.
func Federate(t testing.TB, a, b *SPIRE) {
	t.Helper()
	a.setBundleOf(t, b)
	b.setBundleOf(t, a)
}

// setBundleOf stores other's current bundle in s's server.
func (s *SPIRE) setBundleOf(t testing.TB, other *SPIRE) {
	t.Helper()
	bundle, err := run(other.serverBin(), "bundle", "show", "-socketPath", other.ServerSocket, "-format", "spiffe")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir, "bundle-"+other.TrustDomain.Name()+".json")
	if err := os.WriteFile(path, []byte(bundle), 0o644); err != nil {
		t.Fatalf("spiretest: %v", err)
	}
	if _, err := run(s.serverBin(), "bundle", "set", "-socketPath", s.ServerSocket,
		"-format", "spiffe", "-id", other.TrustDomain.IDString(), "-path", path); err != nil {
		t.Fatal(err)
	}
}
