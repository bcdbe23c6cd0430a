package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// producerBatchesKept is how many recent batches per producer are remembered
// for duplicate detection: a producer has at most 5 requests in flight.
const producerBatchesKept = 5

// producerSnapshotFile holds the idempotent-producer state as of an offset.
const producerSnapshotFile = "producer-state.snapshot"

// batchMeta is what duplicate detection remembers of an appended batch.
type batchMeta struct {
	FirstSeq     int32 `json:"first_seq"`
	LastSeq      int32 `json:"last_seq"`
	FirstOffset  int64 `json:"first_offset"`
	LastOffset   int64 `json:"last_offset"`
	MaxTimestamp int64 `json:"max_timestamp"`
}

// producerEntry is one producer's state. It is a value type so staging an
// update allocates nothing.
type producerEntry struct {
	Epoch   int16
	N       int // batches held, newest at Batches[N-1]
	Batches [producerBatchesKept]batchMeta
	// Txn says the producer has a transaction open on this log, whose
	// first batch is at TxnFirst (txn.go).
	Txn      bool  `json:"txn,omitempty"`
	TxnFirst int64 `json:"txn_first_offset,omitempty"`
	// CoordinatorEpoch is the coordinator epoch of the producer's last
	// marker (-1: none; 0 in snapshots from before markers existed).
	CoordinatorEpoch int32 `json:"coordinator_epoch,omitempty"`
	// LastTimestamp is the max timestamp of its last batch or marker.
	LastTimestamp int64 `json:"last_timestamp,omitempty"`
}

func (e *producerEntry) last() *batchMeta {
	if e.N == 0 {
		return nil
	}
	return &e.Batches[e.N-1]
}

func (e *producerEntry) add(m batchMeta) {
	if e.N == producerBatchesKept {
		copy(e.Batches[:], e.Batches[1:])
		e.N--
	}
	e.Batches[e.N] = m
	e.N++
}

// check decides whether a leader may append batch h from this producer. A
// duplicate returns the original batch's metadata.
func (e *producerEntry) check(h BatchHeader, known bool) (*batchMeta, error) {
	if !known {
		// Unknown producer (new, or its state expired with the log): any
		// first sequence is accepted, as Kafka does.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.Epoch:
		return nil, fmt.Errorf("%w: epoch %d is older than the current %d", ErrInvalidProducerEpoch, h.ProducerEpoch, e.Epoch)
	case h.ProducerEpoch > e.Epoch:
		if h.Transactional() && e.Txn {
			// A bumped epoch cannot write into the old epoch's open
			// transaction: its marker comes first, so this log missed
			// it (a deposed leader that does not know yet). The client
			// is told to look for the leader (retriable), not that its
			// transaction is broken (INVALID_TXN_STATE aborts it).
			return nil, fmt.Errorf("%w: epoch %d writes while epoch %d's transaction is open", ErrMarkerMissing, h.ProducerEpoch, e.Epoch)
		}
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: first sequence of new epoch %d is %d, want 0", ErrOutOfOrderSequence, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := h.LastSequence()
	for i := 0; i < e.N; i++ {
		if b := &e.Batches[i]; b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			return b, ErrDuplicateSequence
		}
	}
	if l := e.last(); l != nil && seqAdd(l.LastSeq, 1) != h.BaseSequence {
		return nil, fmt.Errorf("%w: sequence %d follows %d", ErrOutOfOrderSequence, h.BaseSequence, l.LastSeq)
	}
	if e.Txn && !h.Transactional() {
		return nil, fmt.Errorf("%w: non-transactional batch while the producer's transaction is open", ErrInvalidTxnState)
	}
	return nil, nil
}

// checkMarker decides whether a leader may append a marker of epoch and
// coordinator epoch for this producer (Kafka's checks: an older producer
// epoch is fenced, so is an older coordinator epoch).
func (e *producerEntry) checkMarker(epoch int16, coordinatorEpoch int32, known bool) error {
	if !known {
		return nil
	}
	if epoch < e.Epoch {
		return fmt.Errorf("%w: marker epoch %d is older than the current %d", ErrInvalidProducerEpoch, epoch, e.Epoch)
	}
	if coordinatorEpoch < e.CoordinatorEpoch {
		return fmt.Errorf("%w: marker coordinator epoch %d is older than %d", ErrCoordinatorFenced, coordinatorEpoch, e.CoordinatorEpoch)
	}
	return nil
}

