//go:build !linux

package storage

import "os"

// startWriteback does nothing here: the kernel's own writeback decides.
var startWriteback = func(f *os.File, off, n int64) {}

// backgroundSync fsyncs f (see writeback_linux.go).
var backgroundSync = func(f *os.File) error { return f.Sync() }
