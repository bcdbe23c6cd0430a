package storage

// Opening a log: loading its segments (validating those after the recovery
// point after an unclean stop), then the leader epoch cache and the
// producer table, each checked against the segments and rebuilt from the
// batch headers when they do not fit.

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
)

// openLog opens the log in dir. Segments at or after recoverFrom are
// validated batch by batch (recover: an unclean stop); with recoverFrom < 0
// nothing is. allowGaps says the log may have offset gaps (compaction: it
// is listed in the cleaner checkpoint); so do the log's own offset-gaps
// marker and a compacted cfg.
func openLog(dir string, tp TopicPartition, topicID [16]byte, cfg LogConfig, recoverFrom int64, allowGaps bool, now func() time.Time, logger hclog.Logger, writeback int64) (*Log, error) {
	l := &Log{dir: dir, tp: tp, topicID: topicID, now: now, logger: logger, writeback: writeback}
	l.mu.cfg, l.mu.lastFlush = cfg, now()
	if err := finishCleanerLeftovers(dir, logger); err != nil {
		return nil, err
	}
	// Segments removed before the stop stay removed.
	if err := removeDeletedFiles(dir); err != nil {
		return nil, err
	}
	switch marked := hasGapsMarker(dir); {
	case allowGaps && !marked:
		// Compacted before logs carried the marker.
		if err := writeGapsMarker(dir); err != nil {
			logger.Warn("cannot write offset-gaps marker", "topic", tp.Topic, "partition", tp.Partition, "error", err)
		}
	case marked && !allowGaps:
		logger.Warn("log has offset gaps but is missing from the cleaner checkpoint; accepting them (its marker says so)",
			"topic", tp.Topic, "partition", tp.Partition)
		allowGaps = true
	}
	l.gapsOK.Store(allowGaps)
	// A compacted config accepts gaps in recovery too (gapsOK stays false
	// until the marker is written, so the first gap still writes it).
	allowGaps = allowGaps || cfg.Compact
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	truncatedAt := -1
	for i, base := range bases {
		if truncatedAt >= 0 {
			// Everything after a torn or corrupt batch goes.
			s := &segment{dir: dir, base: base}
			if err := s.remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			logger.Warn("removed segment after corruption", "topic", tp.Topic, "partition", tp.Partition, "base_offset", base)
			continue
		}
		next := int64(-1)
		if i+1 < len(bases) {
			next = bases[i+1]
		}
		// A segment holding the recovery point or anything after it is
		// validated.
		validate := recoverFrom >= 0 && (next < 0 || next > recoverFrom)
		s, truncated, err := openSegment(dir, base, validate, allowGaps, cfg.IndexIntervalBytes, now())
		if err != nil {
			l.closeSegments()
			return nil, fmt.Errorf("open segment %d of %s-%d: %w", base, tp.Topic, tp.Partition, err)
		}
		if n := len(l.mu.segs); n > 0 && s.size == 0 && s.base < l.mu.segs[n-1].next {
			// An empty segment named inside the previous one's offsets
			// (damage, or a leftover) holds nothing; as the last segment
			// it would pull the log end back below records the log holds.
			if err := s.remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.closeSegments()
				return nil, err
			}
			logger.Warn("removed empty segment inside the previous one's offsets", "topic", tp.Topic,
				"partition", tp.Partition, "base_offset", base, "previous_end_offset", l.mu.segs[n-1].next)
			if truncated {
				truncatedAt = i // it held a corrupt batch: what follows goes too
			}
			continue
		}
		if n := len(l.mu.segs); n > 0 && s.size > 0 && s.base < l.mu.segs[n-1].next {
			// The previous segment runs past this one's base: a batch
			// header there carries a damaged base offset (the CRC does not
			// cover it, and in a log with offset gaps a larger one passed
			// validation). It is a corrupt batch like any other: the
			// previous segment is cut before it and everything after goes.
			prev := l.mu.segs[n-1]
			pos, _, ok, err := prev.find(s.base)
			if err == nil && ok {
				err = prev.truncateTo(pos, cfg.IndexIntervalBytes, allowGaps)
			}
			if err == nil {
				err = syncFile(prev.f, prev.filePath(logSuffix))
			}
			if err != nil || !ok {
				s.close()
				l.closeSegments()
				return nil, fmt.Errorf("%w: segment %d of %s-%d overlaps the one before", ErrCorruptBatch, base, tp.Topic, tp.Partition)
			}
			logger.Warn("cut a segment whose batches run past the next segment's base (damaged base offset)",
				"topic", tp.Topic, "partition", tp.Partition, "segment", prev.base, "valid_bytes", prev.size,
				"next_segment", base)
			if err := s.remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.closeSegments()
				return nil, err
			}
			truncatedAt = i
			continue
		}
		l.mu.segs = append(l.mu.segs, s)
		if truncated {
			truncatedAt = i
			logger.Warn("truncated torn or corrupt tail during recovery", "topic", tp.Topic, "partition", tp.Partition,
				"segment", base, "valid_bytes", s.size, "log_end_offset", s.next)
		}
	}
	if len(l.mu.segs) == 0 {
		s, err := createSegment(dir, 0, now())
		if err != nil {
			return nil, err
		}
		l.mu.segs = append(l.mu.segs, s)
	}
	// Drop empty segments left in the middle (a crash right after a roll).
	for i := 0; i < len(l.mu.segs)-1; {
		if l.mu.segs[i].size == 0 {
			l.mu.segs[i].remove()
			l.mu.segs = append(l.mu.segs[:i], l.mu.segs[i+1:]...)
			continue
		}
		i++
	}
	l.lso.Store(l.mu.segs[0].base)
	l.leo.Store(l.active().next)
	l.mu.recoveryPoint = l.leo.Load()
	if err := l.loadLogStart(); err != nil {
		l.closeSegments()
		return nil, err
	}
	l.mu.cleanedTo = l.mu.segs[0].base
	if err := l.loadEpochs(); err != nil {
		l.closeSegments()
		return nil, err
	}
	if err := l.loadProducers(); err != nil {
		l.closeSegments()
		return nil, err
	}
	l.assertInvariants("open")
	return l, nil
}

