package storage

// What happens to a log over its life besides appends and reads:
// truncation, retention, the delayed delete of removed segments, time-based
// flushes and closing. The rules are in doc.go ("Lifecycle rules").

import (
	"fmt"
	"math"
	"time"
)

// dropSegments renames the files of segments leaving the log to
// "*.deleted" and fsyncs the directory, so that from here on a crash cannot
// bring them back, and hands them to the delayed delete (readers may still
// hold their open files). Called with l.mu held, before anything else about
// the removal changes; the caller then removes them from segs, even on
// error.
func (l *Log) dropSegments(segs []*segment) error {
	now := l.now()
	var first error
	for _, s := range segs {
		if err := s.markDeleted(); err != nil && first == nil {
			first = fmt.Errorf("rename segment %d to %s: %w", s.base, deletedSuffix, err)
		}
		l.mu.doomed = append(l.mu.doomed, doomedSegment{seg: s, at: now})
	}
	if len(segs) == 0 {
		return first
	}
	if err := syncDir(l.dir); err != nil && first == nil {
		first = fmt.Errorf("fsync log directory: %w", err)
	}
	return first
}

// failed handles an I/O error in the middle of a change to the segment
// list: the log can no longer be trusted to match its files, so it stops
// taking appends and reads (ErrClosed) until it is reopened, which
// recovers it from what is on disk.
func (l *Log) failed(op string, err error) error {
	l.logger.Error("log failed; closed until reopened", "topic", l.tp.Topic, "partition", l.tp.Partition, "op", op, "error", err)
	l.mu.closed = true
	l.closeSegments()
	return fmt.Errorf("%s %s-%d: %w", op, l.tp.Topic, l.tp.Partition, err)
}

type doomedSegment struct {
	seg *segment
	at  time.Time
}

// Truncate removes every batch holding an offset at or above offset (a
// batch straddling offset goes whole, so the new end may be below offset).
func (l *Log) Truncate(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if offset >= l.leo.Load() {
		return nil
	}
	now := l.now()
	if offset <= l.lso.Load() {
		// Every segment goes, renamed before the new one (which may
		// take the first one's name) is created.
		err := l.dropSegments(l.mu.segs)
		l.mu.segs = nil
		if err != nil {
			return l.failed("truncate", err)
		}
		ns, err := createSegment(l.dir, max(offset, 0), now)
		if err != nil {
			return l.failed("truncate", err)
		}
		l.mu.segs = []*segment{ns}
		if err := l.setLogStartLocked(ns.base); err != nil {
			return l.failed("truncate", err)
		}
	} else {
		n := len(l.mu.segs)
		for n > 1 && l.mu.segs[n-1].base >= offset {
			n--
		}
		err := l.dropSegments(l.mu.segs[n:])
		l.mu.segs = l.mu.segs[:n]
		if err != nil {
			return l.failed("truncate", err)
		}
		s := l.active()
		if pos, _, ok, err := s.find(offset); err != nil {
			return err
		} else if ok {
			if err := s.truncateTo(pos, l.mu.cfg.IndexIntervalBytes, l.gapsOK.Load()); err != nil {
				return l.failed("truncate", err)
			}
		}
	}
	l.mu.gen++
	l.leo.Store(l.active().next)
	if leo := l.leo.Load(); leo < l.lso.Load() {
		// The batch holding the log start (set inside it by
		// IncrementLogStart) went whole: the log is empty, and starts
		// at its end.
		if err := l.setLogStartLocked(leo); err != nil {
			return l.failed("truncate", err)
		}
	}
	l.mu.recoveryPoint = min(l.mu.recoveryPoint, l.leo.Load())
	l.mu.cleanedTo = max(min(l.mu.cleanedTo, l.active().base), l.mu.segs[0].base)
	if err := l.mu.epochs.truncateFromEnd(l.leo.Load()); err != nil {
		return err
	}
	if err := dropProducerSnapshotAbove(l.dir, l.leo.Load()); err != nil {
		return l.failed("truncate", err)
	}
	l.mu.producers = producerState{}
	l.resetTxns()
	if err := l.replayProducers(l.lso.Load()); err != nil {
		return err
	}
	l.assertInvariants("truncate")
	l.logger.Info("log truncated", "topic", l.tp.Topic, "partition", l.tp.Partition, "log_end_offset", l.leo.Load())
	return nil
}

