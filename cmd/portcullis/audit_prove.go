package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/portcullis-dev/portcullis/audit"
)

func newAuditProveCmd() *cobra.Command {
	var seq uint64
	cmd := &cobra.Command{
		Use:   "prove DIR --seq N",
		Short: "Print record N, its inclusion proof and the latest signed checkpoint, as JSON",
		Long: `Prove prints the proof that record N is in the log, in the JSON format of
docs/audit-format.md ("Proofs"): the record's exact line, the RFC 6962
inclusion proof in the tree of the latest stored checkpoint, and that signed
checkpoint. Anyone with the gateway's verifier key can check it offline with
'portcullis audit check-proof'. It reads DIR without locking it, so it works
beside a running gateway.

The record must be covered by a checkpoint: the gateway signs one at
startup, every audit.checkpoint_interval and at shutdown.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("seq") {
				return errors.New("audit prove: --seq is required")
			}
			p, err := proveFromDir(args[0], seq)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	cmd.Flags().Uint64Var(&seq, "seq", 0, "sequence number of the record to prove")
	return cmd
}

// proveFromDir builds a proof of seq against the latest stored checkpoint
// and checks it against that checkpoint's root before returning it.
func proveFromDir(dir string, seq uint64) (*audit.Proof, error) {
	ckpts, err := audit.ReadCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	if len(ckpts) == 0 {
		return nil, fmt.Errorf("audit prove: %s has no signed checkpoint yet; the gateway signs one at startup, every checkpoint_interval and at shutdown", dir)
	}
	msg := ckpts[len(ckpts)-1]
	c, err := parseUnverified(msg)
	if err != nil {
		return nil, fmt.Errorf("audit prove: latest checkpoint: %w", err)
	}
	if seq >= c.Size {
		return nil, fmt.Errorf("audit prove: record %d is not covered by the latest checkpoint (size %d); wait for the next one", seq, c.Size)
	}
	r, err := audit.OpenReader(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, err := r.Prove(seq, c.Size)
	if err != nil {
		return nil, err
	}
	p.Checkpoint = string(msg)
	if err := tlog.CheckRecord(p.Inclusion, int64(c.Size), c.Root, int64(seq), tlog.RecordHash([]byte(p.Record))); err != nil {
		return nil, fmt.Errorf("audit prove: the log does not match its latest checkpoint at record %d (run audit verify): %w", seq, err)
	}
	return p, nil
}

// parseUnverified parses a signed checkpoint's body without checking its
// signature (the reader of the proof does that).
func parseUnverified(msg []byte) (audit.Checkpoint, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return audit.Checkpoint{}, errors.New("not a signed note")
	}
	return audit.ParseCheckpoint(string(msg[:i+1]))
}

func newAuditCheckProofCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "check-proof PROOF --key VKEY",
		Short: "Verify a proof from 'audit prove' offline, without the log",
		Long: `Check-proof verifies a proof file (or - for standard input) made by
'portcullis audit prove': the checkpoint's signature with VKEY, that the
record says it is record seq, and that its leaf hash is in the checkpoint's
tree. It needs nothing but the proof and the verifier key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("audit check-proof: --key is required")
			}
			v, err := loadVerifier(key)
			if err != nil {
				return err
			}
			b, err := readInput(cmd, args[0])
			if err != nil {
				return fmt.Errorf("audit check-proof: %w", err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var p audit.Proof
			if err := dec.Decode(&p); err != nil {
				return fmt.Errorf("audit check-proof: %s: %w", args[0], err)
			}
			c, err := audit.CheckProof(&p, v)
			if err != nil {
				return fmt.Errorf("proof is NOT valid: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "proof OK: record %d is in the log %s of %d records (root %s)\n",
				p.Seq, c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "verifier key (or a file holding it)")
	return cmd
}

// consistencyOutput is what 'audit consistency' prints.
type consistencyOutput struct {
	Old   treeHead    `json:"old"`
	New   treeHead    `json:"new"`
	Proof []tlog.Hash `json:"proof"`
}

type treeHead struct {
	Origin     string    `json:"origin,omitempty"`
	Size       uint64    `json:"size"`
	Root       tlog.Hash `json:"root"`
	Checkpoint string    `json:"checkpoint,omitempty"`
}

func newAuditConsistencyCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "consistency DIR OLD NEW",
		Short: "Prove that the log at checkpoint NEW extends the log at checkpoint OLD",
		Long: `Consistency prints, as JSON, the RFC 6962 consistency proof between two trees
of the log in DIR, after checking that the log matches both. OLD and NEW are
signed checkpoint files, or tree sizes. With --key the checkpoints'
signatures are checked too. It fails (exit 1) when the log does not match a
checkpoint: the log was rewritten or forked after it was signed.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := audit.OpenReader(args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			var heads [2]treeHead
			for i, arg := range args[1:] {
				if heads[i], err = resolveHead(cmd, r, arg, key); err != nil {
					return err
				}
			}
			old, nw := heads[0], heads[1]
			if old.Origin != "" && nw.Origin != "" && old.Origin != nw.Origin {
				return fmt.Errorf("audit consistency: origins differ: %q, %q", old.Origin, nw.Origin)
			}
			if old.Size > nw.Size {
				return fmt.Errorf("audit consistency: OLD has %d records, NEW %d: give the older one first", old.Size, nw.Size)
			}
			p, err := r.ProveConsistency(old.Size, nw.Size)
			if err != nil {
				return err
			}
			if err := audit.CheckConsistency(p, audit.Checkpoint{Origin: old.Origin, Size: old.Size, Root: old.Root},
				audit.Checkpoint{Origin: old.Origin, Size: nw.Size, Root: nw.Root}); err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(consistencyOutput{Old: old, New: nw, Proof: p})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "verifier key (or a file holding it) for the checkpoints' signatures")
	return cmd
}

// resolveHead turns a checkpoint file or a size into a tree head that the
// log matches.
func resolveHead(cmd *cobra.Command, r *audit.Reader, arg, key string) (treeHead, error) {
	if n, err := strconv.ParseUint(arg, 10, 64); err == nil {
		root, err := r.TreeHash(n)
		return treeHead{Size: n, Root: root}, err
	}
	msg, err := readInput(cmd, arg)
	if err != nil {
		return treeHead{}, fmt.Errorf("audit consistency: %w", err)
	}
	var c audit.Checkpoint
	if key != "" {
		v, err := loadVerifier(key)
		if err != nil {
			return treeHead{}, err
		}
		c, err = audit.OpenCheckpoint(msg, v)
		if err != nil {
			return treeHead{}, fmt.Errorf("audit consistency: %s: %w", arg, err)
		}
	} else if c, err = parseUnverified(msg); err != nil {
		return treeHead{}, fmt.Errorf("audit consistency: %s: %w", arg, err)
	}
	root, err := r.TreeHash(c.Size)
	if err != nil {
		return treeHead{}, fmt.Errorf("audit consistency: %s covers %d records: %w", arg, c.Size, err)
	}
	if root != c.Root {
		return treeHead{}, fmt.Errorf("audit consistency: the log's first %d records have root %s, %s says %s: the log was rewritten",
			c.Size, base64.StdEncoding.EncodeToString(root[:]), arg, base64.StdEncoding.EncodeToString(c.Root[:]))
	}
	return treeHead{Origin: c.Origin, Size: c.Size, Root: c.Root, Checkpoint: string(msg)}, nil
}
