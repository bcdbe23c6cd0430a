package txn

import (
	"context"
	"maps"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a transaction's state, with Kafka's TransactionLog values.
type State int8

// The states (Kafka's TransactionState).
const (
	StateEmpty             State = 0
	StateOngoing           State = 1
	StatePrepareCommit     State = 2
	StatePrepareAbort      State = 3
	StateCompleteCommit    State = 4
	StateCompleteAbort     State = 5
	StateDead              State = 6
	StatePrepareEpochFence State = 7
)

// AllStates lists every state, in value order.
var AllStates = []State{StateEmpty, StateOngoing, StatePrepareCommit, StatePrepareAbort,
	StateCompleteCommit, StateCompleteAbort, StateDead, StatePrepareEpochFence}

// String is the state's name as Kafka's DescribeTransactions and
// ListTransactions give it.
func (s State) String() string {
	switch s {
	case StateEmpty:
		return "Empty"
	case StateOngoing:
		return "Ongoing"
	case StatePrepareCommit:
		return "PrepareCommit"
	case StatePrepareAbort:
		return "PrepareAbort"
	case StateCompleteCommit:
		return "CompleteCommit"
	case StateCompleteAbort:
		return "CompleteAbort"
	case StateDead:
		return "Dead"
	case StatePrepareEpochFence:
		return "PrepareEpochFence"
	}
	return "Unknown"
}

// ParseState is String's inverse.
func ParseState(name string) (State, bool) {
	for _, s := range AllStates {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// txnMeta is one transactional id's metadata. Fields are guarded by the
// coordinator's mutex; a transition is written (pending) before it is
// applied in place.
type txnMeta struct {
	id         string
	producerID int64
	epoch      int16
	// lastProducerID and lastEpoch are the producer id and epoch before
	// the last bump (-1: none known), so a retried InitProducerId of the
	// bumped producer (KIP-360) gets the same answer. Memory only.
	lastProducerID int64
	lastEpoch      int16
	timeout        time.Duration
	state          State
	partitions     map[TopicPartition]struct{}
	// startMs is when the ongoing transaction started (-1: none);
	// lastUpdateMs when the metadata last changed.
	startMs      int64
	lastUpdateMs int64
	// pending: a transition is being written; requests meanwhile get
	// CONCURRENT_TRANSACTIONS.
	pending bool
	// written: the metadata has a record in the log (a fresh id whose
	// first write failed is forgotten).
	written bool
	// reservedProducerID is a producer id allocated for an epoch bump that
	// would overflow (-1: none).
	reservedProducerID int64
}

func (m *txnMeta) clone() *txnMeta {
	n := *m
	n.partitions = maps.Clone(m.partitions)
	if n.partitions == nil {
		n.partitions = map[TopicPartition]struct{}{}
	}
	return &n
}

// epochExhausted says the epoch cannot be bumped without a new producer id.
func (m *txnMeta) epochExhausted() bool { return m.epoch >= math.MaxInt16-1 }

// bump moves next to the next epoch (a new producer id at epoch 0 when the
// epoch is exhausted and one is reserved), remembering the old pair.
func (next *txnMeta) bump() {
	next.lastProducerID, next.lastEpoch = next.producerID, next.epoch
	if next.epochExhausted() && next.reservedProducerID >= 0 {
		next.producerID, next.epoch, next.reservedProducerID = next.reservedProducerID, 0, -1
		return
	}
	if !next.epochExhausted() {
		next.epoch++
	}
}

// writeLocked appends next as the record of m's transactional id and
// marks m pending. The returned wait (called without the lock) waits for
// the ISR, then applies next to m in place and returns 0, or the error
// code to answer. A write that could not even be appended returns its
// code at once and a nil wait.
func (c *Coordinator) writeLocked(s *shard, m *txnMeta, next *txnMeta) (func(ctx context.Context) int16, int16) {
	next.lastUpdateMs = c.now().UnixMilli()
	next.pending = false
	batch := buildBatch(encodeKey(m.id), encodeValue(next), next.lastUpdateMs)
	res, err := s.p.AppendAsLeader(batch, -1)
	if err != nil {
		c.log.Warn("cannot write transaction state", "transactional_id", m.id, "partition", s.index, "error", err)
		if !m.written {
			delete(s.txns, m.id)
		}
		return nil, writeErrorCode(err)
	}
	m.pending = true
	return func(ctx context.Context) int16 {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
		defer cancel()
		err := s.p.WaitCommitted(ctx, res)
		c.mu.Lock()
		defer c.mu.Unlock()
		m.pending = false
		if err == nil && s.gone {
			err = errUnloaded
		}
		if err != nil {
			c.log.Warn("transaction state write not committed", "transactional_id", m.id, "partition", s.index, "error", err)
			if !m.written && s.txns[m.id] == m {
				delete(s.txns, m.id)
			}
			return writeErrorCode(err)
		}
		next.written = true
		*m = *next
		return 0
	}, 0
}

// epochCheck is Kafka's check of a request's producer id and epoch
// against the metadata.
func epochCheck(m *txnMeta, producerID int64, epoch int16) int16 {
	switch {
	case m == nil || m.producerID != producerID:
		return kerr.InvalidProducerIDMapping.Code
	case epoch > m.epoch:
		// An epoch this coordinator never handed out: another one did,
		// after this one lost the partition without knowing yet (cut off
		// from the controller). The client looks for the coordinator;
		// PRODUCER_FENCED would make it give up its producer.
		return kerr.NotCoordinator.Code
	case m.epoch != epoch:
		return kerr.ProducerFenced.Code
	}
	return 0
}
