package storagetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skein-io/skein/storage"
)

// CrashableDir simulates machine crashes of a storage data directory on
// the real filesystem, in the spirit of pebble's crashable in-memory
// filesystem. It observes storage's file operations (storage.FileObserver)
// and remembers each file's content as of its last fsync.
//
// The durability model:
//   - a file's content survives a crash only as of its last fsync; a file
//     never fsynced comes back empty (0 bytes);
//   - a truncation is not durable by itself: until the next fsync the
//     file comes back with its last synced content (so a tail cut away
//     without an fsync returns);
//   - renames and removes (of files and directories) are durable once
//     they returned, as on a journaling filesystem that orders metadata
//     (a directory fsync adds nothing in this model);
//   - created directories survive.
//
// Crash rewrites the directory to what survives; the storage.Manager that
// had it open must be abandoned first (Manager.Abandon). Only operations
// made after NewCrashableDir are seen; files present then count as synced.
type CrashableDir struct {
	dir string

	mu     sync.Mutex
	synced map[string][]byte // absolute path -> content at its last fsync
	remove func()
}

// NewCrashableDir starts observing dir (created if needed) until Close.
func NewCrashableDir(dir string) (*CrashableDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	c := &CrashableDir{dir: abs, synced: map[string][]byte{}}
	if err := c.snapshotAll(); err != nil {
		return nil, err
	}
	c.remove = storage.AddFileObserver(c)
	return c, nil
}

// Dir is the observed directory (absolute).
func (c *CrashableDir) Dir() string { return c.dir }

// Close stops observing.
func (c *CrashableDir) Close() {
	if c.remove != nil {
		c.remove()
		c.remove = nil
	}
}

// snapshotAll records every file's current content as synced.
func (c *CrashableDir) snapshotAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = map[string][]byte{}
	return filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		c.synced[p] = b
		return nil
	})
}

func (c *CrashableDir) under(p string) bool {
	return p == c.dir || strings.HasPrefix(p, c.dir+string(filepath.Separator))
}

// FileSynced records the file's content (cut at size).
func (c *CrashableDir) FileSynced(p string, size int64) {
	if !c.under(p) {
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	if size >= 0 && int64(len(b)) > size {
		b = b[:size]
	}
	c.mu.Lock()
	c.synced[p] = b
	c.mu.Unlock()
}

// DirSynced adds nothing in this model.
func (c *CrashableDir) DirSynced(string) {}

// FileTruncated is not durable until the next fsync.
func (c *CrashableDir) FileTruncated(string, int64) {}

// FileRenamed moves the synced content of oldPath (and of everything under
// it) to newPath, replacing what newPath held.
func (c *CrashableDir) FileRenamed(oldPath, newPath string) {
	if !c.under(oldPath) && !c.under(newPath) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(newPath)
	for p, b := range c.synced {
		if rel, ok := within(oldPath, p); ok {
			delete(c.synced, p)
			c.synced[newPath+rel] = b
		}
	}
}

// FileRemoved forgets path and everything under it.
func (c *CrashableDir) FileRemoved(p string) {
	if !c.under(p) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(p)
}

func (c *CrashableDir) dropLocked(path string) {
	for p := range c.synced {
		if _, ok := within(path, p); ok {
			delete(c.synced, p)
		}
	}
}

// within says p is root or under it, and returns the rest of p.
func within(root, p string) (string, bool) {
	if p == root {
		return "", true
	}
	if strings.HasPrefix(p, root+string(filepath.Separator)) {
		return p[len(root):], true
	}
	return "", false
}

// Crash rewrites the directory to what a machine crash leaves: each file
// with its content as of its last fsync, files never synced empty. After
// it every file counts as synced (it is what the disk holds).
func (c *CrashableDir) Crash() error { return c.crash(nil) }

// CrashTorn is Crash, except that a file whose current content extends
// its synced content keeps a random prefix of the unsynced tail (a torn
// write: some pages reached the disk), chosen with rng.
func (c *CrashableDir) CrashTorn(rng *rand.Rand) error { return c.crash(rng) }

func (c *CrashableDir) crash(rng *rand.Rand) error {
	c.mu.Lock()
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		cur, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		keep, ok := c.synced[p]
		if !ok {
			keep = nil
		}
		if rng != nil && len(cur) > len(keep) && bytes.HasPrefix(cur, keep) {
			keep = cur[:len(keep)+rng.Intn(len(cur)-len(keep)+1)]
		}
		if bytes.Equal(cur, keep) {
			return nil
		}
		if err := os.WriteFile(p, keep, 0o644); err != nil {
			return fmt.Errorf("crash %s: %w", p, err)
		}
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.snapshotAll()
}
