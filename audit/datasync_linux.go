//go:build linux

package audit

import (
	"errors"
	"os"
	"syscall"
)

// syncData makes f's written bytes durable. On Linux a segment is
// fdatasync'd: it flushes the data and the metadata needed to read it back
// (the file's size), but not timestamps, which saves the journal commit an
// fsync pays for the modification time on every group.
func syncData(f segmentFile) error {
	o, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	rc, err := o.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: o.Name(), Err: serr}
	}
	return nil
}
