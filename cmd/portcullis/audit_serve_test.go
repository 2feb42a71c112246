package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// signedAuditDir makes an audit directory with one record and one stored
// checkpoint signed by key (a key file path beside it, as serve keeps it).
func signedAuditDir(t *testing.T, keyName string) (dir, keyPath string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	keyPath = dir + ".signing-key"
	if _, err := audit.GenerateKeyFile(keyPath, keyName); err != nil {
		t.Fatal(err)
	}
	s, _, err := audit.LoadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(dir, audit.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), &audit.Event{Type: "startup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SignCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keyPath
}

func hostOrigin(t *testing.T) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil || host == "" || strings.ContainsAny(host, " +") {
		host = "localhost"
	}
	return host + "/portcullis-audit"
}

func TestCheckpointSignerOrigin(t *testing.T) {
	// A key made on another host: never this host's default origin.
	other := "not-" + hostOrigin(t)
	tests := []struct {
		name     string
		setup    func(t *testing.T) string // returns audit.dir
		origin   string
		wantName string // "" with wantErr
		wantErr  string
	}{
		{
			name:     "existing key from another host, no origin: the key's name",
			setup:    func(t *testing.T) string { d, _ := signedAuditDir(t, other); return d },
			wantName: other,
		},
		{
			name:     "existing key, matching origin",
			setup:    func(t *testing.T) string { d, _ := signedAuditDir(t, "vm/portcullis-audit"); return d },
			origin:   "vm/portcullis-audit",
			wantName: "vm/portcullis-audit",
		},
		{
			name:    "existing key, other origin",
			setup:   func(t *testing.T) string { d, _ := signedAuditDir(t, "vm/portcullis-audit"); return d },
			origin:  "gw.example/audit",
			wantErr: `is named "vm/portcullis-audit"`,
		},
		{
			name:     "fresh log, no origin: hostname",
			setup:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "audit") },
			wantName: "", // hostOrigin(t)
		},
		{
			name:     "fresh log, origin",
			setup:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "audit") },
			origin:   "gw.example/audit",
			wantName: "gw.example/audit",
		},
		{
			name: "key lost after checkpoints were signed",
			setup: func(t *testing.T) string {
				d, k := signedAuditDir(t, "vm/portcullis-audit")
				if err := os.Remove(k); err != nil {
					t.Fatal(err)
				}
				return d
			},
			wantErr: "is missing, but",
		},
		{
			name: "key lost, origin configured: still refused",
			setup: func(t *testing.T) string {
				d, k := signedAuditDir(t, "vm/portcullis-audit")
				if err := os.Remove(k); err != nil {
					t.Fatal(err)
				}
				return d
			},
			origin:  "vm/portcullis-audit",
			wantErr: "the key was lost or moved",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			keyPath := dir + ".signing-key"
			_, statErr := os.Stat(keyPath)
			keyExisted := statErr == nil
			s, vkey, err := checkpointSigner(config.Audit{Dir: dir, Origin: tt.origin})
			if wantErr := tt.wantErr; wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("checkpointSigner: got %v, want an error saying %q", err, wantErr)
				}
				if _, serr := os.Stat(keyPath); !keyExisted && !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("a refused start created %s", keyPath)
				}
				return
			}
			if err != nil {
				t.Fatalf("checkpointSigner: %v", err)
			}
			want := tt.wantName
			if want == "" {
				want = hostOrigin(t)
			}
			if got := s.Name(); got != want {
				t.Errorf("origin: got %q, want %q", got, want)
			}
			v, err := note.NewVerifier(vkey)
			if err != nil || v.Name() != want {
				t.Errorf("verifier key %q: %v", vkey, err)
			}
		})
	}
}

// TestAuditOpenWithReplacedKey: a key file replaced by another key of the
// same name is noticed before the gateway signs anything.
func TestAuditOpenWithReplacedKey(t *testing.T) {
	dir, keyPath := signedAuditDir(t, "vm/portcullis-audit")
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.GenerateKeyFile(keyPath, "vm/portcullis-audit"); err != nil {
		t.Fatal(err)
	}
	_, vkey, err := checkpointSigner(config.Audit{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(dir, audit.Options{NoSync: true, Verifier: v})
	if err == nil {
		l.Close()
		t.Fatal("Open accepted checkpoints signed by the replaced key")
	}
	err = auditOpenError(dir, err)
	if !errors.Is(err, audit.ErrKeyMismatch) || !strings.Contains(err.Error(), "restore the key that signed it") {
		t.Errorf("got %v, want ErrKeyMismatch telling the operator to restore the key", err)
	}
}