// applyRetention removes whole segments past retention.ms or beyond
// retention.bytes (never the active one) and advances the log start offset.
// Only segments wholly below the high watermark (the clean bound; the log
// end when none is set) may go: the log start offset never passes the HW,
// so a record no replica but this one may hold yet is never deleted.
// It returns how many segments it removed.
func (l *Log) applyRetention() int {
	// The bound is read before l.mu: it takes the partition's lock, which
	// is held around appends.
	hw := l.bound(math.MaxInt64)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed || !l.mu.cfg.Delete {
		return 0
	}
	hw = min(hw, l.leo.Load())
	now := l.now()
	var total int64
	for _, s := range l.mu.segs {
		total += s.size
	}
	removed := 0
	for removed < len(l.mu.segs)-1 {
		s := l.mu.segs[removed]
		expired := l.mu.cfg.RetentionTime >= 0 && s.maxTs >= 0 && now.UnixMilli()-s.maxTs > l.mu.cfg.RetentionTime.Milliseconds()
		oversize := l.mu.cfg.RetentionBytes >= 0 && total-s.size >= l.mu.cfg.RetentionBytes
		if !expired && !oversize {
			break
		}
		// The new log start (the next segment's base) must not pass the
		// HW: s must end at or below it.
		if s.next > hw || l.mu.segs[removed+1].base > hw {
			break
		}
		total -= s.size
		removed++
	}
	if removed > 0 {
		if err := l.dropSegments(l.mu.segs[:removed]); err != nil {
			l.logger.Error("cannot rename segments removed by retention", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
		}
		l.mu.segs = l.mu.segs[removed:]
		l.mu.gen++
		// A log start already inside the new first segment
		// (IncrementLogStart) stays.
		if err := l.setLogStartLocked(max(l.lso.Load(), l.mu.segs[0].base)); err != nil {
			l.logger.Error("cannot update the log start offset file", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
		}
		l.assertInvariants("retention")
		l.mu.cleanedTo = max(l.mu.cleanedTo, l.mu.segs[0].base)
		l.logger.Info("retention deleted segments", "topic", l.tp.Topic, "partition", l.tp.Partition,
			"segments", removed, "log_start_offset", l.lso.Load())
	}
	return removed
}

// reapDoomed deletes removed segments older than file.delete.delay.ms (all
// of them with force).
func (l *Log) reapDoomed(force bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	keep := l.mu.doomed[:0]
	for _, d := range l.mu.doomed {
		if force || now.Sub(d.at) >= l.mu.cfg.FileDeleteDelay {
			// A segment whose rename failed may share its name with a
			// live one.
			if !d.seg.deleted && l.isLive(d.seg) {
				d.seg.close()
			} else if err := d.seg.remove(); err != nil {
				l.logger.Warn("cannot delete segment", "dir", l.dir, "base_offset", d.seg.base, "error", err)
			}
			continue
		}
		keep = append(keep, d)
	}
	l.mu.doomed = keep
}

func (l *Log) isLive(d *segment) bool {
	for _, s := range l.mu.segs {
		if s.base == d.base {
			return true
		}
	}
	return false
}

// housekeep is the once-a-second pass of the manager: maybeFlushByTime and
// reapDoomed, after one cheap look under the lock that skips a log with
// nothing unflushed and nothing doomed (every idle log).
func (l *Log) housekeep() {
	l.mu.Lock()
	idle := len(l.mu.doomed) == 0 && (l.mu.closed || l.mu.unflushed == 0)
	l.mu.Unlock()
	if idle {
		return
	}
	l.maybeFlushByTime()
	l.reapDoomed(false)
}

// maybeFlushByTime fsyncs when flush.ms has passed with unflushed records.
func (l *Log) maybeFlushByTime() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed || l.mu.unflushed == 0 || l.now().Sub(l.mu.lastFlush) < l.mu.cfg.FlushInterval {
		return
	}
	if err := l.flushLocked(); err != nil {
		l.logger.Error("flush failed", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
	}
}

// close seals and fsyncs the log, saves the producer state and closes every
// file. After close every method returns ErrClosed.
func (l *Log) close() error {
	l.closing.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(l.active().seal())
	keep(l.flushLocked())
	keep(writeProducerSnapshot(l.dir, l.leo.Load(), l.mu.producers))
	l.mu.closed = true
	l.mu.Unlock()
	l.reapDoomed(true)
	l.mu.Lock()
	l.closeSegments()
	l.mu.Unlock()
	return first
}

// abandon closes every file as a killed process would: nothing is
// flushed or written. After it every method returns ErrClosed.
func (l *Log) abandon() {
	l.closing.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return
	}
	l.mu.closed = true
	l.closeSegments()
	for _, d := range l.mu.doomed {
		d.seg.close()
	}
	l.mu.doomed = nil
}
