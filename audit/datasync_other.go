//go:build !linux

package audit

// syncData makes f's written bytes durable: fsync where fdatasync is not
// available.
func syncData(f segmentFile) error { return f.Sync() }
