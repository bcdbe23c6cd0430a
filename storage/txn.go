package storage

// Transactions on the log side (KIP-98): transactional batches open a
// producer's transaction on the partition, control batches (markers) close
// it, and the log keeps what readers need:
//
//   - the ongoing transactions (producer id -> first offset), in the
//     producer table and its snapshot, rebuilt from the batches like the
//     rest of the producer state;
//   - the transactions completed by a marker the high watermark has not
//     passed yet ("unreplicated"): until it does, the marker may still be
//     truncated away, so they hold the last stable offset back too;
//   - the aborted transactions index: per segment, one entry per abort
//     marker in that segment, in Kafka's .txnindex format. Like the other
//     indexes it is a cache of the log's content: a segment rebuilt by
//     recovery gets its entries rebuilt from the batches.
//
// The last stable offset (LSO) is min(first offset of every ongoing or
// unreplicated transaction, high watermark): read_committed consumers read
// below it, and filter the aborted records themselves with the aborted
// transactions a fetch returns (those overlapping the fetched range) and
// the abort markers.
//
// Everything here is derived from the log's batches alone, in log order,
// so replicas that hold the same batches hold the same state and indexes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// txnIndexSuffix names a segment's aborted transactions index.
	txnIndexSuffix = ".txnindex"
	// txnIndexEntrySize is Kafka's AbortedTxn entry: version int16 (0),
	// producer id int64, first offset int64, last offset int64, last
	// stable offset int64, big-endian. Frozen format.
	txnIndexEntrySize = 34
	txnIndexVersion   = 0
)

// Control record types (the key's type; key and value version 0).
const (
	ControlAbort  = 0
	ControlCommit = 1
)

// ErrInvalidTxnState: a producer wrote a non-transactional batch while its
// transaction is open, or a transactional batch without a producer id
// (INVALID_TXN_STATE).
var ErrInvalidTxnState = errors.New("storage: invalid transaction state")

// ErrCoordinatorFenced: a marker from an older transaction coordinator
// epoch than the producer's last (TRANSACTION_COORDINATOR_FENCED).
var ErrCoordinatorFenced = errors.New("storage: transaction coordinator fenced")

// AbortedTxn is one entry of the aborted transactions index.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	// LastOffset is the abort marker's offset.
	LastOffset int64
	// LastStableOffset is the first offset of the oldest other transaction
	// still open when the marker was written (the marker's offset + 1 when
	// none): no transaction aborted later can start below it.
	LastStableOffset int64
}

// Transactional says the batch belongs to a transaction (data or marker).
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control says the batch is a control batch (a transaction marker).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// ControlMarker is the decoded record of a transaction marker batch.
type ControlMarker struct {
	// Type is ControlAbort or ControlCommit (other control record types
	// are not transaction markers; Marker reports them as ok=false).
	Type             int16
	CoordinatorEpoch int32
}

// Commit says the marker commits.
func (m ControlMarker) Commit() bool { return m.Type == ControlCommit }

// ParseControlBatch decodes the single record of control batch b (header
// and records, uncompressed as Kafka writes them). ok is false for a
// control record that is not an end-transaction marker.
func ParseControlBatch(b []byte) (m ControlMarker, ok bool, err error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return m, false, err
	}
	if !h.Control() || h.Size() > int64(len(b)) || h.Attributes&attrCodecMask != codecNone {
		return m, false, fmt.Errorf("%w: not an uncompressed control batch", ErrCorruptBatch)
	}
	var r kmsg.Record
	if err := r.ReadFrom(b[BatchHeaderSize:h.Size()]); err != nil {
		return m, false, fmt.Errorf("%w: control record: %v", ErrCorruptBatch, err)
	}
	var k kmsg.ControlRecordKey
	if err := k.ReadFrom(r.Key); err != nil {
		return m, false, fmt.Errorf("%w: control record key: %v", ErrCorruptBatch, err)
	}
	if k.Type != ControlAbort && k.Type != ControlCommit {
		return m, false, nil
	}
	var v kmsg.EndTxnMarker
	if err := v.ReadFrom(r.Value); err != nil {
		return m, false, fmt.Errorf("%w: end transaction marker: %v", ErrCorruptBatch, err)
	}
	return ControlMarker{Type: int16(k.Type), CoordinatorEpoch: v.CoordinatorEpoch}, true, nil
}

// MakeMarkerBatch encodes a transaction marker as Kafka writes it: a
// control + transactional batch of one record, key {version 0, type},
// value {version 0, coordinator epoch}, base sequence -1, timestamp ts.
// Base offset and leader epoch are left 0 (the append assigns them).
func MakeMarkerBatch(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := kmsg.ControlRecordKeyType(ControlAbort)
	if commit {
		typ = ControlCommit
	}
	key := (&kmsg.ControlRecordKey{Version: 0, Type: typ}).AppendTo(nil)
	val := (&kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: coordinatorEpoch}).AppendTo(nil)
	r := kmsg.Record{Key: key, Value: val}
	body := r.AppendTo(nil)[1:] // without the one-byte zero length
	r.Length = int32(len(body))
	b := kmsg.RecordBatch{
		Magic:          2,
		Attributes:     attrControl | attrTransactional,
		FirstTimestamp: ts,
		MaxTimestamp:   ts,
		ProducerID:     producerID,
		ProducerEpoch:  producerEpoch,
		FirstSequence:  -1,
		NumRecords:     1,
		Records:        r.AppendTo(nil),
	}
	return SealBatch(b.AppendTo(nil))
}

