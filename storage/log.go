package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Log is one partition's append-only log: a list of segments, the last one
// active. All methods are safe for concurrent use; appends are serialised.
//
// Lock order: cleanMu, then mu. mu is never held while calling out of the
// package (the clean bound is read before taking it).
type Log struct {
	dir     string
	tp      TopicPartition
	topicID [16]byte
	now     func() time.Time
	logger  hclog.Logger

	// leo and lso mirror the log end and log start offsets for lock-free
	// readers; they are written only with mu held. lso <= leo.
	leo atomic.Int64
	lso atomic.Int64

	mu struct {
		sync.RWMutex
		// Everything below is protected by mu.

		cfg LogConfig
		// segs are the live segments by base offset, sorted and not
		// overlapping; never empty while open. The last is active.
		segs []*segment
		// recoveryPoint: everything below is fsynced; <= leo.
		recoveryPoint int64
		unflushed     int64 // records appended since the last fsync
		lastFlush     time.Time
		producers     producerState
		epochs        *epochCache
		closed        bool
		// doomed segments were removed from segs (retention, truncation,
		// cleaning) and renamed to *.deleted; their files are deleted
		// once no reader can still hold their file ranges.
		doomed []doomedSegment
		// gen counts changes to segs other than by the cleaner
		// (truncation, retention): a cleaning pass started before one is
		// abandoned.
		gen uint64
		// cleanedTo: every record below it has been compacted (the
		// cleaner's checkpoint for this log); lso <= cleanedTo.
		cleanedTo int64
	}

	// cleanMu serialises cleaning passes (and close with them); closing
	// makes a running pass give up.
	cleanMu sync.Mutex
	closing atomic.Bool
	// gapsOK says the log may have offset gaps (it was compacted, or a
	// follower copied compacted batches); recovery then accepts them.
	gapsOK atomic.Bool
	gapsMu sync.Mutex // serialises markGaps
	// hooks connect the log to its manager's cleaner checkpoint; set
	// before the log is shared.
	hooks logHooks
	// cleanBound caps the cleaner and retention (the partition's high
	// watermark).
	cleanBound atomic.Pointer[func() int64]
}

// logHooks are set by the Manager.
type logHooks struct {
	// markGaps persists that the log may have offset gaps, before any is
	// written.
	markGaps func(*Log) error
	// cleaned records a finished cleaning pass.
	cleaned func(*Log, CleanResult)
}

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

