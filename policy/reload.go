package policy

import (
	"context"
	"fmt"
	"time"
)

// Reload re-reads BundleDir, compiles and prepares it, and swaps it in
// atomically, then purges the decision cache. On any error the engine keeps
// the last good bundle and Reload returns the error. With the embedded
// default bundle (BundleDir "") it does nothing. Concurrent Decide calls
// are never blocked; concurrent Reloads run one at a time.
func (e *Engine) Reload(ctx context.Context) error {
	if e.opts.BundleDir == "" {
		return nil
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	old := e.state.Load()
	st, err := e.load(ctx)
	if err != nil {
		err = fmt.Errorf("policy: reload %s (keeping revision %s): %w", e.opts.BundleDir, old.revision, err)
		e.log.WithError(err).WithField("revision", old.revision).Error("policy reload failed")
		e.notify(old.revision, old.revision, err)
		return err
	}
	e.state.Store(st)
	if e.cache != nil {
		e.cache.Purge()
	}
	e.log.WithField("old_revision", old.revision).WithField("revision", st.revision).Info("policy reloaded")
	e.notify(old.revision, st.revision, nil)
	return nil
}

func (e *Engine) notify(oldRev, newRev string, err error) {
	if e.opts.OnReload != nil {
		e.opts.OnReload(oldRev, newRev, err)
	}
}

// Watch polls BundleDir every interval (0 means one second) and calls Reload
// when the bundle's content hash differs from the one in use. A bundle that
// failed to load is not retried until its content changes again. It returns
// when ctx is done; with the embedded bundle it just waits for ctx.
//
// Polling the content, rather than watching file events, also sees the
// symlink swaps Kubernetes uses for mounted ConfigMaps. SIGHUP handling
// belongs to the caller: call Reload.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	if e.opts.BundleDir == "" {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed [32]byte // content that last failed to load
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, err := hashBundle(e.fsys)
		if err != nil {
			e.log.WithError(err).Warn("policy watch: cannot read bundle")
			continue
		}
		if h == e.state.Load().hash || h == failed {
			continue
		}
		if err := e.Reload(ctx); err != nil {
			failed = h
			continue
		}
		failed = [32]byte{}
	}
}
