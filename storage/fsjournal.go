package storage

import (
	"fmt"
	"os"
	"sync"
)

// FsyncJournalEnv names the environment variable that turns on the fsync
// journal in a broker process (cli/broker.go reads it). It is a
// fault-injection hook for the end-to-end machine-crash test, not an
// operator setting.
const FsyncJournalEnv = "SKEIN_FSYNC_JOURNAL"

// FsyncJournal is a FileObserver that appends one line per durable file
// operation to a journal file, so a test harness can simulate a machine
// crash after killing the process: every file under the data directory is
// cut to the size of its last journaled sync (following renames; a file
// never synced goes to 0 bytes), as a lost page cache would leave it.
//
// The format is frozen (the harness parses it); one line per event,
// fields separated by one space, paths absolute:
//
//	sync <path> <size in bytes after the fsync>
//	rename <old path> <new path>
//	remove <path>
//
// A rename or remove of a directory applies to everything under it.
// Directory fsyncs and truncations are not journaled: renames and removes
// count as durable once done, and a truncation is durable only through the
// sync that follows it. Lines are written with O_APPEND, one write each,
// after the operation succeeded; the journal itself is never fsynced (the
// process dies, not the machine). Paths never contain spaces or newlines
// (topic names cannot).
type FsyncJournal struct {
	mu sync.Mutex
	f  *os.File
}

// OpenFsyncJournal opens (creating or appending to) the journal at path.
func OpenFsyncJournal(path string) (*FsyncJournal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open fsync journal: %w", err)
	}
	return &FsyncJournal{f: f}, nil
}

func (j *FsyncJournal) line(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		_, _ = j.f.WriteString(s)
	}
}

// FileSynced journals "sync <path> <size>".
func (j *FsyncJournal) FileSynced(path string, size int64) {
	j.line(fmt.Sprintf("sync %s %d\n", path, size))
}

// DirSynced is not journaled.
func (j *FsyncJournal) DirSynced(string) {}

// FileRenamed journals "rename <old> <new>".
func (j *FsyncJournal) FileRenamed(oldPath, newPath string) {
	j.line(fmt.Sprintf("rename %s %s\n", oldPath, newPath))
}

// FileRemoved journals "remove <path>".
func (j *FsyncJournal) FileRemoved(path string) { j.line(fmt.Sprintf("remove %s\n", path)) }

// FileTruncated is not journaled (the sync after it is).
func (j *FsyncJournal) FileTruncated(string, int64) {}

// Close closes the journal file; later events are dropped.
func (j *FsyncJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
