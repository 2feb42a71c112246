package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and inspect audit logs",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify DIR",
		Short: "Verify an audit log directory: every record, its sequence and its hash chain",
		Long: `Verify reads every segment of the audit log in DIR and checks that each line is a
well-formed record, that sequence numbers are consecutive from 0, and that each
record's prev field is the SHA-256 of the previous record's exact bytes.

It exits 0 when the log is intact, and non-zero naming the first bad record
(segment, line, sequence number) and the reason otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := audit.Verify(args[0])
			if err != nil {
				return fmt.Errorf("audit log %s is NOT intact: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log %s is intact: %d records in %d segments, head %s\n",
				args[0], rep.Records, rep.Segments, rep.Head)
			return nil
		},
	})
	return cmd
}
