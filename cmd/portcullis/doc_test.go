package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasDocGo keeps the house rule: each package has a doc.go
// that reads as a short tour of it.
func TestEveryPackageHasDocGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/portcullis-dev/portcullis/...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			t.Errorf("package in %s has no doc.go", dir)
		}
	}
}
