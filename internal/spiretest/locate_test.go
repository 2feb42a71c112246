package spiretest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// stopTB records how a test would have ended instead of ending it.
type stopTB struct {
	testing.TB
	ended string // "skip: ..." or "fatal: ..."
}

func (s *stopTB) Helper() {}
func (s *stopTB) Skip(args ...any) {
	s.ended = "skip: " + fmt.Sprint(args...)
	runtime.Goexit()
}
func (s *stopTB) Fatalf(format string, args ...any) {
	s.ended = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func binDirEnding(t *testing.T, root string) string {
	rec := &stopTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		binDir(rec, root)
	}()
	<-done
	return rec.ended
}

func TestBinDirSkipsOrFailsWithoutBinaries(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(EnvBin, empty)

	t.Setenv(EnvRequire, "")
	got := binDirEnding(t, "/nonexistent")
	if !strings.HasPrefix(got, "skip: ") || !strings.Contains(got, "make spire-build") || !strings.Contains(got, empty) {
		t.Errorf("without %s: got %q, want a skip naming %s and make spire-build", EnvRequire, got, empty)
	}

	t.Setenv(EnvRequire, "1")
	got = binDirEnding(t, "/nonexistent")
	if !strings.HasPrefix(got, "fatal: ") || !strings.Contains(got, EnvRequire+"=1") {
		t.Errorf("with %s=1: got %q, want a failure", EnvRequire, got)
	}

	// Present and executable: no skip.
	for _, name := range []string{"spire-server", "spire-agent"} {
		if err := os.WriteFile(filepath.Join(empty, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := binDirEnding(t, "/nonexistent"); got != "" {
		t.Errorf("with both binaries: got %q, want no skip or failure", got)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "spire", "server.conf")); err != nil {
		t.Errorf("RepoRoot %s has no spire/server.conf: %v", root, err)
	}
}
