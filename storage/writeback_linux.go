package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts the kernel writing f's dirty pages in [off,
// off+n) to disk and returns without waiting for them (no fsync: nothing
// becomes durable here). Errors are ignored: it is only advice, and a
// failing disk shows at the next fsync. A variable, for tests.
var startWriteback = func(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}

// backgroundSync waits until f's data written so far is on disk
// (fdatasync). It runs on a goroutine of its own, never under the log's
// lock: see Log.writeBack, and segment.sync, which reports its error. A
// variable, for tests.
var backgroundSync = func(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// Control holds the file open for the call: a segment closed
	// meanwhile is closed once it returns.
	cerr := rc.Control(func(fd uintptr) { err = unix.Fdatasync(int(fd)) })
	if cerr != nil {
		return cerr
	}
	return err
}
