package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

type serveFlags struct {
	dev        bool
	configFile string
	dataDir    string
	listen     string
	opsListen  string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway.

With --dev it needs nothing else on the machine: an embedded dev CA issues
SVIDs to the gateway and to three demo workloads (written under
<data-dir>/dev/), an in-process fake LLM provider serves a few models, and the
default policy bundle decides. With --config it runs from a YAML file (see
docs/configuration.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.dev == (f.configFile != "") {
				return errors.New("serve: pass exactly one of --dev or --config FILE")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.dev, "dev", false, "run with the embedded dev CA, fake provider and default policy")
	fl.StringVar(&f.configFile, "config", "", "YAML configuration file")
	fl.StringVar(&f.dataDir, "data-dir", "./.portcullis", "directory for dev-mode state (CA, SVIDs, audit log)")
	fl.StringVar(&f.listen, "listen", "", "listen address (default 127.0.0.1:8443, or the config's listen)")
	fl.StringVar(&f.opsListen, "ops-listen", "", "operations listener for /metrics, /healthz, /readyz (default: the config's ops.listen; off in --dev unless set)")
	return cmd
}

// gateway is everything serve builds, in the order it must be closed.
type gateway struct {
	log      *logrus.Logger
	source   identity.Source
	engine   *policy.Engine
	audit    *audit.Log
	trust    []spiffeid.TrustDomain
	handler  *proxy.Gateway
	cfg      *config.Config
	closers  []func() error
	devNotes func(addr string) string

	signer      note.Signer // signs audit checkpoints
	verifierKey string      // its verifier key, for auditors

	registry      *prometheus.Registry
	svidRotations prometheus.Counter
	extraReady    []readyCheck // readiness conditions of optional parts (e.g. the state store)

	devJWT *identity.DevJWTIssuer // dev mode: issues the demo human's user token (grants.go)
}

func (g *gateway) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		if err := g.closers[i](); err != nil {
			g.log.WithError(err).Warn("shutdown: close failed")
		}
	}
}

func serve(ctx context.Context, f serveFlags, out interface{ Write([]byte) (int, error) }) error {
	var (
		g   *gateway
		err error
	)
	if f.dev {
		g, err = buildDev(ctx, f)
	} else {
		g, err = buildFromConfig(ctx, f.configFile)
	}
	if err != nil {
		return err
	}
	defer g.close()
	if f.listen != "" {
		g.cfg.Listen = f.listen
	}
	if f.opsListen != "" {
		g.cfg.Ops = config.Ops{Listen: f.opsListen}
	}

	tlsCfg, err := identity.ServerTLSConfig(g.source, g.trust)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", g.cfg.Listen, err)
	}
	addr := ln.Addr().String()
	opts := proxy.ServerOptions{
		ReadHeaderTimeout: g.cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    g.cfg.Limits.MaxHeaderBytes,
		WriteByteTimeout:  g.cfg.Limits.WriteByteTimeout,
	}
	var pc net.PacketConn
	if !g.cfg.DisableHTTP3 {
		// HTTP/3 on the same port number as TCP.
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			ln.Close()
			return fmt.Errorf("serve: listen on udp %s for HTTP/3 (set disable_http3 to run without it): %w", addr, err)
		}
		opts.HTTP3Port = pc.LocalAddr().(*net.UDPAddr).Port
	}
	srv, err := proxy.NewServer(g.handler, tlsCfg, opts, g.log)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}
	if _, err := g.audit.Append(ctx, &audit.Event{Type: "startup", Detail: map[string]any{
		"listen": addr, "policy_revision": g.engine.Revision(), "version": version,
	}}); err != nil {
		ln.Close()
		return fmt.Errorf("serve: audit log not writable: %w", err)
	}

	if !g.cfg.Ops.Disable && g.cfg.Ops.Listen != "" {
		ops, err := net.Listen("tcp", g.cfg.Ops.Listen)
		if err != nil {
			ln.Close()
			if pc != nil {
				pc.Close()
			}
			return fmt.Errorf("serve: ops listener on %s: %w", g.cfg.Ops.Listen, err)
		}
		g.log.WithField("listen", ops.Addr().String()).Info("ops listener: /metrics /healthz /readyz")
		go g.serveOps(ctx, ops, g.registry)
	}
	// The first checkpoint before serving: it covers the startup record
	// and, after a crash, the recovery record, so the checkpoint endpoint
	// and `audit prove` work from the start, not after one interval.
	g.signCheckpoint(g.signer)
	go g.signCheckpoints(ctx, g.signer, g.cfg.Audit.CheckpointInterval)
	g.log.WithFields(logrus.Fields{"origin": g.signer.Name(), "verifier_key": g.verifierKey}).Info("audit checkpoints are signed; auditors verify them with this key")
	go g.watchSVID(ctx, 10*time.Second)
	go g.reloadOnSIGHUP(ctx)
	if g.cfg.Policy.Watch {
		go g.engine.Watch(ctx, 2*time.Second)
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	protocols := "HTTP/2 and HTTP/1.1 over TCP"
	if pc != nil {
		go func() { errc <- srv.ServeHTTP3(pc) }()
		protocols += ", HTTP/3 over UDP"
	}
	g.log.WithFields(logrus.Fields{"listen": addr, "policy_revision": g.engine.Revision()}).Info("portcullis is serving mTLS: " + protocols)
	if g.devNotes != nil {
		fmt.Fprint(out, g.devNotes(addr))
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	g.log.WithField("timeout", g.cfg.Limits.ShutdownTimeout).Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.Limits.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		g.log.WithError(err).Warn("shutdown: requests still in flight were cancelled")
	}
	if err := g.handler.Close(); err != nil {
		g.log.WithError(err).Warn("shutdown: upstream sessions not closed cleanly")
	}
	if _, err := g.audit.Append(context.Background(), &audit.Event{Type: "shutdown"}); err != nil {
		g.log.WithError(err).Error("shutdown: audit record not written")
	}
	g.finalCheckpoint(g.signer)
	return nil
}

// reloadOnSIGHUP re-reads the policy bundle on SIGHUP. A broken bundle is
// refused and the running one stays.
func (g *gateway) reloadOnSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			old := g.engine.Revision()
			err := g.engine.Reload(ctx)
			ev := &audit.Event{Type: "policy.reload", Detail: map[string]any{"from": old, "to": g.engine.Revision()}}
			if err != nil {
				ev.Error = err.Error()
				g.log.WithError(err).Error("policy reload refused; keeping the running bundle")
			} else {
				g.log.WithField("revision", g.engine.Revision()).Info("policy reloaded")
			}
			if _, aerr := g.audit.Append(ctx, ev); aerr != nil {
				g.log.WithError(aerr).Error("audit: policy reload record not written")
			}
		}
	}
}

func newLogger(format, level string) (*logrus.Logger, error) {
	l := logrus.New()
	l.Out = os.Stderr
	if format == "json" {
		l.Formatter = &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	} else {
		l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	}
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	l.Level = lv
	return l, nil
}
