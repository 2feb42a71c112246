package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Store chooses where grant records, revocations, approvals and budgets
// live: a bbolt file for a single gateway (grants.store), or an etcd
// cluster that every replica shares (docs/deployment.md).
type Store struct {
	// Backend is "bolt" (default) or "etcd".
	Backend string `yaml:"backend"`
	Etcd    Etcd   `yaml:"etcd"`
	// Retention is how long grant records, revocations, approvals and
	// published grant keys are kept past their expiry before they are
	// deleted (grants.clock_skew is added to it).
	Retention time.Duration `yaml:"retention"`
}

// Etcd is the etcd cluster of a replicated gateway.
type Etcd struct {
	// Endpoints are the members' client URLs (https:// with tls, http://
	// only on loopback).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the key prefix; replicas of one fleet share it.
	Prefix string `yaml:"prefix"`
	// TLS: the CA that signed the members' certificates, and this
	// replica's client certificate and key (etcd --client-cert-auth).
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Username and PasswordFile authenticate when etcd auth is enabled.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// DialTimeout bounds connecting at start; RequestTimeout every request.
	DialTimeout    time.Duration `yaml:"dial_timeout"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// StaleAfter is how long the replica's revocation view may go
	// unconfirmed before revocation checks fail closed: the bound on how
	// long a revocation takes to reach every replica.
	StaleAfter time.Duration `yaml:"stale_after"`
}

// Store defaults.
const (
	DefaultEtcdPrefix         = "/portcullis/"
	DefaultEtcdDialTimeout    = 5 * time.Second
	DefaultEtcdRequestTimeout = 2 * time.Second
	DefaultEtcdStaleAfter     = 2 * time.Second
	DefaultStoreRetention     = 10 * time.Minute
)

func (s *Store) setDefaults() {
	if s.Backend == "" {
		s.Backend = "bolt"
	}
	if s.Retention == 0 {
		s.Retention = DefaultStoreRetention
	}
	if s.Backend != "etcd" {
		return
	}
	e := &s.Etcd
	if e.Prefix == "" {
		e.Prefix = DefaultEtcdPrefix
	}
	if e.DialTimeout == 0 {
		e.DialTimeout = DefaultEtcdDialTimeout
	}
	if e.RequestTimeout == 0 {
		e.RequestTimeout = DefaultEtcdRequestTimeout
	}
	if e.StaleAfter == 0 {
		e.StaleAfter = DefaultEtcdStaleAfter
	}
}

func (s *Store) validate() error {
	if s.Retention < 0 {
		return &FieldError{"store.retention", "must not be negative"}
	}
	switch s.Backend {
	case "bolt":
		return nil
	case "etcd":
	default:
		return &FieldError{"store.backend", fmt.Sprintf("%q must be bolt or etcd", s.Backend)}
	}
	e := s.Etcd
	if len(e.Endpoints) == 0 {
		return &FieldError{"store.etcd.endpoints", "at least one endpoint is required"}
	}
	tls := e.CAFile != "" || e.CertFile != ""
	for i, ep := range e.Endpoints {
		f := fmt.Sprintf("store.etcd.endpoints[%d]", i)
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return &FieldError{f, fmt.Sprintf("%q must be an http(s)://host:port URL", ep)}
		}
		if tls && u.Scheme != "https" {
			return &FieldError{f, fmt.Sprintf("%q: use https:// with ca_file/cert_file", ep)}
		}
	}
	if !strings.HasPrefix(e.Prefix, "/") || strings.ContainsAny(e.Prefix, " \t\n") {
		return &FieldError{"store.etcd.prefix", fmt.Sprintf("%q must start with / and contain no spaces", e.Prefix)}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		return &FieldError{"store.etcd", "set cert_file and key_file together"}
	}
	for _, f := range []struct{ name, path string }{
		{"ca_file", e.CAFile}, {"cert_file", e.CertFile}, {"key_file", e.KeyFile}, {"password_file", e.PasswordFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return &FieldError{"store.etcd." + f.name, fmt.Sprintf("cannot read %q: %v", f.path, err)}
		}
	}
	if (e.Username == "") != (e.PasswordFile == "") {
		return &FieldError{"store.etcd", "set username and password_file together"}
	}
	switch {
	case e.DialTimeout < 0 || e.RequestTimeout < 0 || e.StaleAfter < 0:
		return &FieldError{"store.etcd", "timeouts must not be negative"}
	case e.StaleAfter < 200*time.Millisecond:
		return &FieldError{"store.etcd.stale_after", "at least 200ms: the view is confirmed four times per stale_after"}
	case e.StaleAfter > time.Minute:
		return &FieldError{"store.etcd.stale_after", "at most 1m: a revocation must not take longer to reach every replica"}
	}
	return nil
}