// openLog opens the log in dir. Segments at or after recoverFrom are
// validated batch by batch (recover: an unclean stop); with recoverFrom < 0
// nothing is. allowGaps says the log may have offset gaps (compaction: it
// is listed in the cleaner checkpoint); so do the log's own offset-gaps
// marker and a compacted cfg.
func openLog(dir string, tp TopicPartition, topicID [16]byte, cfg LogConfig, recoverFrom int64, allowGaps bool, now func() time.Time, logger hclog.Logger) (*Log, error) {
	l := &Log{dir: dir, tp: tp, topicID: topicID, now: now, logger: logger}
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
		if n := len(l.mu.segs); n > 0 && s.size > 0 && s.base < l.mu.segs[n-1].next {
			s.close()
			l.closeSegments()
			return nil, fmt.Errorf("%w: segment %d of %s-%d overlaps the one before", ErrCorruptBatch, base, tp.Topic, tp.Partition)
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
	l.mu.cleanedTo = l.lso.Load()
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

func (l *Log) active() *segment { return l.mu.segs[len(l.mu.segs)-1] }

func (l *Log) closeSegments() {
	for _, s := range l.mu.segs {
		s.close()
	}
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
		// A new (or empty) log: nothing to rebuild from.
		c.entries = nil
		return c.write()
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
// batches after it.
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
	if !ok {
		p, from = producerState{}, l.lso.Load()
	}
	l.mu.producers = p
	return l.scanHeaders(from, func(h BatchHeader) { l.mu.producers.apply(h) })
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

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// TopicID is the id in partition.metadata.
func (l *Log) TopicID() [16]byte { return l.topicID }

// LogStartOffset is the first offset still in the log.
func (l *Log) LogStartOffset() int64 { return l.lso.Load() }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// Config returns the log's configuration.
func (l *Log) Config() LogConfig {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.cfg
}

// SetConfig changes the log's configuration.
func (l *Log) SetConfig(cfg LogConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	l.mu.cfg = cfg
	l.mu.Unlock()
	return nil
}

// staged is a producer-state update waiting for its batch to be written.
type staged struct {
	id    int64
	known bool
	entry producerEntry
}

// AppendAsLeader appends batches (whole v2 batches, concatenated), assigning
// offsets from the log end and stamping leaderEpoch. Idempotent batches are
// checked against the producer table: a retry of a batch already in the log
// returns ErrDuplicateSequence with the original append's AppendInfo.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32) (AppendInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return AppendInfo{}, ErrClosed
	}
	if len(batches) == 0 {
		return AppendInfo{}, fmt.Errorf("%w: no batches", ErrCorruptBatch)
	}
	leo := l.leo.Load()
	info := AppendInfo{FirstOffset: leo, LastOffset: leo - 1, MaxTimestamp: -1, LogAppendTime: -1, LogStartOffset: l.lso.Load()}
	var stageBuf [1]staged
	stage := stageBuf[:0]
	next := leo
	for b := batches; len(b) > 0; {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return AppendInfo{}, err
		}
		if h.Size() > int64(len(b)) {
			return AppendInfo{}, fmt.Errorf("%w: batch of %d bytes, %d present", ErrCorruptBatch, h.Size(), len(b))
		}
		if l.mu.cfg.MaxMessageBytes > 0 && h.Size() > int64(l.mu.cfg.MaxMessageBytes) {
			return AppendInfo{}, fmt.Errorf("%w: %d bytes exceeds max.message.bytes %d", ErrBatchTooLarge, h.Size(), l.mu.cfg.MaxMessageBytes)
		}
		if h.Idempotent() {
			var st *staged
			for i := range stage {
				if stage[i].id == h.ProducerID {
					st = &stage[i]
				}
			}
			if st == nil {
				e, known := l.mu.producers[h.ProducerID]
				stage = append(stage, staged{id: h.ProducerID, known: known})
				st = &stage[len(stage)-1]
				if known {
					st.entry = *e
				} else {
					st.entry.Epoch = h.ProducerEpoch
				}
			}
			dup, err := st.entry.check(h, st.known)
			if err != nil {
				if errors.Is(err, ErrDuplicateSequence) && len(batches) == int(h.Size()) {
					return AppendInfo{
						FirstOffset: dup.FirstOffset, LastOffset: dup.LastOffset, MaxTimestamp: dup.MaxTimestamp,
						LogAppendTime: -1, LogStartOffset: l.lso.Load(), RecordCount: h.LastOffsetDelta + 1,
					}, ErrDuplicateSequence
				}
				return AppendInfo{}, err
			}
			st.known = true
			hh := h
			hh.BaseOffset = next
			st.entry.update(hh)
		}
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(next))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
		next += int64(h.LastOffsetDelta) + 1
		info.RecordCount += h.RecordCount
		if h.MaxTimestamp > info.MaxTimestamp {
			info.MaxTimestamp = h.MaxTimestamp
		}
		b = b[h.Size():]
	}
	// The staged entries only checked the batches; write applies each
	// batch to the producer table as it is written (a roll inside the
	// write snapshots the table).
	if err := l.write(batches); err != nil {
		return AppendInfo{}, err
	}
	if err := l.mu.epochs.assign(leaderEpoch, leo); err != nil {
		l.logger.Error("cannot write leader epoch checkpoint", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
	}
	info.LastOffset = next - 1
	info.LogStartOffset = l.lso.Load()
	l.assertInvariants("append")
	return info, nil
}

// AppendAsFollower appends batches whose offsets the leader assigned; the
// first must start at the log end. Every batch's CRC is checked.
func (l *Log) AppendAsFollower(batches []byte) (AppendInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return AppendInfo{}, ErrClosed
	}
	leo := l.leo.Load()
	info := AppendInfo{FirstOffset: -1, LastOffset: leo - 1, MaxTimestamp: -1, LogAppendTime: -1}
	next := leo
	gap := false
	err := SplitBatches(batches, func(b []byte) error {
		if err := ValidateBatch(b); err != nil {
			return err
		}
		h, _ := ParseBatchHeader(b)
		if h.BaseOffset < next {
			return fmt.Errorf("%w: batch at offset %d, log end is %d", ErrOffsetOutOfRange, h.BaseOffset, next)
		}
		// A compacted leader's batches may leave offset gaps.
		gap = gap || h.BaseOffset > next
		if info.FirstOffset < 0 {
			info.FirstOffset = h.BaseOffset
		}
		next = h.LastOffset() + 1
		info.RecordCount += h.RecordCount
		info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp)
		return nil
	})
	if err != nil {
		return AppendInfo{}, err
	}
	if info.FirstOffset < leo {
		return AppendInfo{}, fmt.Errorf("%w: first batch at offset %d, log end is %d", ErrOffsetOutOfRange, info.FirstOffset, leo)
	}
	if gap && !l.gapsOK.Load() {
		if err := l.markGaps(); err != nil {
			return AppendInfo{}, err
		}
	}
	if err := l.write(batches); err != nil {
		return AppendInfo{}, err
	}
	_ = SplitBatches(batches, func(b []byte) error {
		h, _ := ParseBatchHeader(b)
		if err := l.mu.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
			l.logger.Error("cannot write leader epoch checkpoint", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
		}
		return nil
	})
	info.LastOffset = next - 1
	info.LogStartOffset = l.lso.Load()
	l.assertInvariants("append as follower")
	return info, nil
}

