package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, prove and export audit logs",
		Long: `Auditor tools for a Portcullis audit log directory (format: docs/audit-format.md).

Every command exits 0 only when all is well; otherwise it exits 1 and names
the record (segment, line, seq) or checkpoint that failed and why.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditProveCmd(), newAuditCheckProofCmd(),
		newAuditConsistencyCmd(), newAuditExportCmd(), newAuditKeyCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var ckptFile, key string
	cmd := &cobra.Command{
		Use:   "verify DIR [--checkpoint FILE] [--key VKEY]",
		Short: "Verify an audit log: records, hash chain, Merkle tree and stored checkpoints",
		Long: `Verify reads every segment of the audit log in DIR and checks that each line is a
well-formed record, that sequence numbers are consecutive from 0, that each
record's prev field is the SHA-256 of the previous record's exact bytes, that
the stored Merkle tree hashes match, and that every checkpoint the gateway
stored in DIR/checkpoints matches the tree (with --key, also its signature).

With --checkpoint FILE (a signed checkpoint you kept earlier, e.g. fetched
from GET /v1/audit/checkpoint) it also checks that the log is an extension of
that checkpoint: this catches records cut from the end, rewrites and forks,
which a hash chain alone cannot. --checkpoint needs --key.

--key is a verifier key (name+hash+base64, as printed by 'portcullis audit key')
or a file holding one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			var o audit.VerifyOptions
			if key != "" {
				v, err := loadVerifier(key)
				if err != nil {
					return err
				}
				o.Key = v
			}
			if ckptFile != "" {
				if o.Key == nil {
					return errors.New("audit verify: --checkpoint needs --key")
				}
				b, err := readInput(cmd, ckptFile)
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				o.Checkpoint = b
			}
			rep, err := audit.VerifyWith(dir, o)
			if err != nil {
				return fmt.Errorf("audit log %s is NOT intact: %w", dir, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "audit log %s is intact: %d records in %d segments, head %s, root %s\n",
				dir, rep.Records, rep.Segments, rep.Head, rep.Root)
			switch {
			case rep.Checkpoints == 0:
				fmt.Fprintln(w, "no stored checkpoints")
			case rep.Signed:
				fmt.Fprintf(w, "%d stored checkpoints match the log, signatures verified; latest: size %d\n", rep.Checkpoints, rep.Latest.Size)
			default:
				fmt.Fprintf(w, "%d stored checkpoints match the log; signatures NOT checked (pass --key)\n", rep.Checkpoints)
			}
			if o.Checkpoint != nil {
				fmt.Fprintf(w, "the log extends the checkpoint in %s\n", ckptFile)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ckptFile, "checkpoint", "", "a signed checkpoint kept earlier: the log must extend it")
	cmd.Flags().StringVar(&key, "key", "", "verifier key (or a file holding it) for checkpoint signatures")
	return cmd
}

// loadVerifier takes a verifier key, or the path of a file holding one.
func loadVerifier(s string) (note.Verifier, error) {
	vkey := s
	if b, err := os.ReadFile(s); err == nil {
		vkey = strings.TrimSpace(string(b))
	} else if !strings.Contains(s, "+") {
		return nil, fmt.Errorf("audit: --key %q is neither a verifier key nor a readable file: %w", s, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: --key: %w", err)
	}
	return v, nil
}

// maxInputBytes caps proof and checkpoint files.
const maxInputBytes = 4 << 20

// readInput reads a file, or standard input for "-", up to maxInputBytes.
func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInputBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxInputBytes)
	}
	return b, nil
}
