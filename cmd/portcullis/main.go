package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func main() {
	// The audit writer's fsync is a blocking syscall on the request path of
	// every decision. With one scheduler slot (one CPU, or a container's CPU
	// limit) the runtime may not hand that slot to other goroutines until
	// sysmon notices, up to 10 ms later, stalling the whole gateway. A second
	// slot keeps requests moving while an fsync is in flight.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	tuneGC()
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portcullis:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "A SPIFFE-native workload-identity gateway for LLM access",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newAuditCmd(), newSpireCmd(), newVersionCmd(), newApprovalsCmd(), newGrantCmd())
	return root
}

// Garbage collector defaults, each used only when its environment variable
// is unset. The gateway's allocation per request is small and steady, and
// at Go's default GOGC=100 the collector's marking was a tenth of its CPU
// per request under load (docs/performance.md); GOGC=200 marks half as
// often. (400 saved no more CPU in the benchmark and took 1,000 open
// streams to 331 MB RSS against 201 MB at 200.) The soft memory limit
// keeps the heap from growing past what a gateway pod is typically given:
// near it, the collector runs more often instead. Set GOGC and GOMEMLIMIT to suit the deployment
// (docs/operations.md).
const (
	defaultGCPercent   = 200
	defaultMemoryLimit = 512 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
