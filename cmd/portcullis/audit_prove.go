package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
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
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("audit check-proof: %s: data after the proof's JSON object", args[0])
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
signatures are checked too (and those of the log's stored checkpoints).

First it verifies the records themselves, as 'audit verify' does: the hash
chain, the stored hashes the proof is built from, the stored checkpoints,
and that the tree of the first OLD and NEW records has each checkpoint's
root. It fails (exit 1), naming the segment, record and reason, when the log
holds fewer records than NEW or does not match a checkpoint: records were
changed, removed or cut from the end, or the log was forked after the
checkpoint was signed.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			var v note.Verifier
			if key != "" {
				var err error
				if v, err = loadVerifier(key); err != nil {
					return err
				}
			}
			var heads [2]treeHead
			var extends []audit.NamedCheckpoint
			for i, arg := range args[1:] {
				h, err := parseHead(cmd, arg, v)
				if err != nil {
					return err
				}
				heads[i] = h
				if h.Checkpoint != "" {
					extends = append(extends, audit.NamedCheckpoint{Name: [2]string{"OLD", "NEW"}[i] + " (" + arg + ")",
						Checkpoint: audit.Checkpoint{Origin: h.Origin, Size: h.Size, Root: h.Root}})
				}
			}
			old, nw := heads[0], heads[1]
			if old.Origin != "" && nw.Origin != "" && old.Origin != nw.Origin {
				return fmt.Errorf("audit consistency: origins differ: %q, %q", old.Origin, nw.Origin)
			}
			if old.Size > nw.Size {
				return fmt.Errorf("audit consistency: OLD has %d records, NEW %d: give the older one first", old.Size, nw.Size)
			}
			// The proof is built from dir/hashes, which is derived: check the
			// records it derives from, and the hashes against them, first.
			rep, err := audit.VerifyWith(dir, audit.VerifyOptions{Key: v, Extends: extends})
			if err != nil {
				return fmt.Errorf("audit consistency: audit log %s is NOT intact: %w", dir, err)
			}
			if rep.Records < nw.Size {
				return fmt.Errorf("audit consistency: NEW size %d is beyond the log's %d records", nw.Size, rep.Records)
			}
			if rep.Stored < nw.Size {
				return fmt.Errorf("audit consistency: %s/hashes covers %d records, NEW %d: the gateway completes it when it next opens the log", dir, rep.Stored, nw.Size)
			}
			r, err := audit.OpenReader(dir)
			if err != nil {
				return err
			}
			defer r.Close()
			for i, arg := range args[1:] {
				if err := matchHead(r, &heads[i], arg); err != nil {
					return err
				}
			}
			old, nw = heads[0], heads[1]
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

// parseHead turns a checkpoint file or a size into a tree head; a size's
// root is left for matchHead. With v, a checkpoint's signature must verify.
func parseHead(cmd *cobra.Command, arg string, v note.Verifier) (treeHead, error) {
	if n, err := strconv.ParseUint(arg, 10, 64); err == nil {
		return treeHead{Size: n}, nil
	}
	msg, err := readInput(cmd, arg)
	if err != nil {
		return treeHead{}, fmt.Errorf("audit consistency: %w", err)
	}
	var c audit.Checkpoint
	if v != nil {
		c, err = audit.OpenCheckpoint(msg, v)
	} else {
		c, err = parseUnverified(msg)
	}
	if err != nil {
		return treeHead{}, fmt.Errorf("audit consistency: %s: %w", arg, err)
	}
	return treeHead{Origin: c.Origin, Size: c.Size, Root: c.Root, Checkpoint: string(msg)}, nil
}

// matchHead fills in a size's root from the reader's (verified) stored
// hashes, and checks a checkpoint's root against them once more.
func matchHead(r *audit.Reader, h *treeHead, arg string) error {
	root, err := r.TreeHash(h.Size)
	if err != nil {
		return fmt.Errorf("audit consistency: %s: %w", arg, err)
	}
	if h.Checkpoint == "" {
		h.Root = root
		return nil
	}
	if root != h.Root {
		return fmt.Errorf("audit consistency: the log's first %d records have root %s, %s says %s: the log was rewritten",
			h.Size, base64.StdEncoding.EncodeToString(root[:]), arg, base64.StdEncoding.EncodeToString(h.Root[:]))
	}
	return nil
}