// write appends whole batches (offsets assigned) to the active segment,
// rolling when needed. The roll decision is made batch by batch, exactly as
// if each batch had been appended alone, so a follower appending a fetch
// response rolls at the same offsets as its leader did and the replicas'
// segment files stay identical. Each batch is applied to the producer
// table once written, before the next roll, so the producer snapshot a
// roll writes at offset X holds every batch below X. Called with l.mu
// held.
func (l *Log) write(batches []byte) error {
	for len(batches) > 0 {
		first, err := ParseBatchHeader(batches)
		if err != nil {
			return err
		}
		if err := l.maybeRoll(first); err != nil {
			return err
		}
		// The longest run of whole batches that fits the active segment.
		s := l.active()
		n := first.Size()
		for n < int64(len(batches)) {
			h, err := ParseBatchHeader(batches[n:])
			if err != nil {
				return err
			}
			if s.size+n+h.Size() > l.mu.cfg.SegmentBytes {
				break
			}
			n += h.Size()
		}
		if err := l.writeChunk(batches[:n]); err != nil {
			return err
		}
		batches = batches[n:]
	}
	return nil
}

// writeChunk writes whole batches to the active segment.
func (l *Log) writeChunk(batches []byte) error {
	s := l.active()
	if _, err := s.f.WriteAt(batches, s.size); err != nil {
		// Leave no partial batch behind.
		_ = truncateFile(s.f, s.filePath(logSuffix), s.size)
		l.logger.Error("append failed", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
		return mapIOError(err)
	}
	pos := s.size
	var records int64
	prevEnd, gapsOK := l.leo.Load(), l.gapsOK.Load()
	for b := batches; len(b) > 0; {
		h, _ := ParseBatchHeader(b)
		l.assertAppended(h, prevEnd, gapsOK)
		prevEnd = h.LastOffset() + 1
		s.track(h, pos, l.mu.cfg.IndexIntervalBytes)
		l.mu.producers.apply(h)
		pos += h.Size()
		records += int64(h.LastOffsetDelta) + 1
		b = b[h.Size():]
	}
	s.size = pos
	l.leo.Store(s.next)
	l.mu.unflushed += records
	if l.mu.unflushed >= l.mu.cfg.FlushMessages {
		return l.flushLocked()
	}
	return nil
}

// maybeRoll starts a new segment when the active one cannot take batch h
// or is older than segment.ms; the new segment is named after h's base
// offset (which a compacted leader's gaps may put above the log end). The
// old segment is sealed and fsynced.
func (l *Log) maybeRoll(h BatchHeader) error {
	n := h.Size()
	s := l.active()
	if s.size == 0 {
		return nil
	}
	full := s.size+n > l.mu.cfg.SegmentBytes
	old := l.now().Sub(s.created) > l.mu.cfg.SegmentMs
	if !full && !old {
		return nil
	}
	if err := s.seal(); err != nil {
		return err
	}
	if err := s.sync(); err != nil {
		return err
	}
	ns, err := createSegment(l.dir, max(h.BaseOffset, s.next), l.now())
	if err != nil {
		return err
	}
	l.mu.segs = append(l.mu.segs, ns)
	l.mu.recoveryPoint = ns.base
	if err := writeProducerSnapshot(l.dir, ns.base, l.mu.producers); err != nil {
		l.logger.Warn("cannot write producer snapshot", "topic", l.tp.Topic, "partition", l.tp.Partition, "error", err)
	}
	l.logger.Debug("rolled segment", "topic", l.tp.Topic, "partition", l.tp.Partition, "base_offset", ns.base, "full", full)
	return nil
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	return l.flushLocked()
}

func (l *Log) flushLocked() error {
	if err := l.active().sync(); err != nil {
		return err
	}
	l.mu.unflushed = 0
	l.mu.lastFlush = l.now()
	l.mu.recoveryPoint = l.leo.Load()
	l.assertInvariants("flush")
	return nil
}

// RecoveryPoint is the offset below which everything is fsynced.
func (l *Log) RecoveryPoint() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.recoveryPoint
}

// segmentFor returns the index of the segment holding offset, or -1.
func (l *Log) segmentFor(offset int64) int {
	i := sort.Search(len(l.mu.segs), func(i int) bool { return l.mu.segs[i].base > offset })
	return i - 1
}

var readHeaderPool = sync.Pool{New: func() any { return new([BatchHeaderSize]byte) }}

