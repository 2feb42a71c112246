package identity_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/identity"
	"github.com/portcullis-dev/portcullis/internal/spiffetest"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

type fileFixture struct {
	ca                         *spiffetest.CA
	dir                        string
	certFile, keyFile, bundleF string
}

func newFileFixture(t *testing.T) *fileFixture {
	t.Helper()
	f := &fileFixture{ca: spiffetest.NewCA(t, "example.org"), dir: t.TempDir()}
	f.certFile, f.keyFile = spiffetest.WritePEM(t, f.dir, "svid", f.ca.SVID(t, "spiffe://example.org/portcullis"))
	f.bundleF = filepath.Join(f.dir, "bundle.pem")
	spiffetest.WriteBundlePEM(t, f.bundleF, f.ca.Bundle())
	return f
}

func (f *fileFixture) config(interval time.Duration, log logrus.FieldLogger) identity.FileSourceConfig {
	return identity.FileSourceConfig{
		CertFile: f.certFile, KeyFile: f.keyFile, BundleFile: f.bundleF,
		TrustDomain: f.ca.TrustDomain(), Interval: interval, Logger: log,
	}
}

func currentLeaf(t *testing.T, src x509svid.Source) []byte {
	t.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return svid.Certificates[0].Raw
}

func TestFileSourceRotation(t *testing.T) {
	f := newFileFixture(t)
	log, hook := test.NewNullLogger()
	src, err := identity.NewFileSource(t.Context(), f.config(10*time.Millisecond, log))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	first := currentLeaf(t, src)
	svid, _ := src.GetX509SVID()
	if got, want := svid.ID.String(), "spiffe://example.org/portcullis"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}
	if b, err := src.GetX509BundleForTrustDomain(f.ca.TrustDomain()); err != nil || !b.Equal(f.ca.Bundle()) {
		t.Errorf("bundle = %v, %v; want the CA's", b, err)
	}

	// Rotate: the watcher picks up the new SVID without being asked.
	next := f.ca.SVID(t, "spiffe://example.org/portcullis")
	spiffetest.WritePEM(t, f.dir, "svid", next)
	waitFor(t, "rotated SVID", func() bool { return bytes.Equal(currentLeaf(t, src), next.Certificates[0].Raw) })
	if bytes.Equal(first, next.Certificates[0].Raw) {
		t.Fatal("test bug: same certificate twice")
	}

	// Corrupt the certificate: the last good SVID stays, and the error is logged.
	spiffetest.WriteFile(t, f.certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"), 0o644)
	waitFor(t, "logged reload error", func() bool {
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.ErrorLevel {
				return true
			}
		}
		return false
	})
	if !bytes.Equal(currentLeaf(t, src), next.Certificates[0].Raw) {
		t.Fatal("corrupt file replaced the last good SVID")
	}
	if err := src.Reload(); err == nil || !strings.Contains(err.Error(), f.certFile) {
		t.Errorf("Reload() error = %v, want one naming %s", err, f.certFile)
	}

	// Fixed again: picked up.
	third := f.ca.SVID(t, "spiffe://example.org/portcullis")
	spiffetest.WritePEM(t, f.dir, "svid", third)
	waitFor(t, "SVID after repair", func() bool { return bytes.Equal(currentLeaf(t, src), third.Certificates[0].Raw) })

	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.GetX509SVID(); err == nil {
		t.Error("GetX509SVID after Close: want error")
	}
}

