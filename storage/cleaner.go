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
//   - control batches are kept as they are;
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
// A segment is rewritten in place: "<base>.log.cleaned" is written and
// fsynced, renamed to "<base>.log.swap", the old indexes are removed and the
// swap file renamed over "<base>.log"; the indexes are then rebuilt. Opening
// a log finishes or discards the leftovers of an interrupted swap. Readers
// holding ranges of the old file keep it open until the doomed-segment
// delay passes.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	lag := l.mu.cfg.MinCompactionLagMs.Milliseconds()
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
	if dirty > 0 && firstDirtyTs >= 0 && nowMs-firstDirtyTs > l.mu.cfg.MaxCompactionLagMs.Milliseconds() {
		return end, true
	}
	return 0, false
}

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

// offsetMap maps each key of the cleaned range to its latest offset.
// Lookups by []byte do not allocate (the compiler's map[string(b)]
// optimisation); a new key is copied into arena, a chunk shared by many
// keys, so there is no allocation per key either.
type offsetMap struct {
	idx   map[string]int32
	offs  []int64
	arena []byte // keys are never modified once copied here
}

func (m *offsetMap) put(key []byte, off int64) {
	if i, ok := m.idx[string(key)]; ok {
		m.offs[i] = off
		return
	}
	m.idx[m.intern(key)] = int32(len(m.offs))
	m.offs = append(m.offs, off)
}

// intern returns a string with key's bytes, backed by the arena.
func (m *offsetMap) intern(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	if len(key) > cap(m.arena)-len(m.arena) {
		m.arena = make([]byte, 0, max(256<<10, len(key)))
	}
	at := len(m.arena)
	m.arena = append(m.arena, key...)
	return unsafe.String(&m.arena[at], len(key))
}

func (m *offsetMap) latest(key []byte) int64 {
	if i, ok := m.idx[string(key)]; ok {
		return m.offs[i]
	}
	return -1
}

// cleanPlan is what the first pass learns about the cleaned range.
type cleanPlan struct {
	keys      offsetMap
	newest    map[int64]int64 // producer id -> base offset of its newest batch
	logTime   int64           // largest batch max timestamp
	logTimeAt int64           // base offset of the last batch carrying it
	retention int64           // delete.retention.ms
	buf       []byte          // scratch for kept records
	out       []byte          // scratch for the rewritten batch
	dec       []byte          // scratch for decompressed records
	recs      recordIter
	scan      batchScanner
	w         *bufio.Writer
}

