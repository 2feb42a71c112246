package spiretest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/portcullis-dev/portcullis"

// Environment variables that steer Start.
const (
	// EnvBin names a folder with spire-server and spire-agent.
	EnvBin = "PORTCULLIS_SPIRE_BIN"
	// EnvRequire, set to 1, fails tests that would skip for lack of SPIRE.
	EnvRequire = "PORTCULLIS_REQUIRE_SPIRE"
)

// RepoRoot returns the root of the Portcullis repository that holds the
// current directory (go test runs in the package's folder).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("spiretest: %w", err)
	}
	for {
		if isRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("spiretest: not inside the " + module + " repository")
		}
		dir = parent
	}
}

func isRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == module
		}
	}
	return false
}

// binDir returns the folder with the SPIRE binaries, or skips (or, with
// PORTCULLIS_REQUIRE_SPIRE=1, fails) the test when they are absent.
func binDir(t testing.TB, root string) string {
	t.Helper()
	dir := os.Getenv(EnvBin)
	if dir == "" {
		dir = filepath.Join(root, "tools", "bin")
	}
	for _, name := range []string{"spire-server", "spire-agent"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode()&0o111 == 0 {
			msg := fmt.Sprintf("spiretest: %s not found in %s: run `make spire-build` (about 11 minutes "+
				"the first time) or set %s to a folder holding spire-server and spire-agent v1.13.3", name, dir, EnvBin)
			if os.Getenv(EnvRequire) == "1" {
				t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, EnvRequire)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// Binaries returns the folder holding spire-server and spire-agent, for
// tests that run them (or scripts that do) without Start. It skips or fails
// the test as Start does when they are absent.
func Binaries(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return binDir(t, root)
}
