package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// checkpointSigner loads the key that signs audit checkpoints. An explicit
// audit.signing_key_file must exist; without one the key lives beside the
// audit directory (<dir>.signing-key). An existing key's name is the origin
// (audit.origin, when set, must match it). A missing key is generated, named
// audit.origin or "<hostname>/portcullis-audit", only while the audit
// directory holds no stored checkpoint: once checkpoints were signed, a new
// key could not verify them, so a missing key is an error (it was lost or
// moved).
func checkpointSigner(a config.Audit) (note.Signer, string, error) {
	if a.SigningKeyFile != "" {
		s, vkey, err := audit.LoadKeyFile(a.SigningKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("audit.signing_key_file: %w (create one with: portcullis audit key --key-file %s --generate --origin NAME)", err, a.SigningKeyFile)
		}
		if a.Origin != "" && s.Name() != a.Origin {
			return nil, "", fmt.Errorf("audit.origin: %q, but the signing key is named %q", a.Origin, s.Name())
		}
		return s, vkey, nil
	}
	dir := filepath.Clean(a.Dir)
	path := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".signing-key")
	_, err := os.Stat(path)
	switch {
	case err == nil:
		s, vkey, err := audit.LoadKeyFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("audit.signing_key_file: %w", err)
		}
		if a.Origin != "" && s.Name() != a.Origin {
			return nil, "", fmt.Errorf("audit.origin: %q, but the signing key %s is named %q", a.Origin, path, s.Name())
		}
		return s, vkey, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("audit.signing_key_file: %w", err)
	}
	signed, err := audit.HasCheckpoints(dir)
	if err != nil {
		return nil, "", fmt.Errorf("audit.dir: %w", err)
	}
	if signed {
		return nil, "", fmt.Errorf("audit.signing_key_file: the signing key %s is missing, but %s holds checkpoints it signed: "+
			"the key was lost or moved; restore it (or set audit.signing_key_file to where it is now), "+
			"or start a new log with another audit.dir; a new key would make the stored checkpoints unverifiable", path, dir)
	}
	origin := a.Origin
	if origin == "" {
		host, err := os.Hostname()
		if err != nil || host == "" || strings.ContainsAny(host, " +") {
			host = "localhost"
		}
		origin = host + "/portcullis-audit"
	}
	if _, err := audit.GenerateKeyFile(path, origin); err != nil {
		return nil, "", fmt.Errorf("audit.signing_key_file: %w", err)
	}
	s, vkey, err := audit.LoadKeyFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("audit.signing_key_file: %w", err)
	}
	return s, vkey, nil
}

// signCheckpoints signs a checkpoint every interval while ctx lives (only
// when the log grew: SignCheckpoint skips an idle log).
func (g *gateway) signCheckpoints(ctx context.Context, s note.Signer, interval time.Duration) {
	if interval <= 0 {
		interval = config.DefaultCheckpointInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.signCheckpoint(s)
		}
	}
}

// signCheckpoint signs a checkpoint of the log as it is now. A failure is
// logged, not fatal: records are still durable and chained, and the next
// checkpoint covers them.
func (g *gateway) signCheckpoint(s note.Signer) {
	if _, err := g.audit.SignCheckpoint(s); err != nil {
		g.log.WithError(err).Error("audit: checkpoint not signed")
	}
}

// finalCheckpoint signs the checkpoint that covers the shutdown record.
func (g *gateway) finalCheckpoint(s note.Signer) {
	msg, err := g.audit.SignCheckpoint(s)
	if err != nil {
		g.log.WithError(err).Error("shutdown: final audit checkpoint not signed")
		return
	}
	g.log.WithField("checkpoint", strings.SplitN(string(msg), "\n", 3)[1]).Info("shutdown: final audit checkpoint signed")
}
