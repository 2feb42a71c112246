package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/spire"
)

func newSpireCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "spire",
		Short: "Manage SPIRE workload entries",
	}
	cmd.AddCommand(newSpireApplyCmd())
	return cmd
}

func newSpireApplyCmd() *cobra.Command {
	var (
		file, socket  string
		prune, dryRun bool
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply --file F --socket S [--prune] [--dry-run]",
		Short: "Make a SPIRE server's workload entries match an entries file",
		Long: `Apply reads the entries file F (format: docs/spire.md), checks it strictly, and
makes the entries of the SPIRE server whose admin API listens on the unix socket
S match it: it creates the entries that are missing and updates those that
differ. With --prune it also deletes the entries it made earlier that the file
no longer names. Entries it did not make are never changed. A second run
changes nothing and says so. --dry-run only reports what would change.

${NAME} in a selector is replaced by the environment variable NAME.
S defaults to $SPIRE_SERVER_SOCKET (set by make spire-up).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if socket == "" {
				socket = os.Getenv("SPIRE_SERVER_SOCKET")
			}
			if socket == "" {
				return errors.New("spire apply: --socket is required (or set SPIRE_SERVER_SOCKET)")
			}
			f, err := spire.ReadFile(file, os.LookupEnv)
			if err != nil {
				return err
			}
			conn, err := spire.Dial(socket)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := spire.Apply(ctx, conn, f, spire.Options{Prune: prune, DryRun: dryRun})
			if res != nil {
				if werr := res.Report(cmd.OutOrStdout()); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return fmt.Errorf("spire apply: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "entries file (YAML)")
	cmd.Flags().StringVar(&socket, "socket", "", "SPIRE server admin API unix socket (default $SPIRE_SERVER_SOCKET)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete entries made by portcullis that the file no longer names")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would change, change nothing")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
