package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File name suffixes of a segment, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	// deletedSuffix marks the files of a segment removed from the log
	// (truncation, retention, cleaning) until the delayed delete unlinks
	// them; recovery never loads them.
	deletedSuffix = ".deleted"

	indexEntrySize     = 8  // relative offset int32, position int32
	timeIndexEntrySize = 12 // timestamp int64, relative offset int32
)

// indexEntry maps the last offset of a batch (relative to the segment's
// base) to the batch's position in the segment file.
type indexEntry struct {
	rel int32
	pos int32
}

// timeEntry maps the largest timestamp seen so far in the segment to the
// offset (relative) of the batch that carried it.
type timeEntry struct {
	ts  int64
	rel int32
}

// segment is one log file with its sparse indexes. Its mutable fields are
// guarded by the owning Log's lock.
type segment struct {
	dir  string
	base int64
	f    *os.File

	size        int64 // bytes of whole batches in f
	next        int64 // offset after the last batch (base when empty)
	maxTs       int64 // largest batch max timestamp; -1 when none
	maxTsOffset int64
	// writtenBack: the kernel was asked to start writing f's bytes below
	// it to disk (Log.writeBack); may be above size after a truncation.
	writtenBack int64
	// bgSync is held while a background sync of f runs (Log.writeBack),
	// and bgErr is the first error one met, for the next sync to report:
	// Linux reports a writeback error to one fsync of an open file only,
	// so the background sync would otherwise take it from the roll's or
	// flush's fsync, which would then succeed over lost data.
	bgSync sync.Mutex
	bgErr  error

	index      []indexEntry
	tindex     []timeEntry
	idxWritten int // entries of index already in the .index file
	tixWritten int
	sinceIndex int64
	recent     recentBatches
	created    time.Time
	// txns is the aborted transactions index (txn.go), txnWritten of its
	// entries are in the .txnindex file; txnStale says the entries must be
	// rebuilt from the batches (the segment was recovered, or the file is
	// damaged) once the producer state before the segment is known.
	txns       []AbortedTxn
	txnWritten int
	txnStale   bool
	// deleted: the files were renamed to "*.deleted" (the segment left
	// the log and waits for its delayed delete).
	deleted bool
}

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base)+suffix)
}

// parseSegmentName returns the base offset of a ".log" file name.
func parseSegmentName(name string) (int64, bool) {
	if !strings.HasSuffix(name, logSuffix) {
		return 0, false
	}
	stem := strings.TrimSuffix(name, logSuffix)
	if len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

// createSegment starts an empty segment at base, replacing any leftovers.
func createSegment(dir string, base int64, now time.Time) (*segment, error) {
	s := &segment{dir: dir, base: base, next: base, maxTs: -1, maxTsOffset: -1, created: now}
	for _, suf := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := removeFile(s.path(suf)); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, mapIOError(err)
	}
	s.f = f
	return s, nil
}

// openSegment opens an existing segment. With validate it scans every batch
// (length, magic, CRC-32C, increasing offsets), truncates the file at the
// first torn or corrupt batch and rebuilds the indexes; it reports whether
// it truncated. Without, it trusts the index files when they look sane and
// reads only the batch headers after the last index entry. allowGaps says
// the log may have offset gaps (compaction): offsets must then only
// increase, else they must be contiguous.
func openSegment(dir string, base int64, validate, allowGaps bool, indexInterval int32, now time.Time) (*segment, bool, error) {
	s := &segment{dir: dir, base: base, next: base, maxTs: -1, maxTsOffset: -1, created: now}
	f, err := os.OpenFile(s.path(logSuffix), os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, mapIOError(err)
	}
	s.f = f
	if st, err := f.Stat(); err == nil {
		s.created = st.ModTime()
	}
	if !validate {
		ok, err := s.loadIndexes()
		if err == nil && ok {
			if err = s.scanTail(); err == nil {
				var fits bool
				s.txns, fits = readTxnIndex(s.path(txnIndexSuffix))
				s.txnWritten = len(s.txns)
				if !fits || !s.txnIndexFits() {
					s.txns, s.txnWritten, s.txnStale = nil, 0, true
				}
				return s, false, nil
			}
		}
		// The indexes or the tail are not trustworthy: recover instead.
	}
	truncated, err := s.recover(indexInterval, allowGaps)
	if err != nil {
		f.Close()
		return nil, false, err
	}
	// The log rebuilds the aborted transactions of a recovered segment.
	s.txns, s.txnWritten, s.txnStale = nil, 0, true
	return s, truncated, nil
}

