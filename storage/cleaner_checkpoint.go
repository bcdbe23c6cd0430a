package storage

// The cleaner's durable state: the offset-gaps marker of a log, the
// cleaner-offset-checkpoint of the data directory, and the leftovers of
// an interrupted segment swap, finished or discarded on open.

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// markGaps persists that the log may have offset gaps (before any exists on
// disk: recovery must accept them): the log's own marker file, then its
// entry in the manager's cleaner checkpoint.
func (l *Log) markGaps() error {
	if l.gapsOK.Load() {
		return nil
	}
	l.gapsMu.Lock()
	defer l.gapsMu.Unlock()
	if l.gapsOK.Load() {
		return nil
	}
	if err := writeGapsMarker(l.dir); err != nil {
		return err
	}
	if l.hooks.markGaps != nil {
		if err := l.hooks.markGaps(l); err != nil {
			return err
		}
	}
	l.gapsOK.Store(true)
	return nil
}

// finishCleanerLeftovers completes or discards an interrupted swap in dir:
// a ".cleaned" file was not complete and goes; a ".swap" file was, and
// replaces its segment (whose indexes are dropped and rebuilt on open).
func finishCleanerLeftovers(dir string, logger hclog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, logSuffix+cleanedSuffix):
			if err := removeFile(filepath.Join(dir, name)); err != nil {
				return err
			}
			logger.Warn("removed incomplete cleaned segment", "dir", dir, "file", name)
		case strings.HasSuffix(name, logSuffix+swapSuffix):
			base, ok := parseSegmentName(strings.TrimSuffix(name, swapSuffix))
			if !ok {
				continue
			}
			s := &segment{dir: dir, base: base}
			for _, suf := range []string{indexSuffix, timeIndexSuffix} {
				if err := removeFile(s.path(suf)); err != nil {
					return err
				}
			}
			if err := renameFile(filepath.Join(dir, name), s.path(logSuffix)); err != nil {
				return err
			}
			if err := syncDir(dir); err != nil {
				return mapIOError(err)
			}
			logger.Warn("completed interrupted segment swap", "dir", dir, "base_offset", base)
		}
	}
	return nil
}

// writeGapsMarker writes dir's offsetGapsFile durably (file and directory
// fsynced).
func writeGapsMarker(dir string) error {
	if err := writeFileAtomic(filepath.Join(dir, offsetGapsFile), []byte("0\n")); err != nil {
		return err
	}
	return mapIOError(syncDir(dir))
}

// hasGapsMarker says dir holds an offsetGapsFile.
func hasGapsMarker(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, offsetGapsFile))
	return err == nil
}

// attach connects a newly opened log to the cleaner checkpoint.
func (m *Manager) attach(l *Log, cleanedTo int64) {
	l.hooks = logHooks{markGaps: m.markGaps, cleaned: m.recordCleaned}
	l.mu.Lock()
	l.mu.cleanedTo = max(min(cleanedTo, l.active().base), l.mu.segs[0].base)
	l.mu.Unlock()
}

// markGaps lists l in the cleaner checkpoint (synchronously, fsynced).
func (m *Manager) markGaps(l *Log) error {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	if _, ok := m.cleanerCkpt[l.tp]; ok {
		return nil
	}
	m.cleanerCkpt[l.tp] = l.LogStartOffset()
	return m.writeCleanerCheckpointLocked()
}

func (m *Manager) recordCleaned(l *Log, res CleanResult) {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	m.cleanerCkpt[l.tp] = res.CleanedTo
	if err := m.writeCleanerCheckpointLocked(); err != nil {
		m.logger.Error("cannot write cleaner offset checkpoint", "error", err)
	}
}

func (m *Manager) forgetCleaned(tp TopicPartition) {
	m.ckptMu.Lock()
	defer m.ckptMu.Unlock()
	if _, ok := m.cleanerCkpt[tp]; !ok {
		return
	}
	delete(m.cleanerCkpt, tp)
	if err := m.writeCleanerCheckpointLocked(); err != nil {
		m.logger.Error("cannot write cleaner offset checkpoint", "error", err)
	}
}

func (m *Manager) readCleanerCheckpoint() map[TopicPartition]int64 {
	out, err := readOffsetCheckpoint(filepath.Join(m.cfg.Dir, cleanerCheckpointFile))
	if err != nil {
		m.logger.Warn("cleaner offset checkpoint unreadable", "error", err)
	}
	return out
}

// writeCleanerCheckpointLocked writes the checkpoint. Called with ckptMu
// held.
func (m *Manager) writeCleanerCheckpointLocked() error {
	return writeOffsetCheckpoint(filepath.Join(m.cfg.Dir, cleanerCheckpointFile), m.cleanerCkpt)
}
