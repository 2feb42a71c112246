// Command portcullis is the Portcullis gateway and its operator and auditor
// tools, in one binary:
//
//	portcullis serve --dev                 run with an embedded dev CA, fake provider and default policy
//	portcullis serve --config FILE         run from a YAML configuration
//	portcullis audit verify DIR            check an audit log's hash chain
//	portcullis spire apply --file F ...    make SPIRE's workload entries match a file
//	portcullis version
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
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
	root.AddCommand(newServeCmd(), newAuditCmd(), newSpireCmd(), newVersionCmd())
	return root
}