// loadIndexes reads the index files; false means they are missing or not
// consistent with the log file.
func (s *segment) loadIndexes() (bool, error) {
	st, err := s.f.Stat()
	if err != nil {
		return false, err
	}
	fileSize := st.Size()
	ib, err := os.ReadFile(s.path(indexSuffix))
	if err != nil || len(ib)%indexEntrySize != 0 {
		return false, nil
	}
	tb, err := os.ReadFile(s.path(timeIndexSuffix))
	if err != nil || len(tb)%timeIndexEntrySize != 0 {
		return false, nil
	}
	s.index = make([]indexEntry, 0, len(ib)/indexEntrySize)
	for i := 0; i < len(ib); i += indexEntrySize {
		e := indexEntry{rel: int32(binary.BigEndian.Uint32(ib[i:])), pos: int32(binary.BigEndian.Uint32(ib[i+4:]))}
		if e.rel < 0 || int64(e.pos) >= fileSize {
			return false, nil
		}
		if n := len(s.index); n > 0 && (e.rel <= s.index[n-1].rel || e.pos <= s.index[n-1].pos) {
			return false, nil
		}
		s.index = append(s.index, e)
	}
	s.tindex = make([]timeEntry, 0, len(tb)/timeIndexEntrySize)
	for i := 0; i < len(tb); i += timeIndexEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(tb[i:])), rel: int32(binary.BigEndian.Uint32(tb[i+8:]))}
		if n := len(s.tindex); n > 0 && (e.ts < s.tindex[n-1].ts || e.rel < s.tindex[n-1].rel) {
			return false, nil
		}
		s.tindex = append(s.tindex, e)
	}
	s.idxWritten, s.tixWritten = len(s.index), len(s.tindex)
	if n := len(s.tindex); n > 0 {
		s.maxTs, s.maxTsOffset = s.tindex[n-1].ts, s.base+int64(s.tindex[n-1].rel)
	}
	return true, nil
}

// scanTail reads the batch headers after the last index entry to find the
// segment's end and largest timestamp. Any inconsistency is an error.
func (s *segment) scanTail() error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	fileSize := st.Size()
	pos := int64(0)
	if n := len(s.index); n > 0 {
		pos = int64(s.index[n-1].pos)
	}
	var hdr [BatchHeaderSize]byte
	for pos < fileSize {
		if _, err := s.f.ReadAt(hdr[:], pos); err != nil {
			return err
		}
		h, err := ParseBatchHeader(hdr[:])
		if err != nil || pos+h.Size() > fileSize || h.BaseOffset < s.base || (pos > 0 || len(s.index) > 0) && h.BaseOffset < s.next {
			return fmt.Errorf("%w: bad batch at position %d", ErrCorruptBatch, pos)
		}
		s.next = h.LastOffset() + 1
		s.sinceIndex += h.Size()
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
		pos += h.Size()
	}
	s.size = pos
	if s.size == 0 {
		s.next = s.base
	}
	return nil
}

// recover validates every batch from the start of the file, truncates at the
// first bad one, and rewrites the indexes. Offsets must be contiguous unless
// allowGaps (a compacted log), when they must only increase.
func (s *segment) recover(indexInterval int32, allowGaps bool) (bool, error) {
	st, err := s.f.Stat()
	if err != nil {
		return false, err
	}
	fileSize := st.Size()
	s.index, s.tindex = s.index[:0], s.tindex[:0]
	s.recent.reset()
	s.idxWritten, s.tixWritten = 0, 0
	s.size, s.next, s.maxTs, s.maxTsOffset, s.sinceIndex = 0, s.base, -1, -1, 0
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, fileSize), 1<<20)
	buf := make([]byte, 64<<10)
	pos := int64(0)
	for pos < fileSize {
		if fileSize-pos < BatchHeaderSize {
			break
		}
		if _, err := io.ReadFull(r, buf[:BatchHeaderSize]); err != nil {
			break
		}
		h, err := ParseBatchHeader(buf[:BatchHeaderSize])
		// Offsets are contiguous unless the log was compacted: the base
		// offset is not covered by the CRC, so this is what catches damage
		// to it (in a compacted log only a decrease is caught).
		badOffset := h.BaseOffset != s.next
		if allowGaps {
			badOffset = h.BaseOffset < s.next
		}
		if err != nil || pos+h.Size() > fileSize || badOffset || h.LastOffset()-s.base > 1<<31-1 {
			break
		}
		size := int(h.Size())
		if size > len(buf) {
			nb := make([]byte, size)
			copy(nb, buf[:BatchHeaderSize])
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:size]); err != nil {
			break
		}
		if crc32.Checksum(buf[offAttributes:size], castagnoli) != h.CRC {
			break
		}
		s.track(h, pos, indexInterval)
		pos += h.Size()
	}
	truncated := pos < fileSize
	if truncated {
		if err := truncateFile(s.f, s.filePath(logSuffix), pos); err != nil {
			return false, err
		}
		// A machine crash must not bring the cut tail back.
		if err := syncFile(s.f, s.filePath(logSuffix)); err != nil {
			return false, err
		}
	}
	s.size = pos
	if err := s.rewriteIndexes(); err != nil {
		// The in-memory indexes are complete; the files are only a cache
		// (a full disk must not stop the log from opening). Without them
		// the next open rebuilds the indexes again.
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			_ = removeFile(s.path(suf))
		}
		s.idxWritten, s.tixWritten = 0, 0
	}
	return truncated, nil
}

