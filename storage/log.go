package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// writeback is Config.WritebackBytes (writeBack); 0: off.
	writeback int64

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
		// cleaner's checkpoint for this log); a segment base, the
		// first segment's or above.
		cleanedTo int64
		// startFile: the log's logStartFile exists (the log start is
		// above the first segment's base, see log_start.go).
		startFile bool
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

	// txns are the open and unreplicated transactions (txn.go): written
	// with mu held for writing and txnMu, read under either. txnUnstable
	// says txns may hold one (the LSO then needs a look).
	txns        txnTable
	txnMu       sync.Mutex
	txnUnstable atomic.Bool
}

// logHooks are set by the Manager.
type logHooks struct {
	// markGaps persists that the log may have offset gaps, before any is
	// written.
	markGaps func(*Log) error
	// cleaned records a finished cleaning pass.
	cleaned func(*Log, CleanResult)
}

func (l *Log) active() *segment { return l.mu.segs[len(l.mu.segs)-1] }

func (l *Log) closeSegments() {
	for _, s := range l.mu.segs {
		s.close()
	}
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// TopicID is the id in partition.metadata.
func (l *Log) TopicID() [16]byte { return l.topicID }

// LogStartOffset is the first offset still in the log.
func (l *Log) LogStartOffset() int64 { return l.lso.Load() }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// Size is the bytes of the log's segment files (the .log files, not their
// indexes), as Kafka's DescribeLogDirs reports a partition's size.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.mu.segs {
		n += s.size
	}
	return n
}

// Segments is the number of the log's segments (the active one included).
func (l *Log) Segments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.mu.segs)
}

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
		if h.Transactional() && !h.Idempotent() {
			return AppendInfo{}, fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidTxnState)
		}
		if h.Control() {
			// A transaction marker (AppendMarker): its checks, not the
			// sequence checks.
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
					st.entry.Epoch, st.entry.CoordinatorEpoch = h.ProducerEpoch, -1
				}
			}
			m, ok, err := ParseControlBatch(b[:h.Size()])
			if err != nil {
				return AppendInfo{}, err
			}
			if ok {
				if err := st.entry.checkMarker(h.ProducerEpoch, m.CoordinatorEpoch, st.known); err != nil {
					return AppendInfo{}, err
				}
				st.known = true
				st.entry.endTxn(h, m.CoordinatorEpoch)
			}
		} else if h.Idempotent() {
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
	return l.AppendAsFollowerFrom(batches, -1)
}