// Read returns whole batches starting with the one containing offset, at
// most maxBytes in total except that the first batch is always returned
// whole, and none whose last offset is >= maxOffset. An offset below the log
// start or above the log end is ErrOffsetOutOfRange; at the log end the
// result is empty.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	res := ReadResult{LogStartOffset: l.lso.Load(), LogEndOffset: l.leo.Load()}
	if l.mu.closed {
		return res, ErrClosed
	}
	if offset < res.LogStartOffset || offset > res.LogEndOffset {
		return res, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, res.LogStartOffset, res.LogEndOffset)
	}
	if offset == res.LogEndOffset || offset >= maxOffset {
		return res, nil
	}
	hdr := readHeaderPool.Get().(*[BatchHeaderSize]byte)
	defer readHeaderPool.Put(hdr)
	for i := max(l.segmentFor(offset), 0); i < len(l.mu.segs); i++ {
		s := l.mu.segs[i]
		if s.next <= offset {
			continue
		}
		start, h, ok, err := s.find(offset)
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		pos := start
		for {
			if h.LastOffset() >= maxOffset {
				break
			}
			if pos > start && pos-start+h.Size() > int64(maxBytes) {
				break
			}
			pos += h.Size()
			if pos >= s.size {
				break
			}
			if h, err = s.readHeader(pos, hdr); err != nil {
				return res, err
			}
		}
		if pos > start {
			res.Ranges = []FileRange{{File: s.f, Pos: start, Size: pos - start}}
			res.Size = pos - start
		}
		return res, nil
	}
	return res, nil
}

// ReadInto appends the bytes of the ranges to dst.
func (r ReadResult) ReadInto(dst []byte) ([]byte, error) {
	for _, fr := range r.Ranges {
		n := len(dst)
		dst = append(dst, make([]byte, fr.Size)...)
		if _, err := fr.File.ReadAt(dst[n:], fr.Pos); err != nil {
			return dst[:n], err
		}
	}
	return dst, nil
}

// OffsetForTimestamp returns the first offset whose batch max timestamp is
// >= ts, and that batch's max timestamp; ok is false when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (int64, int64, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, 0, false, ErrClosed
	}
	var hdr [BatchHeaderSize]byte
	for _, s := range l.mu.segs {
		if s.maxTs < ts || s.size == 0 {
			continue
		}
		for pos := s.lookup(s.lookupTime(ts)); pos < s.size; {
			h, err := s.readHeader(pos, &hdr)
			if err != nil {
				return 0, 0, false, err
			}
			if h.MaxTimestamp >= ts {
				return max(h.BaseOffset, l.lso.Load()), h.MaxTimestamp, true, nil
			}
			pos += h.Size()
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the largest timestamp in the log and the last offset
// of its batch; (-1, -1) when the log is empty.
func (l *Log) MaxTimestamp() (int64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ts, off := int64(-1), int64(-1)
	for _, s := range l.mu.segs {
		if s.maxTs > ts {
			ts, off = s.maxTs, s.maxTsOffset
		}
	}
	return ts, off
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch
// this log knows and the offset where it ended.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.epochs.endOffsetFor(epoch, l.leo.Load())
}

// LatestEpoch is the newest leader epoch in the log, -1 when none.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if e, ok := l.mu.epochs.latest(); ok {
		return e.Epoch
	}
	return -1
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
		l.lso.Store(ns.base)
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
	l.mu.recoveryPoint = min(l.mu.recoveryPoint, l.leo.Load())
	l.mu.cleanedTo = max(min(l.mu.cleanedTo, l.active().base), l.lso.Load())
	if err := l.mu.epochs.truncateFromEnd(l.leo.Load()); err != nil {
		return err
	}
	if err := dropProducerSnapshotAbove(l.dir, l.leo.Load()); err != nil {
		return l.failed("truncate", err)
	}
	l.mu.producers = producerState{}
	if err := l.scanHeaders(l.lso.Load(), func(h BatchHeader) { l.mu.producers.apply(h) }); err != nil {
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
		expired := l.mu.cfg.RetentionMs >= 0 && s.maxTs >= 0 && now.UnixMilli()-s.maxTs > l.mu.cfg.RetentionMs.Milliseconds()
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
		l.lso.Store(l.mu.segs[0].base)
		l.assertInvariants("retention")
		l.mu.cleanedTo = max(l.mu.cleanedTo, l.mu.segs[0].base)
		l.logger.Info("retention deleted segments", "topic", l.tp.Topic, "partition", l.tp.Partition,
			"segments", removed, "log_start_offset", l.mu.segs[0].base)
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

// maybeFlushByTime fsyncs when flush.ms has passed with unflushed records.
func (l *Log) maybeFlushByTime() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed || l.mu.unflushed == 0 || l.now().Sub(l.mu.lastFlush) < l.mu.cfg.FlushMs {
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
