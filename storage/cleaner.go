package storage

// The log cleaner: compaction for logs with cleanup.policy=compact.
//
// Every replica cleans its own copy at its own times, yet replicas must end
// byte-identical, so the result of a pass depends only on the log's content
// and the pass's boundary (the base offset of a segment; only whole sealed
// segments below it are cleaned, never the active one), and passes compose:
// cleaning to X and then to Y gives the same bytes as cleaning to Y at once.
//
// Rules, for the cleaned range [log start, boundary):
//   - a record with a key is kept iff it is the latest record with that key
//     in the range; records without a key are kept;
//   - a tombstone (null value) that is the latest for its key is removed
//     once its batch's max timestamp + delete.retention.ms is below the log
//     time: the largest batch max timestamp in the range (never the wall
//     clock, which differs between replicas);
//   - records of a transaction whose commit marker is in the range count
//     and are cleaned like any others (from the marker on: their key's
//     latest is the larger offset); records of a transaction whose abort
//     marker is in the range are removed, and supersede nothing (a record
//     of an aborted transaction must never remove the committed value it
//     would have replaced); batches of a transaction whose marker is beyond
//     the range are kept whole and supersede nothing. Passes still
//     compose: a transaction whose marker a first pass did not reach is
//     cleaned by the next;
//   - a commit marker is removed once its batch's max timestamp +
//     delete.retention.ms is below the log time and no data batch of its
//     transaction is left after the pass (as Kafka does; never before: a
//     replay of the log would find that transaction open), unless it must
//     stay like an empty batch (below) or is its producer's newest marker
//     in the range; abort markers (and so the aborted transactions index)
//     are kept for good, so a replica that missed the cleaning can never
//     see aborted records as committed (cleanMarker says why);
//   - a batch keeps its base offset, last offset delta, producer fields,
//     attributes and timestamps; removed records are dropped from it (a
//     compressed batch is decompressed and compressed again with the same
//     codec, deterministically);
//   - a batch left without records is dropped (an offset gap) unless it
//     must stay as an empty batch: it is the last batch of its segment (so a
//     segment never empties and keeps its end offset), the newest batch of
//     its producer id in the range (so idempotent producer state survives),
//     or the last batch carrying the range's largest timestamp (so the log
//     time of later passes is the same as for a single pass).
//
// When to clean is content-determined too: the background cleaner cleans
// to the boundaries of a sequence fixed by segment sizes and
// min.cleanable.dirty.ratio (see nextBoundary), capped by the partition's
// high watermark, so replicas stop at the same boundary once they have the
// same sealed segments.
//
// A segment is rewritten in place (cleaner_rewrite.go): "<base>.log.cleaned"
// is written and fsynced, renamed to "<base>.log.swap", the old segment's
// files are renamed to "*.deleted" and the swap file to "<base>.log"; the
// indexes are then rebuilt. Opening a log finishes or discards the
// leftovers of an interrupted swap (cleaner_checkpoint.go). Readers
// holding ranges of the old file keep it open until the doomed-segment
// delay passes.
//
// This file holds the policy: when and up to where to clean.

import (
	"errors"
	"fmt"
	"math"
	"time"
)

const (
	// offsetGapsFile, in a log's directory, says the log may have offset
	// gaps (it was compacted, or a follower copied compacted batches), so
	// recovery after an unclean stop accepts them instead of truncating
	// at the first. It is written and fsynced before the first gap
	// reaches the disk and lives and dies with the log: unlike the log's
	// entry in cleaner-offset-checkpoint (which only records the cleaner's
	// progress) losing it needs losing the log directory.
	offsetGapsFile        = "offset-gaps"
	cleanerCheckpointFile = "cleaner-offset-checkpoint"
	cleanedSuffix         = ".cleaned"
	swapSuffix            = ".swap"
)

// errCleanAborted: the log changed (truncation, retention, close) during a
// pass; the next pass starts over.
var errCleanAborted = errors.New("storage: cleaning pass abandoned: log changed")

// CleanResult describes a cleaning pass.
type CleanResult struct {
	// CleanedTo is the pass's boundary: every record below it is compacted.
	CleanedTo         int64
	Segments          int // segments in the cleaned range
	SegmentsRewritten int
	BytesBefore       int64 // of the cleaned range
	BytesAfter        int64
	RecordsRemoved    int64
	BatchesRemoved    int64
	Duration          time.Duration
}

// SetCleanBound caps the cleaner at fn() (e.g. the partition's high
// watermark: records above it may still be truncated away, and records they
// superseded must not be removed meanwhile). nil removes the cap.
func (l *Log) SetCleanBound(fn func() int64) {
	if fn == nil {
		l.cleanBound.Store(nil)
		return
	}
	l.cleanBound.Store(&fn)
}

// Clean compacts the log now, whatever its dirty ratio, up to the base of
// the active segment (and the clean bound). The log's cleanup.policy must
// include compact.
func (l *Log) Clean() (CleanResult, error) { return l.CleanTo(math.MaxInt64) }

// CleanTo is Clean with the boundary also capped at limit (rounded down to a
// segment base).
func (l *Log) CleanTo(limit int64) (CleanResult, error) {
	if !l.Config().Compact {
		return CleanResult{}, fmt.Errorf("storage: %s-%d is not compacted (cleanup.policy)", l.tp.Topic, l.tp.Partition)
	}
	res, err := l.cleanTo(limit)
	if err == nil && res.Segments > 0 {
		l.logCleaned(res, 1)
	}
	return res, err
}

