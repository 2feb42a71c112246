package spiretest_test

import (
	"os"
	"testing"
)

// TestMain lets copies of this test binary act as workloads: started with
// driverEnv set, the binary is a workload driver (driver_test.go), not a test
// run. Copies live at their own paths, so each gets its own unix:path
// selector and its own SPIFFE ID.
func TestMain(m *testing.M) {
	if os.Getenv(driverEnv) != "" {
		os.Exit(runDriver())
	}
	os.Exit(m.Run())
}