// loadEpochs loads the leader epoch cache, rebuilding it from the batches'
// partition leader epochs (headers only, from the log start) when the
// checkpoint is missing, damaged or does not fit the log.
func (l *Log) loadEpochs() error {
	c, ok, err := loadEpochCache(l.dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", leaderEpochFile, err)
	}
	l.mu.epochs = c
	first, last, nonEmpty, err := l.firstAndLastHeaders()
	if err != nil {
		return err
	}
	if ok {
		// Epochs starting at or past the log end lost their records (an
		// unflushed tail, a crash during truncation): drop them in
		// memory, then check the rest.
		n := len(c.entries)
		for n > 0 && c.entries[n-1].StartOffset >= l.leo.Load() {
			n--
		}
		if n < len(c.entries) {
			c.entries = c.entries[:n]
			if c.consistent(l.leo.Load(), first, last, nonEmpty) {
				return c.write()
			}
		}
		if c.consistent(l.leo.Load(), first, last, nonEmpty) {
			return nil
		}
	}
	if !ok && !nonEmpty {
		// A new (or empty) log: nothing to rebuild from, and nothing to
		// record (a missing checkpoint is an empty history; the first
		// epoch assigned writes it). Not writing it saves a new log an
		// fsync.
		c.entries = nil
		return nil
	}
	l.logger.Warn("leader epoch checkpoint missing, damaged or inconsistent with the log; rebuilding it from the batches",
		"topic", l.tp.Topic, "partition", l.tp.Partition, "found", ok, "entries", len(c.entries))
	err = c.rebuild(func(fn func(BatchHeader)) error { return l.scanHeaders(l.lso.Load(), fn) })
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", leaderEpochFile, err)
	}
	return nil
}

