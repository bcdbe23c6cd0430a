package storage

// The cleaner's rewrite: the two passes of a cleaning pass (the latest
// offset of every key, then each segment rewritten without the records
// they supersede), the swap of a rewritten segment into the log, and the
// batch and record iterators they use. The rules are in cleaner.go.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"
)

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
		// The larger offset wins: a committed transaction's records are
		// put when its marker is reached, after later records of others.
		m.offs[i] = max(m.offs[i], off)
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
	// open holds, per producer, its transaction's data seen so far in the
	// range (batch base offsets and record keys). committed are the base
	// offsets of transactional data batches whose commit marker is in the
	// range: they are cleaned like any batch; aborted those of batches
	// whose abort marker is: they go. Batches of a transaction whose
	// marker is beyond the range are kept whole and supersede nothing.
	open      map[int64]*openTxn
	committed map[int64]bool
	aborted   map[int64]bool
	// newestMarker: producer id -> base offset of its newest marker in the
	// range (kept: it carries the coordinator epoch the producer state
	// fences older coordinators with, and a replica that missed the
	// records of a transaction whose marker went must find a later one).
	newestMarker map[int64]int64
	// txnKept (pass 2): producer id -> a data batch of its current
	// transaction is kept in this pass (so its marker must stay).
	txnKept map[int64]bool
}

// openTxn is one producer's transactional data seen in the cleaned range,
// its marker not yet reached.
type openTxn struct {
	batches []int64
	keys    []keyAt
}

type keyAt struct {
	key []byte
	off int64
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
		retention: cfg.DeleteRetention.Milliseconds(),
		open:      map[int64]*openTxn{},
		committed: map[int64]bool{},
		aborted:   map[int64]bool{},

		newestMarker: map[int64]int64{},
		txnKept:      map[int64]bool{},
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
				// A marker ends its producer's transaction: on commit
				// its records count from here on.
				return p.endTxn(h, b)
			}
			recs, err := p.decompress(h, b)
			if err != nil {
				return err
			}
			var txn *openTxn
			if h.Attributes&attrTransactional != 0 {
				txn = p.open[h.ProducerID]
				if txn == nil {
					txn = &openTxn{}
					p.open[h.ProducerID] = txn
				}
				txn.batches = append(txn.batches, h.BaseOffset)
			}
			it := &p.recs
			for it.reset(recs); it.next(); {
				if it.r.Key == nil {
					continue
				}
				off := h.BaseOffset + int64(it.r.OffsetDelta)
				if txn != nil {
					txn.keys = append(txn.keys, keyAt{key: append([]byte(nil), it.r.Key...), off: off})
				} else {
					p.keys.put(it.r.Key, off)
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
	if err := syncFile(f, path); err != nil {
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
	// open file) before the swap file takes the segment's name. A failure
	// now leaves the files ahead of segs: the log stops until reopened,
	// and opening finishes the swap.
	if err := old.markDeleted(); err != nil {
		return l.failed("clean", err)
	}
	if err := renameFile(swap, ns.path(logSuffix)); err != nil {
		return l.failed("clean", err)
	}
	if err := syncDir(l.dir); err != nil {
		l.logger.Warn("cannot fsync log directory after swap", "dir", l.dir, "error", err)
	}
	// Abort markers are kept: so is the aborted transactions index.
	ns.txns = old.txns
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
	if h.Control() {
		return p.cleanMarker(h, b, lastInSegment)
	}
	if !h.Transactional() {
		return p.cleanRecords(h, b, lastInSegment, false)
	}
	out, removed, err := b, int64(0), error(nil)
	switch {
	case p.aborted[h.BaseOffset]:
		out, removed, err = p.cleanRecords(h, b, lastInSegment, true)
	case p.committed[h.BaseOffset]:
		out, removed, err = p.cleanRecords(h, b, lastInSegment, false)
	}
	if out != nil {
		p.txnKept[h.ProducerID] = true
	}
	return out, removed, err
}

// cleanMarker returns control batch b as it is, or nil when it goes: a
// commit marker goes once it is older than delete.retention.ms (log time)
// and nothing of its transaction is left, none of its data batches kept in
// this pass (those of earlier passes are gone: the range starts at the log
// start, and a transaction's data precedes its marker), and a later marker
// of its producer is in the range. Removing a marker while a batch of its
// transaction stays would reopen that transaction for every replay of the
// log (recovery, a follower copying it).
//
// Abort markers stay for good, unlike Kafka's: a follower that was away
// while its leader cleaned may hold records of the aborted transaction
// that the leader has since removed. Without the marker, a replay of its
// log joins them to the producer's next transaction, which may commit:
// aborted records would become visible on that replica. A lagging follower
// that joins a removed commit marker's records to the next transaction
// only loses or shows again records that newer ones superseded, which
// compaction allows. (Kafka's followers have the same exposure; its
// answer is delete.retention.ms.)
//
// A marker also stays, as an empty batch would, when it is the last batch
// of its segment, carries the log time, or is its producer's newest batch.
func (p *cleanPlan) cleanMarker(h BatchHeader, b []byte, lastInSegment bool) ([]byte, int64, error) {
	m, ok, err := ParseControlBatch(b)
	if err != nil || !ok {
		// Not an end-transaction marker: kept, and it ends nothing.
		return b, 0, nil
	}
	kept := p.txnKept[h.ProducerID]
	delete(p.txnKept, h.ProducerID)
	if !m.Commit() || kept || p.logTime-h.MaxTimestamp <= p.retention || lastInSegment || h.BaseOffset == p.logTimeAt ||
		p.newest[h.ProducerID] == h.BaseOffset || p.newestMarker[h.ProducerID] == h.BaseOffset {
		return b, 0, nil
	}
	return nil, int64(h.RecordCount), nil
}

// cleanRecords cleans a data batch: records superseded, tombstones past
// delete.retention.ms and, with drop, all of them are removed.
func (p *cleanPlan) cleanRecords(h BatchHeader, b []byte, lastInSegment, drop bool) ([]byte, int64, error) {
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
		if r := &it.r; drop || r.Key != nil {
			if drop || p.keys.latest(r.Key) != h.BaseOffset+int64(r.OffsetDelta) ||
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

// endTxn applies control batch b of h.ProducerID: a commit makes the
// transaction's records count and its batches cleanable, an abort makes
// its batches go. A control batch that is not an end-transaction marker
// ends nothing, as for the producer state.
func (p *cleanPlan) endTxn(h BatchHeader, b []byte) error {
	txn := p.open[h.ProducerID]
	m, ok, err := ParseControlBatch(b)
	if err != nil {
		if txn == nil {
			return nil // kept as it is (cleanMarker)
		}
		return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	if !ok {
		return nil
	}
	p.newestMarker[h.ProducerID] = h.BaseOffset
	if txn == nil {
		return nil
	}
	delete(p.open, h.ProducerID)
	if !m.Commit() {
		for _, off := range txn.batches {
			p.aborted[off] = true
		}
		return nil
	}
	for _, k := range txn.keys {
		p.keys.put(k.key, k.off)
	}
	for _, off := range txn.batches {
		p.committed[off] = true
	}
	return nil
}
