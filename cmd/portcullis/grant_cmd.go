package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/identity"
)

// newGrantCmd is `portcullis grant keys …`: the operator's side of the
// grant signing keys (docs/grants.md).
func newGrantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "grant", Short: "Manage task grant signing keys"}
	keys := &cobra.Command{Use: "keys", Short: "Show, create and rotate the grant signing keys"}
	var keyFile string
	var keep int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Put a new signing key first; keep previous keys for verification",
		Long: `Generate a new Ed25519 key and make it the signing key in --key-file,
keeping up to --keep previous keys so grants they signed stay valid until they
expire. Restart the gateway (or replicas one by one) to pick it up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("grant keys rotate: --key-file is required")
			}
			kr, err := identity.LoadOrCreateGrantKeyring(keyFile)
			if err != nil {
				return err
			}
			next, err := identity.GenerateGrantKey()
			if err != nil {
				return err
			}
			if err := kr.Rotate(next, keep); err != nil {
				return err
			}
			if err := kr.Save(keyFile); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key is now %s\n", kr.CurrentKeyID())
			return nil
		},
	}
	jwks := &cobra.Command{
		Use:   "jwks",
		Short: "Print the verification keys as JWKS (what GET /.well-known/jwks.json serves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("grant keys jwks: --key-file is required")
			}
			kr, err := identity.LoadGrantKeyring(keyFile)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", kr.JWKS())
			return err
		},
	}
	for _, c := range []*cobra.Command{rotate, jwks} {
		c.Flags().StringVar(&keyFile, "key-file", "", "grant signing key file (grants.signing_key_file)")
	}
	rotate.Flags().IntVar(&keep, "keep", 2, "previous keys to keep for verification")
	keys.AddCommand(rotate, jwks)
	cmd.AddCommand(keys)
	return cmd
}
