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
	return nil, nil
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
}

// producerState is a log's idempotent-producer table.
type producerState map[int64]*producerEntry

func (p producerState) apply(h BatchHeader) {
	if !h.Idempotent() {
		return
	}
	e := p[h.ProducerID]
	if e == nil {
		e = &producerEntry{Epoch: h.ProducerEpoch}
		p[h.ProducerID] = e
	}
	e.update(h)
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