func (l *Log) cleanTo(limit int64) (CleanResult, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	start := time.Now()
	bound := l.bound(limit)
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return CleanResult{}, ErrClosed
	}
	cfg := l.mu.cfg
	gen := l.mu.gen
	segs, boundary := l.cleanableLocked(bound, l.now().UnixMilli())
	sizes := make([]int64, len(segs))
	for i, s := range segs {
		sizes[i] = s.size
	}
	l.mu.RUnlock()
	res := CleanResult{CleanedTo: boundary, Segments: len(segs)}
	if len(segs) == 0 {
		return res, nil
	}

	// Pass 1: the latest offset of every key, the producers' newest
	// batches and the log time.
	p := &cleanPlan{
		keys:      offsetMap{idx: map[string]int32{}},
		newest:    map[int64]int64{},
		logTime:   -1,
		logTimeAt: -1,
		retention: cfg.DeleteRetentionMs.Milliseconds(),
	}
	for i, s := range segs {
		err := p.scan.forEach(s.f, sizes[i], func(_ int64, h BatchHeader, b []byte) error {
			if l.closing.Load() {
				return errCleanAborted
			}
			res.BytesBefore += h.Size()
			if h.MaxTimestamp >= p.logTime {
				p.logTime, p.logTimeAt = h.MaxTimestamp, h.BaseOffset
			}
			if h.Idempotent() {
				p.newest[h.ProducerID] = h.BaseOffset
			}
			if h.Attributes&attrControl != 0 {
				return nil
			}
			recs, err := p.decompress(h, b)
			if err != nil {
				return err
			}
			it := &p.recs
			for it.reset(recs); it.next(); {
				if it.r.Key != nil {
					p.keys.put(it.r.Key, h.BaseOffset+int64(it.r.OffsetDelta))
				}
			}
			if it.err != nil {
				return fmt.Errorf("%w: batch at offset %d: %v", ErrCorruptBatch, h.BaseOffset, it.err)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}

	// Recovery must accept gaps before the first one reaches the disk.
	if err := l.markGaps(); err != nil {
		return res, err
	}

	// Pass 2: rewrite each segment that changes.
	for i, s := range segs {
		ns, after, err := l.cleanSegment(s, sizes[i], p, cfg.IndexIntervalBytes, &res)
		if err != nil {
			return res, err
		}
		res.BytesAfter += after
		if ns == nil {
			continue
		}
		if err := l.swapSegment(s, ns, gen); err != nil {
			ns.f.Close()
			_ = removeFile(ns.path(logSuffix + cleanedSuffix))
			return res, err
		}
		res.SegmentsRewritten++
	}
	l.mu.Lock()
	if l.mu.gen == gen {
		l.mu.cleanedTo = max(l.mu.cleanedTo, boundary)
	}
	// A truncation meanwhile may have lowered it.
	res.CleanedTo = l.mu.cleanedTo
	l.mu.Unlock()
	res.Duration = time.Since(start)
	if l.hooks.cleaned != nil {
		l.hooks.cleaned(l, res)
	}
	return res, nil
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

// cleanSegment writes the cleaned copy of s to "<base>.log.cleaned" and
// returns it as a new segment (indexes built, file fsynced); nil when
// nothing changes. after is the cleaned size either way. The file is only
// created at the first batch that changes (the unchanged batches before it
// are then copied from s as they are), so a segment that stays as it is
// costs one read.
func (l *Log) cleanSegment(s *segment, size int64, p *cleanPlan, indexInterval int32, res *CleanResult) (*segment, int64, error) {
	ns := &segment{dir: s.dir, base: s.base, next: s.base, maxTs: -1, maxTsOffset: -1, created: s.created}
	path := ns.path(logSuffix + cleanedSuffix)
	var f *os.File
	fail := func(err error) (*segment, int64, error) {
		if f != nil {
			f.Close()
			_ = removeFile(path)
		}
		return nil, 0, err
	}
	// start creates the file, holding s's first n bytes (unchanged).
	start := func(n int64) error {
		var err error
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			f = nil
			return mapIOError(err)
		}
		if p.w == nil {
			p.w = bufio.NewWriterSize(f, 1<<20)
		}
		p.w.Reset(f)
		if _, err := p.w.ReadFrom(io.NewSectionReader(s.f, 0, n)); err != nil {
			return mapIOError(err)
		}
		return nil
	}
	var pos int64
	err := p.scan.forEach(s.f, size, func(at int64, h BatchHeader, b []byte) error {
		if l.closing.Load() {
			return errCleanAborted
		}
		last := at+h.Size() == size
		out, removed, err := p.cleanBatch(h, b, last)
		if err != nil {
			return err
		}
		res.RecordsRemoved += removed
		// (cleanBatch returns b itself when nothing changes; a rewritten
		// batch may still come out the same, e.g. an empty one.)
		same := out != nil && len(out) == len(b) && (&out[0] == &b[0] || bytes.Equal(out, b))
		if f == nil && !same {
			// The first change: everything before it is kept as it is.
			if err := start(at); err != nil {
				return err
			}
		}
		if out == nil {
			res.BatchesRemoved++
			return nil
		}
		if f != nil {
			if _, err := p.w.Write(out); err != nil {
				return mapIOError(err)
			}
		}
		nh := h
		if !same {
			nh, _ = ParseBatchHeader(out)
		}
		ns.track(nh, pos, indexInterval)
		pos += int64(len(out))
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if f == nil {
		return nil, size, nil
	}
	w := p.w
	if err := w.Flush(); err != nil {
		return fail(mapIOError(err))
	}
	if err := syncFile(f); err != nil {
		return fail(err)
	}
	ns.f, ns.size = f, pos
	ns.addTimeEntry()
	return ns, pos, nil
}

// swapSegment replaces old with its cleaned copy ns, on disk and in segs.
func (l *Log) swapSegment(old, ns *segment, gen uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed || l.mu.gen != gen {
		return errCleanAborted
	}
	idx := -1
	for i, s := range l.mu.segs[:len(l.mu.segs)-1] {
		if s == old {
			idx = i
		}
	}
	if idx < 0 {
		return errCleanAborted
	}
	cleaned, swap := ns.path(logSuffix+cleanedSuffix), ns.path(logSuffix+swapSuffix)
	if err := renameFile(cleaned, swap); err != nil {
		return err
	}
	// From here on the cleaned copy wins, even after a crash. The old
	// files are renamed away (recovery ignores them; readers keep the
	// open file) before the swap file takes the segment's name.
	if err := old.markDeleted(); err != nil {
		return err
	}
	if err := renameFile(swap, ns.path(logSuffix)); err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		l.logger.Warn("cannot fsync log directory after swap", "dir", l.dir, "error", err)
	}
	if err := ns.rewriteIndexes(); err != nil {
		// The next open rebuilds them.
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			_ = removeFile(ns.path(suf))
		}
		ns.idxWritten, ns.tixWritten = len(ns.index), len(ns.tindex)
	}
	l.mu.segs[idx] = ns
	l.assertInvariants("clean")
	// Readers may still hold ranges of the old file: it is closed and its
	// "*.deleted" files removed when reaped.
	l.mu.doomed = append(l.mu.doomed, doomedSegment{seg: old, at: l.now()})
	return nil
}

// cleanBatch returns the cleaned batch (b itself when nothing changes, nil
// when it goes) and how many records it lost.
func (p *cleanPlan) cleanBatch(h BatchHeader, b []byte, lastInSegment bool) ([]byte, int64, error) {
	if h.Attributes&attrControl != 0 {
		return b, 0, nil
	}
	codec := int(h.Attributes & attrCodecMask)
	recs, err := p.decompress(h, b)
	if err != nil {
		return nil, 0, err
	}
	expired := p.logTime-h.MaxTimestamp > p.retention
	total, kept := 0, 0
	// Kept records are copied to p.buf only once one is dropped: a batch
	// that keeps them all is returned as it is.
	dropped := false
	p.buf = p.buf[:0]
	it := &p.recs
	for it.reset(recs); it.next(); {
		total++
		if r := &it.r; r.Key != nil {
			if p.keys.latest(r.Key) != h.BaseOffset+int64(r.OffsetDelta) ||
				r.Value == nil && expired { // superseded, or a tombstone past delete.retention.ms
				if !dropped {
					dropped = true
					p.buf = append(p.buf, recs[:it.at]...)
				}
				continue
			}
		}
		kept++
		if dropped {
			p.buf = append(p.buf, it.raw...)
		}
	}
	if it.err != nil {
		return nil, 0, fmt.Errorf("%w: batch at offset %d: %v", ErrCorruptBatch, h.BaseOffset, it.err)
	}
	removed := int64(total - kept)
	if kept > 0 && kept == total && int(h.RecordCount) == total {
		return b, 0, nil
	}
	if !dropped {
		p.buf = append(p.buf, recs...)
	}
	attrs := h.Attributes
	p.out = append(p.out[:0], b[:BatchHeaderSize]...)
	if kept == 0 {
		keep := lastInSegment || h.BaseOffset == p.logTimeAt ||
			h.Idempotent() && p.newest[h.ProducerID] == h.BaseOffset
		if !keep {
			return nil, removed, nil
		}
		// An empty batch carries no records section, so no codec.
		attrs &^= attrCodecMask
	} else if p.out, err = compress(p.out, codec, p.buf); err != nil {
		return nil, 0, err
	}
	out := p.out
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(kept))
	return SealBatch(out), removed, nil
}

// batchScanner reads the batches of segment files, reusing its buffers.
type batchScanner struct {
	r   *bufio.Reader
	buf []byte
}

// forEach calls fn with every batch of the first size bytes of f (b is
// only valid during the call). The CRC of each batch is checked.
func (sc *batchScanner) forEach(f *os.File, size int64, fn func(pos int64, h BatchHeader, b []byte) error) error {
	src := io.NewSectionReader(f, 0, size)
	if sc.r == nil {
		sc.r, sc.buf = bufio.NewReaderSize(src, 1<<20), make([]byte, 64<<10)
	}
	sc.r.Reset(src)
	r := sc.r
	defer sc.r.Reset(nil)
	for pos := int64(0); pos < size; {
		buf := sc.buf
		if _, err := io.ReadFull(r, buf[:BatchHeaderSize]); err != nil {
			return mapIOError(err)
		}
		h, err := ParseBatchHeader(buf[:BatchHeaderSize])
		if err != nil {
			return err
		}
		n := int(h.Size())
		if pos+int64(n) > size {
			return fmt.Errorf("%w: batch at position %d runs past the segment end", ErrCorruptBatch, pos)
		}
		if n > len(buf) {
			nb := make([]byte, n)
			copy(nb, buf[:BatchHeaderSize])
			buf, sc.buf = nb, nb
		}
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:n]); err != nil {
			return mapIOError(err)
		}
		if crc32.Checksum(buf[offAttributes:n], castagnoli) != h.CRC {
			return fmt.Errorf("%w: CRC mismatch in batch at offset %d", ErrCorruptBatch, h.BaseOffset)
		}
		if err := fn(pos, h, buf[:n]); err != nil {
			return err
		}
		pos += int64(n)
	}
	return nil
}