// track records a batch written at pos: end offset, timestamps and, every
// indexInterval bytes, index entries.
func (s *segment) track(h BatchHeader, pos int64, indexInterval int32) {
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
	}
	if s.sinceIndex >= int64(indexInterval) {
		rel := int32(h.LastOffset() - s.base)
		if n := len(s.index); n == 0 || s.index[n-1].rel < rel {
			s.index = append(s.index, indexEntry{rel: rel, pos: int32(pos)})
		}
		s.addTimeEntry()
		s.sinceIndex = 0
	}
	s.recent.push(batchSpan{pos: pos, size: h.Size(), last: h.LastOffset()})
	s.sinceIndex += h.Size()
	s.next = h.LastOffset() + 1
}

// addTimeEntry appends (largest timestamp so far, its offset) when it grew.
func (s *segment) addTimeEntry() {
	if s.maxTs < 0 {
		return
	}
	rel := int32(s.maxTsOffset - s.base)
	if n := len(s.tindex); n == 0 || s.tindex[n-1].ts < s.maxTs && s.tindex[n-1].rel <= rel {
		s.tindex = append(s.tindex, timeEntry{ts: s.maxTs, rel: rel})
	}
}

// writeIndexes appends the index entries not yet in the index files.
func (s *segment) writeIndexes() error {
	if s.idxWritten < len(s.index) {
		b := make([]byte, 0, (len(s.index)-s.idxWritten)*indexEntrySize)
		for _, e := range s.index[s.idxWritten:] {
			b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
			b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
		}
		if err := appendFile(s.path(indexSuffix), b); err != nil {
			return err
		}
		s.idxWritten = len(s.index)
	}
	if s.tixWritten < len(s.tindex) {
		b := make([]byte, 0, (len(s.tindex)-s.tixWritten)*timeIndexEntrySize)
		for _, e := range s.tindex[s.tixWritten:] {
			b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
			b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
		}
		if err := appendFile(s.path(timeIndexSuffix), b); err != nil {
			return err
		}
		s.tixWritten = len(s.tindex)
	}
	if s.txnWritten < len(s.txns) && !s.txnStale {
		if err := appendFile(s.path(txnIndexSuffix), encodeAbortedTxns(nil, s.txns[s.txnWritten:])); err != nil {
			return err
		}
		s.txnWritten = len(s.txns)
	}
	return nil
}

// rewriteIndexes replaces the index files with the in-memory indexes
// (the aborted transactions index only when its entries are known).
func (s *segment) rewriteIndexes() error {
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.WriteFile(s.path(suf), nil, 0o644); err != nil {
			return mapIOError(err)
		}
	}
	s.idxWritten, s.tixWritten = 0, 0
	if !s.txnStale {
		if err := s.rewriteTxnIndex(); err != nil {
			return err
		}
	}
	return s.writeIndexes()
}

// rewriteTxnIndex replaces the .txnindex file with s.txns (none when
// there is no entry, as Kafka creates it at the first).
func (s *segment) rewriteTxnIndex() error {
	s.txnWritten = 0
	if len(s.txns) == 0 {
		return removeFile(s.path(txnIndexSuffix))
	}
	if err := os.WriteFile(s.path(txnIndexSuffix), encodeAbortedTxns(nil, s.txns), 0o644); err != nil {
		return mapIOError(err)
	}
	s.txnWritten = len(s.txns)
	return nil
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return mapIOError(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return mapIOError(err)
	}
	return mapIOError(f.Close())
}

