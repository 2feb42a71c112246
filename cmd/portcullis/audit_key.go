package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/audit"
)

func newAuditKeyCmd() *cobra.Command {
	var keyFile, origin string
	var generate bool
	cmd := &cobra.Command{
		Use:   "key --key-file F [--generate --origin NAME]",
		Short: "Print the verifier key of a checkpoint signing key (or generate one)",
		Long: `Key prints the verifier key that checks the gateway's signed checkpoints:
<origin>+<key hash>+<base64 public key>. Give it to auditors and witnesses;
it is what --key takes. The signing key itself is never printed.

With --generate it first creates F (which must not exist) holding a new
Ed25519 signing key named --origin, the name every checkpoint will carry;
point audit.signing_key_file at it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("audit key: --key-file is required")
			}
			if generate {
				if origin == "" {
					return errors.New("audit key: --generate needs --origin")
				}
				if _, err := audit.GenerateKeyFile(keyFile, origin); err != nil {
					return err
				}
			}
			_, vkey, err := audit.LoadKeyFile(keyFile)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "signing-key file (audit.signing_key_file)")
	cmd.Flags().BoolVar(&generate, "generate", false, "create the key file first")
	cmd.Flags().StringVar(&origin, "origin", "", "with --generate: the log's origin, e.g. gw-1.example.org/audit")
	return cmd
}