// decompress returns the records section of batch b (header h), in p.dec
// when it is compressed.
func (p *cleanPlan) decompress(h BatchHeader, b []byte) ([]byte, error) {
	recs, err := decompressTo(p.dec, int(h.Attributes&attrCodecMask), b[BatchHeaderSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: batch at offset %d: %v", ErrCorruptBatch, h.BaseOffset, err)
	}
	if h.Attributes&attrCodecMask != codecNone && cap(recs) > cap(p.dec) {
		p.dec = recs[:0]
	}
	return recs, nil
}

// recordIter decodes the records of a (decompressed) records section one
// by one with kmsg, without allocating: r (its byte slices alias the
// section) and raw (the record's bytes, length prefix included, at offset
// at of the section) are valid until the next call to next.
type recordIter struct {
	r    kmsg.Record
	raw  []byte
	at   int
	recs []byte
	err  error
}

func (it *recordIter) reset(recs []byte) {
	it.recs, it.raw, it.at, it.err = recs, nil, 0, nil
}

// next decodes the next record; false at the end of the section or on
// error (in it.err).
func (it *recordIter) next() bool {
	it.at += len(it.raw)
	rest := it.recs[it.at:]
	it.raw = nil
	if len(rest) == 0 || it.err != nil {
		return false
	}
	if err := it.r.UnsafeReadFrom(rest); err != nil {
		it.err = err
		return false
	}
	var vb [binary.MaxVarintLen64]byte
	n := len(binary.AppendVarint(vb[:0], int64(it.r.Length))) + int(it.r.Length)
	if it.r.Length < 0 || n > len(rest) {
		it.err = fmt.Errorf("record length %d exceeds the batch", it.r.Length)
		return false
	}
	it.raw = rest[:n]
	return true
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
	l.mu.cleanedTo = max(min(cleanedTo, l.active().base), l.lso.Load())
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

// ErrNoKey: a record without a key was produced to a compacted topic
// (Kafka answers INVALID_RECORD).
var ErrNoKey = errors.New("storage: compacted topic record without a key")

// CheckKeys checks that every record of batch (one whole, valid v2 batch,
// any codec) has a key, as a compacted topic requires. It decompresses the
// batch (one buffer per batch, nothing per record).
func CheckKeys(batch []byte) error {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if h.Attributes&attrControl != 0 || int64(len(batch)) < h.Size() {
		return nil
	}
	recs, err := decompress(int(h.Attributes&attrCodecMask), batch[BatchHeaderSize:h.Size()])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	missing := false
	var it recordIter
	for it.reset(recs); it.next(); {
		missing = missing || it.r.Key == nil
	}
	if it.err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptBatch, it.err)
	}
	if missing {
		return ErrNoKey
	}
	return nil
}