// seal is called when the segment stops being the active one (roll, close):
// it adds the final time index entry and writes the indexes out.
func (s *segment) seal() error {
	s.addTimeEntry()
	return s.writeIndexes()
}

// sync fsyncs the log and index files.
func (s *segment) sync() error {
	if err := s.writeIndexes(); err != nil {
		return err
	}
	// Wait for a background sync in flight; its error is this sync's.
	s.bgSync.Lock()
	bgErr := s.bgErr
	s.bgErr = nil
	s.bgSync.Unlock()
	if bgErr != nil {
		return mapIOError(bgErr)
	}
	if err := syncFile(s.f, s.filePath(logSuffix)); err != nil {
		return err
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := syncPath(s.path(suf)); err != nil {
			return err
		}
	}
	return nil
}

// lookup returns a file position at or before the batch holding offset.
func (s *segment) lookup(offset int64) int64 {
	rel := offset - s.base
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.index[i-1].pos)
}

// lookupTime returns an offset at or before the first batch whose max
// timestamp is >= ts.
func (s *segment) lookupTime(ts int64) int64 {
	i := sort.Search(len(s.tindex), func(i int) bool { return s.tindex[i].ts >= ts })
	if i == 0 {
		return s.base
	}
	return s.base + int64(s.tindex[i-1].rel)
}

// readHeader reads the batch header at pos.
func (s *segment) readHeader(pos int64, hdr *[BatchHeaderSize]byte) (BatchHeader, error) {
	if pos+BatchHeaderSize > s.size {
		return BatchHeader{}, fmt.Errorf("%w: header at %d past segment end %d", ErrCorruptBatch, pos, s.size)
	}
	if _, err := s.f.ReadAt(hdr[:], pos); err != nil {
		return BatchHeader{}, mapIOError(err)
	}
	return ParseBatchHeader(hdr[:])
}

// find returns the position and header of the first batch whose last offset
// is >= offset; ok is false when the segment has none.
func (s *segment) find(offset int64) (int64, BatchHeader, bool, error) {
	var hdr [BatchHeaderSize]byte
	for pos := s.lookup(offset); pos < s.size; {
		h, err := s.readHeader(pos, &hdr)
		if err != nil {
			return 0, BatchHeader{}, false, err
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += h.Size()
	}
	return 0, BatchHeader{}, false, nil
}

// truncateTo cuts the segment at pos (a batch boundary), rebuilds its
// state from the remaining file and fsyncs it with its indexes, so a
// machine crash cannot bring the cut tail back.
func (s *segment) truncateTo(pos int64, indexInterval int32, allowGaps bool) error {
	if err := truncateFile(s.f, s.filePath(logSuffix), pos); err != nil {
		return err
	}
	if _, err := s.recover(indexInterval, allowGaps); err != nil {
		return err
	}
	s.dropTxnsFrom(s.next)
	if !s.txnStale {
		if err := s.rewriteTxnIndex(); err != nil {
			return err
		}
	}
	return s.sync()
}

func (s *segment) close() error { return s.f.Close() }

// filePath is path, with the deleted suffix once markDeleted renamed the
// files.
func (s *segment) filePath(suffix string) string {
	if s.deleted {
		return s.path(suffix) + deletedSuffix
	}
	return s.path(suffix)
}

// markDeleted renames the segment's files to "*.deleted": recovery
// ignores (and removes) them, so from here on a crash cannot bring the
// segment back. Its open file stays readable (readers may hold ranges of
// it) until remove. The caller fsyncs the directory.
func (s *segment) markDeleted() error {
	if s.deleted {
		return nil
	}
	if err := renameFile(s.path(logSuffix), s.path(logSuffix)+deletedSuffix); err != nil {
		return err
	}
	s.deleted = true
	for _, suf := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := renameFile(s.path(suf), s.path(suf)+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// remove closes and deletes the segment's files (by their "*.deleted"
// names once markDeleted renamed them).
func (s *segment) remove() error {
	if s.f != nil {
		s.f.Close()
	}
	var first error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := removeFile(s.filePath(suf)); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// removeDeletedFiles removes the "*.deleted" files in dir: segments
// removed from the log whose delayed delete a stop interrupted.
func removeDeletedFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), deletedSuffix) {
			if err := removeFile(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// mapIOError turns ENOSPC into ErrDiskFull.
func mapIOError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return err
}