// firstAndLastHeaders returns the headers of the log's first and last
// batches (reading only the last index interval of the last non-empty
// segment); nonEmpty is false when there is no batch.
func (l *Log) firstAndLastHeaders() (first, last BatchHeader, nonEmpty bool, err error) {
	var hdr [BatchHeaderSize]byte
	for _, s := range l.mu.segs {
		if s.size == 0 {
			continue
		}
		if first, err = s.readHeader(0, &hdr); err != nil {
			return
		}
		nonEmpty = true
		break
	}
	for i := len(l.mu.segs) - 1; i >= 0 && nonEmpty; i-- {
		s := l.mu.segs[i]
		if s.size == 0 {
			continue
		}
		for pos := s.lookup(s.next - 1); pos < s.size; {
			if last, err = s.readHeader(pos, &hdr); err != nil {
				return
			}
			pos += last.Size()
		}
		break
	}
	return
}

// loadProducers rebuilds the producer table from the snapshot and the
// batches after it, and the aborted transactions index of the segments
// that need it (recovered, or whose .txnindex was damaged): those need the
// producer state before them, so a snapshot past the first of them is not
// used.
func (l *Log) loadProducers() error {
	p, from, ok := readProducerSnapshot(l.dir)
	// A snapshot is trusted only inside the log: truncation deletes the
	// snapshots above its point, so one past the end (or before the
	// start, whose segments are gone) is stale.
	if ok && (from > l.leo.Load() || from < l.lso.Load()) {
		l.logger.Warn("ignoring producer snapshot outside the log", "topic", l.tp.Topic, "partition", l.tp.Partition,
			"snapshot_offset", from, "log_start_offset", l.lso.Load(), "log_end_offset", l.leo.Load())
		ok = false
	}
	var stale []*segment
	for _, s := range l.mu.segs {
		if s.txnStale {
			stale = append(stale, s)
		}
	}
	if ok && len(stale) > 0 && from > stale[0].base {
		ok = false
	}
	if !ok {
		p, from = producerState{}, l.lso.Load()
	}
	l.mu.producers = p
	l.resetTxns()
	if err := l.replayProducers(from); err != nil {
		return err
	}
	for _, s := range stale {
		s.txnStale = false
		if err := s.rewriteTxnIndex(); err != nil {
			return err
		}
		if err := syncPath(s.path(txnIndexSuffix)); err != nil {
			return err
		}
	}
	if len(stale) > 0 {
		return syncDir(l.dir)
	}
	return nil
}

// resetTxns rebuilds the transaction table from the producer table.
// Called with l.mu held for writing.
func (l *Log) resetTxns() {
	l.txnMu.Lock()
	l.txns.reset(l.mu.producers)
	l.txnUnstable.Store(len(l.txns.ongoing) > 0)
	l.txnMu.Unlock()
}

// replayProducers applies every batch whose last offset is >= from to the
// producer and transaction tables (reading headers, and the record of
// each control batch), and collects the aborted transactions of the
// segments whose index is stale. Called with l.mu held for writing.
func (l *Log) replayProducers(from int64) error {
	var hdr [BatchHeaderSize]byte
	for _, s := range l.mu.segs {
		if s.next <= from {
			continue
		}
		var seg *segment
		if s.txnStale {
			seg = s
		}
		for pos := s.lookup(from); pos < s.size; {
			h, err := s.readHeader(pos, &hdr)
			if err != nil {
				return err
			}
			if h.LastOffset() >= from {
				var ctl ControlMarker
				ctlOK := false
				if h.Control() && h.Idempotent() {
					if ctl, ctlOK, err = s.readControl(pos, h); err != nil {
						return err
					}
				}
				l.applyTxn(h, ctl, ctlOK, seg)
			}
			pos += h.Size()
		}
	}
	return nil
}

// scanHeaders calls fn with the header of every batch whose last offset is
// >= from, reading headers only.
func (l *Log) scanHeaders(from int64, fn func(BatchHeader)) error {
	var hdr [BatchHeaderSize]byte
	for _, s := range l.mu.segs {
		if s.next <= from {
			continue
		}
		for pos := s.lookup(from); pos < s.size; {
			h, err := s.readHeader(pos, &hdr)
			if err != nil {
				return err
			}
			if h.LastOffset() >= from {
				fn(h)
			}
			pos += h.Size()
		}
	}
	return nil
}