// AppendAsFollowerFrom is AppendAsFollower for batches its leader read from
// its segment based at leaderSegment (-1: not known, or the batches do not
// begin a leader segment): the log first rolls where the leader's did,
// when it has not yet (a follower never rolls by its own segments' age,
// only by size and there), so that a follower copying
// a compacted log (whose cleaned segments are smaller than segment.bytes)
// holds the leader's segments, and so cleans the same ranges to the same
// bytes. (Uncompacted logs roll by size at the same offsets anyway.)
func (l *Log) AppendAsFollowerFrom(batches []byte, leaderSegment int64) (AppendInfo, error) {
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
	if s := l.active(); leaderSegment > s.base && leaderSegment >= s.next && info.FirstOffset >= leaderSegment && s.size > 0 {
		if err := l.roll(leaderSegment, "leader"); err != nil {
			return AppendInfo{}, err
		}
	}
	// The leader's segments alone say where to roll by age (segment.ms):
	// this replica's segment ages differ from the leader's.
	if err := l.writeRolling(batches, false); err != nil {
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
func (l *Log) write(batches []byte) error { return l.writeRolling(batches, true) }

// writeRolling is write; without byAge, the active segment's age does not
// roll it (its size still does).
func (l *Log) writeRolling(batches []byte, byAge bool) error {
	for len(batches) > 0 {
		first, err := ParseBatchHeader(batches)
		if err != nil {
			return err
		}
		if err := l.maybeRoll(first, byAge); err != nil {
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
	start := s.size
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
		var ctl ControlMarker
		ctlOK := false
		if h.Control() && h.Idempotent() {
			ctl, ctlOK, _ = ParseControlBatch(b[:h.Size()])
		}
		l.applyTxn(h, ctl, ctlOK, s)
		pos += h.Size()
		records += int64(h.LastOffsetDelta) + 1
		b = b[h.Size():]
	}
	s.size = pos
	l.writeBack(s, start)
	l.leo.Store(s.next)
	l.mu.unflushed += records
	if l.mu.unflushed >= l.mu.cfg.FlushMessages {
		return l.flushLocked()
	}
	return nil
}

// writeBack asks the kernel to start writing the active segment's new
// bytes to disk once l.writeback of them have piled up since the last
// time (start: where this append began). Without it the kernel's own
// writeback writes a busy segment's dirty pages in one burst when the
// oldest is dirty_expire_centisecs (30 s) old: gigabytes at once on a
// loaded broker, which took the CPU and the disk from appends for 100s
// of ms (records over 50 ms at 20 MB/s on a 2-core VM, none with this).
// It does not wait for the disk. The call itself runs under the log's
// lock, once per l.writeback bytes; it returns at once unless the disk's
// queue is full (up to 16 ms seen on this VM while a roll's fsync ran).
//
// Then, unless one still runs, a goroutine of its own waits for those
// bytes to reach the disk (fdatasync), outside the lock. A roll fsyncs
// the old segment under the lock, and that fsync waits for every byte of
// the segment not yet on disk: 45-145 ms under load on the development
// VM's ext4 with 16 MiB segments, every append to the partition (and a
// follower's whole fetch loop) held that long; with the background sync
// the roll has at most about l.writeback bytes left to wait for. It makes
// more durable sooner and nothing less: what a crash may lose, and so
// what recovery must handle, is unchanged, and the fsyncs that count
// (flush.messages, flush.ms, rolls, shutdown) happen where they did; they
// wait for a background sync in flight and report its error
// (segment.sync).
func (l *Log) writeBack(s *segment, start int64) {
	if s.writtenBack > start {
		s.writtenBack = start // truncated below it since
	}
	if l.writeback <= 0 || s.size-s.writtenBack < l.writeback {
		return
	}
	startWriteback(s.f, s.writtenBack, s.size-s.writtenBack)
	s.writtenBack = s.size
	if s.bgSync.TryLock() { // else one is still running
		go func(sync func(*os.File) error, f *os.File) {
			if err := sync(f); err != nil && s.bgErr == nil {
				s.bgErr = err
			}
			s.bgSync.Unlock()
		}(backgroundSync, s.f)
	}
}

// maybeRoll starts a new segment when the active one cannot take batch h
// or is older than segment.ms; the new segment is named after h's base
// offset (which a compacted leader's gaps may put above the log end). The
// old segment is sealed and fsynced.
func (l *Log) maybeRoll(h BatchHeader, byAge bool) error {
	n := h.Size()
	s := l.active()
	if s.size == 0 {
		return nil
	}
	full := s.size+n > l.mu.cfg.SegmentBytes
	old := byAge && l.now().Sub(s.created) > l.mu.cfg.SegmentAge
	if !full && !old {
		return nil
	}
	reason := "age"
	if full {
		reason = "size"
	}
	return l.roll(max(h.BaseOffset, s.next), reason)
}

// roll seals and fsyncs the active segment and starts a new one at base
// (>= the log end). Called with l.mu held.
func (l *Log) roll(base int64, reason string) error {
	s := l.active()
	if err := s.seal(); err != nil {
		return err
	}
	if err := s.sync(); err != nil {
		return err
	}
	ns, err := createSegment(l.dir, base, l.now())
	if err != nil {
		return err
	}
	l.mu.segs = append(l.mu.segs, ns)
	l.mu.recoveryPoint = ns.base
	if err := writeProducerSnapshot(l.dir, ns.base, l.mu.producers); err != nil {
		// The snapshot is never older than the active segment (or there is
		// none, and opening replays the whole log): the cleaner removes
		// markers below it, and a replay starting from an older snapshot
		// that holds their transactions open would never close them.
		rmErr := removeFile(filepath.Join(l.dir, producerSnapshotFile))
		l.logger.Warn("cannot write producer snapshot; removed the old one", "topic", l.tp.Topic, "partition", l.tp.Partition,
			"error", err, "remove_error", rmErr)
	}
	l.logger.Debug("rolled segment", "topic", l.tp.Topic, "partition", l.tp.Partition, "base_offset", ns.base, "reason", reason)
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
	return l.readLocked(offset, maxBytes, maxOffset)
}

// ReadCommitted is Read for a read_committed consumer: the batches and the
// aborted transactions overlapping them (AbortedTxns), taken together under
// the log's lock, so a cleaning pass that removes an aborted transaction's
// records and its index entry cannot fall between the two (the batches of
// the old segment file with the index of the new one).
func (l *Log) ReadCommitted(offset int64, maxBytes int32, maxOffset int64) (ReadResult, []AbortedTxn, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	rr, err := l.readLocked(offset, maxBytes, maxOffset)
	if err != nil || rr.Size == 0 {
		return rr, nil, err
	}
	return rr, l.abortedTxnsLocked(offset, rr.NextOffset), nil
}

// readLocked is Read; called with l.mu held.
func (l *Log) readLocked(offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
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
		if start, end, last, found, known := s.recent.span(offset, maxBytes, maxOffset, s.size); known {
			if !found {
				continue
			}
			if end > start {
				res.Ranges = []FileRange{{File: s.f, Pos: start, Size: end - start}}
				res.Size = end - start
				res.SegmentBase = s.base
				res.NextOffset = last + 1
			}
			return res, nil
		}
		start, h, ok, err := s.find(offset)
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		pos, next := start, int64(0)
		for {
			if h.LastOffset() >= maxOffset {
				break
			}
			if pos > start && pos-start+h.Size() > int64(maxBytes) {
				break
			}
			pos += h.Size()
			next = h.LastOffset() + 1
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
			res.SegmentBase = s.base
			res.NextOffset = next
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
