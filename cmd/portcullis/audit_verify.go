package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
)

// Verifying several logs at once: one per gateway replica, each with its
// own origin and checkpoint key. Keys and kept checkpoints are matched to a
// log by origin (a key's name is its log's origin), so an auditor passes
// every replica's key and checkpoint in one command. With one log and one
// key, the key is used whatever its name, as before.

// verifyArgs accepts one or more log directories.
func verifyArgs(_ *cobra.Command, args []string) error {
	if len(args) == 0 {
		return errors.New("accepts 1 arg or more (audit log directories), received 0")
	}
	return nil
}

// keptCheckpoint is a signed checkpoint the auditor kept, and its origin.
type keptCheckpoint struct {
	file, origin string
	msg          []byte
}

// verifyLogs verifies each directory and reports each; it fails if any log
// fails, after reporting all of them.
func verifyLogs(cmd *cobra.Command, dirs, keyArgs, ckptFiles []string) error {
	var keys []note.Verifier
	for _, k := range keyArgs {
		v, err := loadVerifier(k)
		if err != nil {
			return err
		}
		keys = append(keys, v)
	}
	var kept []keptCheckpoint
	for _, f := range ckptFiles {
		if len(keys) == 0 {
			return errors.New("audit verify: --checkpoint needs --key")
		}
		b, err := readInput(cmd, f)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		c, err := parseUnverified(b)
		if err != nil {
			return fmt.Errorf("audit verify: --checkpoint %s is not a signed checkpoint: %w", f, err)
		}
		for _, k := range kept {
			if k.origin == c.Origin {
				return fmt.Errorf("audit verify: --checkpoint %s and %s are both of origin %q: keep one per log", k.file, f, c.Origin)
			}
		}
		kept = append(kept, keptCheckpoint{file: f, origin: c.Origin, msg: b})
	}
	w := cmd.OutOrStdout()
	if len(dirs) == 1 && len(keys) <= 1 && len(kept) <= 1 {
		o := audit.VerifyOptions{}
		if len(keys) == 1 {
			o.Key = keys[0]
		}
		var file string
		if len(kept) == 1 {
			o.Checkpoint, file = kept[0].msg, kept[0].file
		}
		return verifyOne(w, dirs[0], o, file)
	}
	failed := 0
	origins := map[string]string{} // origin → dir
	for _, dir := range dirs {
		o, file, err := optionsFor(dir, keys, kept)
		if err == nil {
			if other, dup := origins[o.origin]; dup && o.origin != "" {
				err = fmt.Errorf("it has the same origin %q as %s: each replica must sign with its own origin and key", o.origin, other)
			}
			origins[o.origin] = dir
		}
		if err == nil {
			err = verifyOne(w, dir, o.VerifyOptions, file)
		} else {
			err = fmt.Errorf("audit log %s is NOT intact: %w", dir, err)
		}
		if err != nil {
			fmt.Fprintln(w, err)
			failed++
		}
	}
	var unmatched []string
	for _, k := range kept {
		if _, ok := origins[k.origin]; !ok {
			unmatched = append(unmatched, fmt.Sprintf("--checkpoint %s (origin %q) matches none of the logs", k.file, k.origin))
		}
	}
	for _, u := range unmatched {
		fmt.Fprintln(w, u)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d audit logs are NOT intact", failed, len(dirs))
	}
	if len(unmatched) > 0 {
		return fmt.Errorf("audit verify: %s", strings.Join(unmatched, "; "))
	}
	fmt.Fprintf(w, "all %d audit logs are intact\n", len(dirs))
	return nil
}

type logOptions struct {
	audit.VerifyOptions
	origin string
}

// optionsFor finds dir's origin from its stored checkpoints and picks the
// key and kept checkpoint of that origin.
func optionsFor(dir string, keys []note.Verifier, kept []keptCheckpoint) (logOptions, string, error) {
	rep, err := audit.Verify(dir)
	if err != nil {
		return logOptions{}, "", err
	}
	o := logOptions{origin: rep.Latest.Origin}
	if len(keys) == 0 {
		return o, "", nil
	}
	if o.origin == "" {
		return o, "", errors.New("it has no stored checkpoint, so no key can be matched to it")
	}
	for _, k := range keys {
		if k.Name() == o.origin {
			o.Key = k
		}
	}
	if o.Key == nil {
		return o, "", fmt.Errorf("no --key is named for its origin %q", o.origin)
	}
	var file string
	for _, c := range kept {
		if c.origin == o.origin {
			o.Checkpoint, file = c.msg, c.file
		}
	}
	return o, file, nil
}

// verifyOne verifies one log and prints its report.
func verifyOne(w io.Writer, dir string, o audit.VerifyOptions, ckptFile string) error {
	rep, err := audit.VerifyWith(dir, o)
	if err != nil {
		return fmt.Errorf("audit log %s is NOT intact: %w", dir, err)
	}
	origin := ""
	if rep.Latest.Origin != "" {
		origin = " (origin " + rep.Latest.Origin + ")"
	}
	fmt.Fprintf(w, "audit log %s%s is intact: %d records in %d segments, head %s, root %s\n",
		dir, origin, rep.Records, rep.Segments, rep.Head, rep.Root)
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
}