// CleanedTo is the offset the log has been compacted up to.
func (l *Log) CleanedTo() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.cleanedTo
}

// bound is the cleaner's upper limit: min(limit, clean bound).
func (l *Log) bound(limit int64) int64 {
	if fn := l.cleanBound.Load(); fn != nil && *fn != nil {
		limit = min(limit, (*fn)())
	}
	return limit
}

// cleanableLocked returns the sealed segments wholly below bound (and, with
// min.compaction.lag.ms, old enough), oldest first, and the boundary: the
// base of the first segment not included. Called with l.mu held.
func (l *Log) cleanableLocked(bound int64, nowMs int64) ([]*segment, int64) {
	lag := l.mu.cfg.MinCompactionLag.Milliseconds()
	n := 0
	for ; n < len(l.mu.segs)-1; n++ {
		if l.mu.segs[n+1].base > bound {
			break
		}
		if lag > 0 && l.mu.segs[n].maxTs > nowMs-lag {
			break
		}
	}
	return append([]*segment(nil), l.mu.segs[:n]...), l.mu.segs[n].base
}

// nextBoundary picks the boundary of the cleaner's next pass: the smallest
// segment base B above the cleaned offset C (and within the cleanable
// range) at which the dirty ratio, bytes in [C, B) over bytes in
// [log start, B), reaches min.cleanable.dirty.ratio. Choosing the smallest
// such B makes the sequence of boundaries a function of the log's content
// alone, so every replica, whenever its cleaner runs, passes through the
// same boundaries and ends at the same one (cleaning skips none: each step
// changes the sizes the next is chosen from). Only max.compaction.lag.ms,
// which reads the wall clock, can force a pass to the end of the
// cleanable range instead. ok is false when no pass is due.
func (l *Log) nextBoundary() (int64, bool) {
	bound := l.bound(math.MaxInt64)
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed || !l.mu.cfg.Compact {
		return 0, false
	}
	nowMs := l.now().UnixMilli()
	segs, end := l.cleanableLocked(bound, nowMs)
	var clean, dirty int64
	firstDirtyTs := int64(-1)
	for i, s := range segs {
		if s.base < l.mu.cleanedTo {
			clean += s.size
			continue
		}
		if firstDirtyTs < 0 {
			firstDirtyTs = s.maxTs
		}
		dirty += s.size
		if dirty > 0 && float64(dirty)/float64(clean+dirty) >= l.mu.cfg.MinCleanableDirtyRatio {
			if i+1 < len(segs) {
				return segs[i+1].base, true
			}
			return end, true
		}
	}
	if dirty > 0 && firstDirtyTs >= 0 && nowMs-firstDirtyTs > l.mu.cfg.MaxCompactionLag.Milliseconds() {
		return end, true
	}
	return 0, false
}

// logCleaned writes the one line a cleaned log gets (passes: cleaning
// passes summed in res; bytes before/after count each pass's range).
func (l *Log) logCleaned(res CleanResult, passes int) {
	l.logger.Info("log cleaned", "topic", l.tp.Topic, "partition", l.tp.Partition,
		"cleaned_to", res.CleanedTo, "passes", passes, "segments", res.Segments, "segments_rewritten", res.SegmentsRewritten,
		"bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter,
		"records_removed", res.RecordsRemoved, "batches_removed", res.BatchesRemoved,
		"took", res.Duration.Round(time.Microsecond).String())
}

// CleanNow runs one cleaner pass over every compacted log whose dirty ratio
// reached min.cleanable.dirty.ratio (the background cleaner does this every
// CleanerInterval) and returns the passes that ran.
func (m *Manager) CleanNow() []CleanResult {
	var out []CleanResult
	logs := m.Logs()
	tps := make([]TopicPartition, 0, len(logs))
	for tp := range logs {
		tps = append(tps, tp)
	}
	sortTopicPartitions(tps)
	for _, tp := range tps {
		select {
		case <-m.stop:
			return out
		default:
		}
		l := logs[tp]
		// One pass per boundary in the log's sequence (see nextBoundary),
		// reported as one.
		var sum CleanResult
		passes := 0
		for {
			b, ok := l.nextBoundary()
			if !ok || b <= l.CleanedTo() {
				break
			}
			res, err := l.cleanTo(b)
			if err != nil {
				if !errors.Is(err, errCleanAborted) && !errors.Is(err, ErrClosed) {
					m.logger.Error("cleaning failed", "topic", tp.Topic, "partition", tp.Partition, "error", err)
				}
				break
			}
			passes++
			sum.CleanedTo = res.CleanedTo
			sum.Segments = res.Segments
			sum.SegmentsRewritten += res.SegmentsRewritten
			sum.BytesBefore += res.BytesBefore
			sum.BytesAfter += res.BytesAfter
			sum.RecordsRemoved += res.RecordsRemoved
			sum.BatchesRemoved += res.BatchesRemoved
			sum.Duration += res.Duration
			if res.CleanedTo < b {
				break // the log changed meanwhile
			}
		}
		if passes > 0 {
			l.logCleaned(sum, passes)
			out = append(out, sum)
		}
	}
	return out
}

func (m *Manager) cleanerLoop() {
	defer close(m.cleanerDone)
	t := time.NewTicker(m.cfg.CleanerInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.CleanNow()
		}
	}
}
