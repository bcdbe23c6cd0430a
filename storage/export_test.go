package storage

import "os"

// SetStartWriteback replaces what starts the kernel's writeback of a
// segment range (startWriteback) until the returned func restores it.
func SetStartWriteback(f func(file *os.File, off, n int64)) (restore func()) {
	old := startWriteback
	startWriteback = f
	return func() { startWriteback = old }
}

// SetBackgroundSync replaces what a segment's background sync calls
// (backgroundSync) until the returned func restores it.
func SetBackgroundSync(f func(file *os.File) error) (restore func()) {
	old := backgroundSync
	backgroundSync = f
	return func() { backgroundSync = old }
}
