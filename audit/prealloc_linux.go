//go:build linux

package audit

import (
	"os"

	"golang.org/x/sys/unix"
)

// dataEnd returns the end of the last region of f that holds data, so
// that a sparse tail (a file prepared without writing its zeros) is not
// read to find the padding. It returns size when the file system cannot
// say.
func dataEnd(f *os.File, size int64) int64 {
	rc, err := f.SyscallConn()
	if err != nil {
		return size
	}
	end := int64(0)
	cerr := rc.Control(func(fd uintptr) {
		for pos := int64(0); pos < size; {
			d, err := unix.Seek(int(fd), pos, unix.SEEK_DATA)
			if err != nil {
				if err != unix.ENXIO {
					end = size
				}
				return
			}
			h, err := unix.Seek(int(fd), d, unix.SEEK_HOLE)
			if err != nil {
				end = size
				return
			}
			end, pos = h, h
		}
	})
	if cerr != nil {
		return size
	}
	return min(end, size)
}
