//go:build !unix

package audit

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK. Without flock there is no cross-process
// exclusion on this platform; run one writer per directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	return f, nil
}
