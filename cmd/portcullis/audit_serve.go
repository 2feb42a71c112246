package main

import (
	"context"
	"fmt"
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
// audit directory (<dir>.signing-key) and is generated on first start, named
// audit.origin or "<hostname>/portcullis-audit".
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
	origin := a.Origin
	if origin == "" {
		host, err := os.Hostname()
		if err != nil || host == "" || strings.ContainsAny(host, " +") {
			host = "localhost"
		}
		origin = host + "/portcullis-audit"
	}
	dir := filepath.Clean(a.Dir)
	s, vkey, err := audit.LoadOrGenerateKeyFile(filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".signing-key"), origin)
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
