package main

import (
	"fmt"
	"os"
	"runtime"

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