// completedTxn is a transaction whose marker the high watermark may not
// have passed yet.
type completedTxn struct {
	first  int64
	marker int64
}

// txnTable is the log's view of transactions for the LSO: the open ones
// and the completed ones not yet known to be below the high watermark.
// Written with Log.mu held for writing (appends, truncation, load);
// txnMu alone guards it for the readers of the LSO.
type txnTable struct {
	ongoing   map[int64]int64 // producer id -> first offset
	completed []completedTxn  // in marker order
}

// reset rebuilds the table from a producer table (after a load or a
// truncation): its open transactions; no completed ones.
func (t *txnTable) reset(p producerState) {
	t.ongoing = map[int64]int64{}
	t.completed = nil
	for id, e := range p {
		if e.Txn {
			t.ongoing[id] = e.TxnFirst
		}
	}
}

// firstOngoingExcept is the smallest first offset of an open transaction
// of another producer than id; ok false when there is none.
func (t *txnTable) firstOngoingExcept(id int64) (int64, bool) {
	first, ok := int64(math.MaxInt64), false
	for pid, off := range t.ongoing {
		if pid != id && off < first {
			first, ok = off, true
		}
	}
	return first, ok
}

// applyTxn applies one written batch to the log's transaction state: the
// producer table (sequences, the open transaction), the LSO table and, for
// an abort marker, the aborted transactions index of seg (when seg is not
// nil). ctl is the decoded marker of a control batch (ok false: not an
// end-transaction marker, or not a control batch). Called with l.mu held
// for writing.
func (l *Log) applyTxn(h BatchHeader, ctl ControlMarker, ctlOK bool, seg *segment) {
	if !h.Idempotent() {
		return
	}
	if !h.Control() {
		if h.Transactional() {
			if _, open := l.txns.ongoing[h.ProducerID]; !open {
				l.txnMu.Lock()
				l.txns.ongoing[h.ProducerID] = h.BaseOffset
				l.txnMu.Unlock()
				l.txnUnstable.Store(true)
			}
		}
		l.mu.producers.apply(h)
		return
	}
	if !ctlOK {
		return
	}
	e := l.mu.producers.entry(h)
	first, open := l.txns.ongoing[h.ProducerID]
	if open && ctl.Type == ControlAbort {
		lso := h.BaseOffset + 1
		if f, ok := l.txns.firstOngoingExcept(h.ProducerID); ok {
			lso = f
		}
		if seg != nil {
			seg.txns = append(seg.txns, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.LastOffset(), LastStableOffset: lso})
		}
	}
	if open {
		l.txnMu.Lock()
		delete(l.txns.ongoing, h.ProducerID)
		l.txns.completed = append(l.txns.completed, completedTxn{first: first, marker: h.LastOffset()})
		l.txnMu.Unlock()
	}
	e.endTxn(h, ctl.CoordinatorEpoch)
}

// LastStableOffset is min(hw, the first offset of every open transaction
// and of every transaction whose marker is at or above hw), not below the
// log start. hw is the
// partition's high watermark; it only moves forward, so completed
// transactions below it are forgotten here.
func (l *Log) LastStableOffset(hw int64) int64 {
	if !l.txnUnstable.Load() {
		return hw
	}
	l.txnMu.Lock()
	defer l.txnMu.Unlock()
	lso := hw
	keep := l.txns.completed[:0]
	for _, c := range l.txns.completed {
		if c.marker >= hw {
			keep = append(keep, c)
			lso = min(lso, c.first)
		}
	}
	clear(l.txns.completed[len(keep):])
	l.txns.completed = keep
	for _, first := range l.txns.ongoing {
		lso = min(lso, first)
	}
	if len(l.txns.ongoing) == 0 && len(l.txns.completed) == 0 {
		l.txnUnstable.Store(false)
	}
	// A transaction whose first records DeleteRecords removed is
	// unstable from the log start on, as in Kafka.
	return min(max(lso, l.lso.Load()), hw)
}

// OngoingTxnFirstOffset is the first offset of producer id's open
// transaction on this log; ok false when it has none.
func (l *Log) OngoingTxnFirstOffset(id int64) (int64, bool) {
	l.txnMu.Lock()
	defer l.txnMu.Unlock()
	off, ok := l.txns.ongoing[id]
	return off, ok
}

// AbortedTxns returns the aborted transactions that overlap [from, upTo):
// those whose marker is at or after from and whose first offset is below
// upTo, from the aborted transactions index of the segments from the one
// holding from. A read_committed fetch returning records in [from, upTo)
// answers them so the consumer can drop the aborted records.
func (l *Log) AbortedTxns(from, upTo int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.abortedTxnsLocked(from, upTo)
}

