//go:build !linux

package audit

import "os"

// dataEnd returns size: without SEEK_DATA the whole file is read.
func dataEnd(_ *os.File, size int64) int64 { return size }