// TestFileSourceKeepsLastGood checks each way a reload can be bad, with
// Reload called directly so that no timing is involved.
func TestFileSourceKeepsLastGood(t *testing.T) {
	otherCA := spiffetest.NewCA(t, "example.org")
	foreignCA := spiffetest.NewCA(t, "other.example")
	tests := []struct {
		name    string
		break_  func(t *testing.T, f *fileFixture)
		wantErr string
	}{
		{"corrupt certificate", func(t *testing.T, f *fileFixture) {
			spiffetest.WriteFile(t, f.certFile, []byte("not PEM"), 0o644)
		}, "cannot parse PEM encoded certificate"},
		{"missing key", func(t *testing.T, f *fileFixture) {
			os.Remove(f.keyFile)
		}, "no such file"},
		{"key of another certificate", func(t *testing.T, f *fileFixture) {
			other := f.ca.SVID(t, "spiffe://example.org/portcullis")
			_, key, _ := other.Marshal()
			spiffetest.WriteFile(t, f.keyFile, key, 0o600)
		}, "does not match"},
		{"leaf rotated before its bundle", func(t *testing.T, f *fileFixture) {
			spiffetest.WritePEM(t, f.dir, "svid", otherCA.SVID(t, "spiffe://example.org/portcullis"))
		}, "does not verify against bundle"},
		{"SVID of another trust domain", func(t *testing.T, f *fileFixture) {
			spiffetest.WritePEM(t, f.dir, "svid", foreignCA.SVID(t, "spiffe://other.example/portcullis"))
		}, `not in trust domain "example.org"`},
		{"expired SVID", func(t *testing.T, f *fileFixture) {
			spiffetest.WritePEM(t, f.dir, "svid", f.ca.SVID(t, "spiffe://example.org/portcullis", spiffetest.Expired()))
		}, "expired"},
		{"empty bundle", func(t *testing.T, f *fileFixture) {
			spiffetest.WriteFile(t, f.bundleF, nil, 0o644)
		}, "bundle"},
		{"oversized bundle", func(t *testing.T, f *fileFixture) {
			spiffetest.WriteFile(t, f.bundleF, bytes.Repeat([]byte("A"), 2<<20), 0o644)
		}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFileFixture(t)
			src, err := identity.NewFileSource(t.Context(), f.config(time.Hour, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			good := currentLeaf(t, src)
			tt.break_(t, f)
			err = src.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "identity: ") {
				t.Errorf("Reload() error = %v, want one containing %q", err, tt.wantErr)
			}
			if !bytes.Equal(currentLeaf(t, src), good) {
				t.Error("bad files replaced the last good SVID")
			}
			if _, err := src.GetX509BundleForTrustDomain(f.ca.TrustDomain()); err != nil {
				t.Errorf("bundle lost: %v", err)
			}
		})
	}
}

func TestFileSourceFederated(t *testing.T) {
	f := newFileFixture(t)
	partner := spiffetest.NewCA(t, "partner.example")
	pf := filepath.Join(f.dir, "partner.pem")
	spiffetest.WriteBundlePEM(t, pf, partner.Bundle())
	cfg := f.config(time.Hour, nil)
	cfg.TrustDomain = spiffeid.TrustDomain{} // taken from the SVID
	cfg.FederatedBundles = map[spiffeid.TrustDomain]string{partner.TrustDomain(): pf}
	src, err := identity.NewFileSource(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, ca := range []*spiffetest.CA{f.ca, partner} {
		if b, err := src.GetX509BundleForTrustDomain(ca.TrustDomain()); err != nil || !b.Equal(ca.Bundle()) {
			t.Errorf("bundle for %s = %v, %v", ca.TrustDomain(), b, err)
		}
	}
	if _, err := src.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("nobody.example")); err == nil {
		t.Error("bundle for an unknown trust domain: want error")
	}
}

func TestNewFileSourceWaitsForFiles(t *testing.T) {
	f := newFileFixture(t)
	cfg := f.config(10*time.Millisecond, nil)
	cfg.CertFile = filepath.Join(f.dir, "later.pem")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := identity.NewFileSource(ctx, cfg); err == nil || !strings.Contains(err.Error(), "later.pem") {
		t.Fatalf("NewFileSource with a missing file = %v, want an error naming it", err)
	}

	// The file appears while NewFileSource waits.
	certPEM, keyPEM, err := f.ca.SVID(t, "spiffe://example.org/portcullis").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		err := os.WriteFile(filepath.Join(f.dir, "later-key.pem"), keyPEM, 0o600)
		if err == nil {
			err = os.WriteFile(filepath.Join(f.dir, "later.pem"), certPEM, 0o644)
		}
		written <- err
	}()
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cfg.KeyFile = filepath.Join(f.dir, "later-key.pem")
	src, err := identity.NewFileSource(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := <-written; err != nil {
		t.Fatal(err)
	}

	if _, err := identity.NewFileSource(t.Context(), identity.FileSourceConfig{CertFile: "x"}); err == nil {
		t.Error("config without key and bundle: want error")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
