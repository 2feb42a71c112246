package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// stateStore is what the gateway keeps its shared state in: grants,
// revocations and budgets, approvals, rate-limit counters and the set of
// grant verification keys.
type stateStore interface {
	store.Store
	store.Approvals
	store.RateLimiter
	store.GrantKeySet
}

// openStore opens the backend that store.backend names, closes it with the
// gateway, and adds the readiness check "store".
func (g *gateway) openStore(ctx context.Context) (stateStore, error) {
	sc := g.cfg.Store
	// A revocation must outlive its grant as long as any verifier, allowing
	// for clock skew, could still accept the grant.
	retention, maxTTL := sc.Retention+g.cfg.Grants.ClockSkew, g.cfg.Grants.MaxTTL
	if sc.Backend != "etcd" {
		path := g.cfg.Grants.Store
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("grants.store: %w", err)
		}
		st, err := store.OpenBolt(path, store.BoltOptions{Retention: retention, MaxGrantTTL: maxTTL})
		if err != nil {
			return nil, fmt.Errorf("grants.store: %w", err)
		}
		g.closers = append(g.closers, st.Close)
		g.extraReady = append(g.extraReady, readyCheck{name: "store", check: func(time.Time) (string, error) {
			_, err := st.Usage(context.Background(), "readyz")
			return "bolt " + path, err
		}})
		return st, nil
	}
	ec := sc.Etcd
	opts := store.EtcdOptions{
		Endpoints: ec.Endpoints, Prefix: ec.Prefix, Username: ec.Username,
		DialTimeout: ec.DialTimeout, RequestTimeout: ec.RequestTimeout, StaleAfter: ec.StaleAfter,
		Retention: retention, MaxGrantTTL: maxTTL, Logger: g.log,
	}
	var err error
	if opts.TLS, err = etcdTLS(ec.CAFile, ec.CertFile, ec.KeyFile); err != nil {
		return nil, fmt.Errorf("store.etcd: %w", err)
	}
	if ec.PasswordFile != "" {
		b, err := os.ReadFile(ec.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.password_file: %w", err)
		}
		opts.Password = strings.TrimSpace(string(b))
	}
	st, err := store.OpenEtcd(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store.etcd: %w", err)
	}
	g.closers = append(g.closers, st.Close)
	g.extraReady = append(g.extraReady, readyCheck{name: "store", check: st.Health})
	g.log.WithField("endpoints", ec.Endpoints).WithField("prefix", ec.Prefix).Info("state store: etcd")
	return st, nil
}

// etcdTLS builds the client TLS configuration from PEM files; nil when none
// is set.
func etcdTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