// abortedTxnsLocked is AbortedTxns; called with l.mu held.
func (l *Log) abortedTxnsLocked(from, upTo int64) []AbortedTxn {
	var out []AbortedTxn
	if l.mu.closed || upTo <= from {
		return nil
	}
	for i := max(l.segmentFor(from), 0); i < len(l.mu.segs); i++ {
		for _, t := range l.mu.segs[i].txns {
			if t.LastOffset >= from && t.FirstOffset < upTo {
				out = append(out, t)
			}
			if t.LastStableOffset >= upTo {
				return out
			}
		}
	}
	return out
}

// ProducerInfo is one producer's state on this log (DescribeProducers).
type ProducerInfo struct {
	ProducerID       int64
	ProducerEpoch    int16
	LastSequence     int32 // -1 when no batch is remembered
	LastTimestamp    int64 // -1 when unknown
	CoordinatorEpoch int32 // -1 when no marker was seen
	// TxnStartOffset is the first offset of its open transaction, -1 when
	// it has none.
	TxnStartOffset int64
}

// Producers returns the producer table, by producer id.
func (l *Log) Producers() []ProducerInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]ProducerInfo, 0, len(l.mu.producers))
	for id, e := range l.mu.producers {
		pi := ProducerInfo{ProducerID: id, ProducerEpoch: e.Epoch, LastSequence: -1, LastTimestamp: e.LastTimestamp,
			CoordinatorEpoch: e.CoordinatorEpoch, TxnStartOffset: -1}
		if b := e.last(); b != nil {
			pi.LastSequence = b.LastSeq
		}
		if e.Txn {
			pi.TxnStartOffset = e.TxnFirst
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// AppendMarker appends a transaction marker (commit or abort) for the
// producer at leaderEpoch, as the partition leader does for
// WriteTxnMarkers: ErrInvalidProducerEpoch for an epoch older than the
// producer's, ErrCoordinatorFenced for an older coordinator epoch. Without
// an open transaction the marker is still written (Kafka does).
func (l *Log) AppendMarker(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch, leaderEpoch int32) (AppendInfo, error) {
	b := MakeMarkerBatch(producerID, producerEpoch, commit, coordinatorEpoch, l.now().UnixMilli())
	return l.AppendAsLeader(b, leaderEpoch)
}

// encodeAbortedTxns appends the index entries of ts to dst.
func encodeAbortedTxns(dst []byte, ts []AbortedTxn) []byte {
	for _, t := range ts {
		dst = binary.BigEndian.AppendUint16(dst, txnIndexVersion)
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.ProducerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.FirstOffset))
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.LastOffset))
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.LastStableOffset))
	}
	return dst
}

// readTxnIndex reads a segment's aborted transactions index; a missing file
// is an empty index (Kafka creates it at the first abort). ok is false
// when the file is damaged.
func readTxnIndex(path string) ([]AbortedTxn, bool) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true
	}
	if err != nil || len(b)%txnIndexEntrySize != 0 {
		return nil, false
	}
	out := make([]AbortedTxn, 0, len(b)/txnIndexEntrySize)
	for i := 0; i < len(b); i += txnIndexEntrySize {
		if binary.BigEndian.Uint16(b[i:]) != txnIndexVersion {
			return nil, false
		}
		out = append(out, AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[i+2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[i+10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[i+18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[i+26:])),
		})
	}
	return out, true
}

// txnIndexFits says the loaded entries fit the segment: markers inside it,
// in increasing order, each first offset at or below its marker.
func (s *segment) txnIndexFits() bool {
	for i, t := range s.txns {
		if t.LastOffset < s.base || t.LastOffset >= s.next || t.FirstOffset > t.LastOffset ||
			i > 0 && t.LastOffset <= s.txns[i-1].LastOffset {
			return false
		}
	}
	return true
}

// readControl decodes the marker of the control batch h at pos.
func (s *segment) readControl(pos int64, h BatchHeader) (ControlMarker, bool, error) {
	if h.Size() > 64<<10 || pos+h.Size() > s.size {
		return ControlMarker{}, false, fmt.Errorf("%w: control batch at offset %d", ErrCorruptBatch, h.BaseOffset)
	}
	b := make([]byte, h.Size())
	if _, err := s.f.ReadAt(b, pos); err != nil {
		return ControlMarker{}, false, mapIOError(err)
	}
	m, ok, err := ParseControlBatch(b)
	if err != nil {
		// A control batch of another kind or damaged past its CRC check
		// is no transaction marker.
		return ControlMarker{}, false, nil
	}
	return m, ok, nil
}

// dropTxnsFrom removes the index entries whose marker is at or above end
// (a truncation cut the segment there).
func (s *segment) dropTxnsFrom(end int64) {
	n := len(s.txns)
	for n > 0 && s.txns[n-1].LastOffset >= end {
		n--
	}
	s.txns = s.txns[:n]
	s.txnWritten = min(s.txnWritten, n)
}