// endTxn records a marker h (coordinator epoch ce): the open transaction
// ends; a newer producer epoch restarts the sequences.
func (e *producerEntry) endTxn(h BatchHeader, ce int32) {
	if h.ProducerEpoch != e.Epoch {
		e.Epoch, e.N = h.ProducerEpoch, 0
	}
	e.Txn, e.TxnFirst = false, 0
	e.CoordinatorEpoch = ce
	e.LastTimestamp = h.MaxTimestamp
}

// update records an appended batch (after check on a leader; unconditionally
// on a follower or while rebuilding).
func (e *producerEntry) update(h BatchHeader) {
	if h.ProducerEpoch != e.Epoch {
		e.Epoch, e.N = h.ProducerEpoch, 0
	}
	e.add(batchMeta{
		FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(),
		FirstOffset: h.BaseOffset, LastOffset: h.LastOffset(), MaxTimestamp: h.MaxTimestamp,
	})
	e.LastTimestamp = h.MaxTimestamp
	if h.Transactional() && !e.Txn {
		e.Txn, e.TxnFirst = true, h.BaseOffset
	}
}

// producerState is a log's idempotent-producer table.
type producerState map[int64]*producerEntry

// apply records a data batch (markers: Log.applyTxn).
func (p producerState) apply(h BatchHeader) {
	if !h.Idempotent() || h.Control() {
		return
	}
	p.entry(h).update(h)
}

// entry returns h's producer's entry, created when new.
func (p producerState) entry(h BatchHeader) *producerEntry {
	e := p[h.ProducerID]
	if e == nil {
		e = &producerEntry{Epoch: h.ProducerEpoch, CoordinatorEpoch: -1}
		p[h.ProducerID] = e
	}
	return e
}

type producerSnapshot struct {
	Offset    int64                   `json:"offset"`
	Producers map[int64]producerEntry `json:"producers"`
}

// writeProducerSnapshot saves the state as of offset (atomically).
func writeProducerSnapshot(dir string, offset int64, p producerState) error {
	snap := producerSnapshot{Offset: offset, Producers: make(map[int64]producerEntry, len(p))}
	for id, e := range p {
		snap.Producers[id] = *e
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, producerSnapshotFile), b)
}

// readProducerSnapshot loads the saved state; ok is false when there is none
// or it cannot be read.
func readProducerSnapshot(dir string) (producerState, int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, producerSnapshotFile))
	if err != nil {
		return nil, 0, false
	}
	var snap producerSnapshot
	if json.Unmarshal(b, &snap) != nil {
		return nil, 0, false
	}
	p := make(producerState, len(snap.Producers))
	for id, e := range snap.Producers {
		if e.N < 0 || e.N > producerBatchesKept {
			return nil, 0, false
		}
		e := e
		p[id] = &e
	}
	return p, snap.Offset, true
}

// dropProducerSnapshotAbove deletes the producer snapshot (durably) when
// it claims an offset above end: after a truncation to end the batches it
// describes are gone, and a later crash must not bring them back as known
// sequences.
func dropProducerSnapshotAbove(dir string, end int64) error {
	path := filepath.Join(dir, producerSnapshotFile)
	if _, off, ok := readProducerSnapshot(dir); ok && off <= end {
		return nil
	} else if !ok {
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	if err := removeFile(path); err != nil {
		return fmt.Errorf("remove producer snapshot: %w", err)
	}
	return syncDir(dir)
}

// writeFileAtomic writes path through a temporary file, fsync and rename.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return mapIOError(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return mapIOError(err)
	}
	if err := syncFile(f, tmp); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return mapIOError(err)
	}
	return renameFile(tmp, path)
}

// lastActive is the producer's last batch's (or marker's) max timestamp,
// in ms.
func (e *producerEntry) lastActive() int64 {
	if e.LastTimestamp != 0 {
		return e.LastTimestamp
	}
	if b := e.last(); b != nil {
		return b.MaxTimestamp
	}
	return 0
}

// expireProducers drops the producers without an open transaction whose
// last batch is older than cutoff (ms) and returns how many.
func (l *Log) expireProducers(cutoff int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for pid, e := range l.mu.producers {
		if !e.Txn && e.lastActive() < cutoff {
			delete(l.mu.producers, pid)
			n++
		}
	}
	return n
}
