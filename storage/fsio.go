package storage

// This file is the one seam through which storage performs every file
// operation that matters for durability: fsync of a file or a directory,
// rename, remove and truncate. Files stay *os.File everywhere (FileRange
// hands them to sendfile); the seam only tells registered observers what
// became durable, after the operation succeeded. Crash tests use it to
// keep only synced data (storagetest.CrashableDir), and a broker can log
// it to an fsync journal (SKEIN_FSYNC_JOURNAL, see fsjournal.go) for the
// end-to-end machine-crash test.

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// FileObserver is told of every durability-relevant file operation storage
// performed, after it succeeded. Paths are absolute when the data
// directory was given as an absolute path. A rename or remove of a
// directory applies to everything under it. Methods may be called from
// any goroutine, concurrently; they must not call back into storage.
//
// This is a fault-injection hook for tests; production brokers run
// without an observer.
type FileObserver interface {
	// FileSynced: the file at path was fsynced; size is its size then.
	FileSynced(path string, size int64)
	// DirSynced: the directory was fsynced.
	DirSynced(path string)
	// FileRenamed: oldPath (a file or a directory) was renamed to newPath.
	FileRenamed(oldPath, newPath string)
	// FileRemoved: path (a file, or a directory with everything under it)
	// was removed.
	FileRemoved(path string)
	// FileTruncated: the file was truncated to size (not yet durable:
	// a FileSynced follows when storage needs it to be).
	FileTruncated(path string, size int64)
}

var (
	observersMu sync.Mutex
	// observers is read without the lock on every operation; it is
	// replaced, never modified in place.
	observers atomic.Pointer[[]FileObserver]
)

// AddFileObserver registers o until the returned function is called.
func AddFileObserver(o FileObserver) (remove func()) {
	observersMu.Lock()
	defer observersMu.Unlock()
	var cur []FileObserver
	if p := observers.Load(); p != nil {
		cur = *p
	}
	next := append(append([]FileObserver(nil), cur...), o)
	observers.Store(&next)
	return func() {
		observersMu.Lock()
		defer observersMu.Unlock()
		var cur []FileObserver
		if p := observers.Load(); p != nil {
			cur = *p
		}
		next := make([]FileObserver, 0, len(cur))
		for _, x := range cur {
			if x != o {
				next = append(next, x)
			}
		}
		observers.Store(&next)
	}
}

func notify(fn func(FileObserver)) {
	if p := observers.Load(); p != nil {
		for _, o := range *p {
			fn(o)
		}
	}
}

func observed() bool {
	p := observers.Load()
	return p != nil && len(*p) > 0
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// syncFile fsyncs f, whose name is now path (a segment's file keeps the
// name it was opened with through renames: the caller knows the current
// one).
func syncFile(f *os.File, path string) error {
	if err := f.Sync(); err != nil {
		return mapIOError(err)
	}
	if observed() {
		size := int64(-1)
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		p := absPath(path)
		notify(func(o FileObserver) { o.FileSynced(p, size) })
	}
	return nil
}

// syncPath fsyncs the file at path (nothing when it does not exist).
func syncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return mapIOError(err)
	}
	defer f.Close()
	return syncFile(f, path)
}

// syncDir fsyncs a directory, making the renames, creations and removals
// of its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return mapIOError(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return mapIOError(err)
	}
	if observed() {
		p := absPath(dir)
		notify(func(o FileObserver) { o.DirSynced(p) })
	}
	return nil
}

// renameFile renames a file or directory.
func renameFile(oldPath, newPath string) error {
	if err := os.Rename(oldPath, newPath); err != nil {
		return mapIOError(err)
	}
	if observed() {
		a, b := absPath(oldPath), absPath(newPath)
		notify(func(o FileObserver) { o.FileRenamed(a, b) })
	}
	return nil
}

// removeFile removes a file; a missing one is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return mapIOError(err)
	}
	if observed() {
		p := absPath(path)
		notify(func(o FileObserver) { o.FileRemoved(p) })
	}
	return nil
}

// removeAll removes a directory and everything under it.
func removeAll(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return mapIOError(err)
	}
	if observed() {
		p := absPath(path)
		notify(func(o FileObserver) { o.FileRemoved(p) })
	}
	return nil
}

// truncateFile truncates f, whose name is now path, to size (not durable
// until syncFile).
func truncateFile(f *os.File, path string, size int64) error {
	if err := f.Truncate(size); err != nil {
		return mapIOError(err)
	}
	if observed() {
		p := absPath(path)
		notify(func(o FileObserver) { o.FileTruncated(p, size) })
	}
	return nil
}
