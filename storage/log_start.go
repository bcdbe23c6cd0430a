package storage

// The log start offset moved by a request rather than by retention
// (DeleteRecords, and a follower taking its leader's): it may sit inside a
// segment, so it is kept in a file of the log's own (logStartFile) as long
// as it is above the first segment's base. Reads below it are out of
// range; segments wholly below it go as retention's do.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// logStartFile holds the log start offset when it is above the first
// segment's base (one decimal line). Without it the log starts at its
// first segment.
const logStartFile = "log-start-offset"

// IncrementLogStart moves the log start offset up to offset (never down):
// records below it can no longer be read, and segments wholly below it
// are removed (renamed away now, deleted after file.delete.delay.ms). An
// offset inside a segment is written to the log's directory (fsynced)
// before it takes effect, so a restart keeps it. The caller bounds offset
// (a leader by its high watermark); past the log end it is
// ErrOffsetOutOfRange. It reports whether the log start moved.
func (l *Log) IncrementLogStart(offset int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return false, ErrClosed
	}
	if offset <= l.lso.Load() {
		return false, nil
	}
	if offset > l.leo.Load() {
		return false, fmt.Errorf("%w: log start %d past the log end %d", ErrOffsetOutOfRange, offset, l.leo.Load())
	}
	drop := 0
	for drop < len(l.mu.segs)-1 && l.mu.segs[drop+1].base <= offset {
		drop++
	}
	if drop > 0 {
		err := l.dropSegments(l.mu.segs[:drop])
		l.mu.segs = l.mu.segs[drop:]
		l.mu.gen++
		if err != nil {
			return false, l.failed("increment log start", err)
		}
	}
	if err := l.setLogStartLocked(offset); err != nil {
		return true, l.failed("increment log start", err)
	}
	// The cleaner counts in whole segments.
	l.mu.cleanedTo = max(l.mu.cleanedTo, l.mu.segs[0].base)
	l.assertInvariants("increment log start")
	l.logger.Info("log start offset moved", "topic", l.tp.Topic, "partition", l.tp.Partition,
		"log_start_offset", offset, "segments_removed", drop)
	return true, nil
}

// setLogStartLocked makes v the log start offset, written to
// logStartFile (fsynced) when it is above the first segment's base, the
// file removed when it is not. Called with l.mu held, after the segment
// list changed; v <= the log end.
func (l *Log) setLogStartLocked(v int64) error {
	path := filepath.Join(l.dir, logStartFile)
	inside := v > l.mu.segs[0].base
	switch {
	case v == l.lso.Load() && inside == l.mu.startFile:
		return nil
	case inside:
		// Written before it takes effect: a reader never sees a start
		// a restart would lose.
		if err := writeFileAtomic(path, []byte(strconv.FormatInt(v, 10)+"\n")); err != nil {
			return err
		}
		l.mu.startFile = true
		l.lso.Store(v)
		return mapIOError(syncDir(l.dir))
	default:
		// A stale file holds a start at or below the first segment's
		// base: opening ignores it, so failing to remove it is harmless.
		l.lso.Store(v)
		if !l.mu.startFile {
			return nil
		}
		if err := removeFile(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return mapIOError(err)
		}
		l.mu.startFile = false
		return mapIOError(syncDir(l.dir))
	}
}

// readLogStartFile returns the offset in dir's logStartFile, or -1 when
// there is none. An unreadable one is reported and ignored (the log then
// starts at its first segment: records below the lost start are readable
// again, none is lost).
func readLogStartFile(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, logStartFile))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return -1, fmt.Errorf("%s: %q is not an offset", logStartFile, strings.TrimSpace(string(b)))
	}
	return v, nil
}

// loadLogStart applies the log's logStartFile when it opens (segments
// loaded, log start at the first segment's base): a start inside the
// log's offsets is taken; one past the log end (the records it was set
// within were lost in a crash) is brought down to the end, in the file
// too, so that records appended later are not cut off at the next open.
func (l *Log) loadLogStart() error {
	v, err := readLogStartFile(l.dir)
	if err != nil {
		l.logger.Warn("ignoring an unreadable log start offset file", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
		v = -1
	}
	_, statErr := os.Stat(filepath.Join(l.dir, logStartFile))
	l.mu.startFile = statErr == nil
	start := l.mu.segs[0].base
	if v >= 0 {
		start = min(max(v, start), l.leo.Load())
	}
	if start == v && start > l.mu.segs[0].base {
		l.lso.Store(v) // as the file says: nothing to write
		return nil
	}
	// The log start is still the first segment's base here, so a start
	// above it is written again (a clamped one), and a stale file goes.
	return l.setLogStartLocked(start)
}
