package spiretest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/spiretest"
)

// TestMain lets copies of this test binary act as workloads: started with
// driverEnv set, the binary is a workload driver (driver_test.go), not a test
// run. Copies live at their own paths, so each gets its own unix:path
// selector and its own SPIFFE ID.
func TestMain(m *testing.M) {
	if os.Getenv(driverEnv) != "" {
		os.Exit(runDriver())
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// portcullisBin builds the real portcullis binary once per test run and
// returns its path.
func portcullisBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := spiretest.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "pcs-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "portcullis"), "./cmd/portcullis")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/portcullis: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "portcullis")
}
