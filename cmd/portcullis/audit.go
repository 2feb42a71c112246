package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
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
	var ckptFiles, keys []string
	cmd := &cobra.Command{
		Use:   "verify DIR... [--checkpoint FILE]... [--key VKEY]...",
		Short: "Verify audit logs: records, hash chain, Merkle tree and stored checkpoints",
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
or a file holding one.

Several DIRs (one per gateway replica) are verified in turn and each is
reported; the command fails if any fails. Each replica signs with its own
origin and key: repeat --key (and --checkpoint) once per replica, and each is
matched to the log whose stored checkpoints carry its name as origin.`,
		Args: verifyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return verifyLogs(cmd, args, keys, ckptFiles)
		},
	}
	cmd.Flags().StringArrayVar(&ckptFiles, "checkpoint", nil, "a signed checkpoint kept earlier: the log of its origin must extend it (repeatable)")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "verifier key (or a file holding it) for checkpoint signatures (repeatable, one per log)")
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
