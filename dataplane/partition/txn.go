package partition

// Transactions on the partition side (KIP-98): the leader appends
// transactional batches (the producer's transaction on this partition
// opens at its first one) and the coordinator's markers (WriteTxnMarkers),
// replicated like any batch; reads under read_committed stop at the last
// stable offset and carry the aborted transactions of the range. The
// producer and transaction state lives in the log (storage/txn.go), so
// followers, which copy the batches byte for byte, hold the same.

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/skein-io/skein/storage"
)

// TxnVerifier is the KIP-890 hook: asked before a transactional batch of
// producerID/producerEpoch of transactionalID opens a transaction on
// topic/partition (the producer has none open here yet), it returns nil when the transaction
// coordinator knows the partition is part of the producer's ongoing
// transaction, else the error to answer (ErrInvalidTxnState, or
// storage.ErrInvalidProducerEpoch). It must not block for long: the
// produce waits for it.
type TxnVerifier func(ctx context.Context, transactionalID, topic string, partition int32, producerID int64, producerEpoch int16) error

// ErrInvalidTxnState: a transactional write that does not belong to an
// ongoing transaction (INVALID_TXN_STATE).
var ErrInvalidTxnState = errors.New("partition: invalid transaction state")

// SetTxnVerifier installs the hook every partition of this manager asks
// before a transactional batch opens a transaction (nil: accept, as
// before KIP-890).
func (m *Manager) SetTxnVerifier(fn TxnVerifier) {
	if fn == nil {
		m.txnVerifier.Store(nil)
		return
	}
	m.txnVerifier.Store(&fn)
}

// VerifyTxn runs the manager's TxnVerifier (KIP-890) for a produce batch
// that is transactional and would open its producer's transaction here;
// nil for any other batch, or without a verifier. The produce handler
// calls it before AppendAsLeader.
func (p *Partition) VerifyTxn(ctx context.Context, transactionalID string, batch []byte) error {
	if p.txnVerifier == nil {
		return nil
	}
	fn := p.txnVerifier.Load()
	if fn == nil || *fn == nil {
		return nil
	}
	h, err := storage.ParseBatchHeader(batch)
	if err != nil || !h.Transactional() || !h.Idempotent() {
		return nil
	}
	if _, open := p.log.OngoingTxnFirstOffset(h.ProducerID); open {
		return nil
	}
	return (*fn)(ctx, transactionalID, p.tp.Topic, p.tp.Partition, h.ProducerID, h.ProducerEpoch)
}

// Marker is one transaction marker for WriteTxnMarkers.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
}

// AppendMarker appends a transaction marker (control batch) at the
// current leader epoch, as WriteTxnMarkers asks of a partition leader.
// Errors: ErrNotLeaderOrFollower, storage.ErrInvalidProducerEpoch (a
// producer epoch older than the producer's last on this partition),
// storage.ErrCoordinatorFenced, ErrNotEnoughReplicas (the ISR is below
// min.insync.replicas: a marker is always written with acks=all). Follow
// with WaitCommitted: the marker is answered once committed.
func (p *Partition) AppendMarker(m Marker) (AppendResult, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return AppendResult{}, ErrNotLeaderOrFollower
	}
	if len(p.isr) < p.settings.MinInsyncReplicas {
		return AppendResult{}, ErrNotEnoughReplicas
	}
	info, err := p.log.AppendMarker(m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, p.leaderEpoch)
	if err != nil {
		return AppendResult{}, err
	}
	p.logger.Debug("transaction marker appended", "producer_id", m.ProducerID, "producer_epoch", m.ProducerEpoch,
		"commit", m.Commit, "coordinator_epoch", m.CoordinatorEpoch, "offset", info.FirstOffset)
	p.mu.Lock()
	ev := EventAppend
	if p.advanceHighWatermarkLocked() {
		ev |= EventHighWatermark
	}
	p.notifyLocked(ev)
	p.mu.Unlock()
	return AppendResult{BaseOffset: info.FirstOffset, LastOffset: info.LastOffset, LogAppendTime: -1,
		LogStartOffset: info.LogStartOffset, LeaderEpoch: p.leaderEpoch}, nil
}

// LastStableOffset is min(high watermark, first offset of every open or
// not yet committed transaction): read_committed reads stop there.
func (p *Partition) LastStableOffset() int64 {
	return p.log.LastStableOffset(p.HighWatermark())
}

// Producers returns the active producers of this replica's log
// (DescribeProducers).
func (p *Partition) Producers() ([]storage.ProducerInfo, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return nil, ErrNotLeaderOrFollower
	}
	return p.log.Producers(), nil
}

// txnVerifierRef is the manager's hook cell, shared by its partitions.
type txnVerifierRef = atomic.Pointer[TxnVerifier]
