package txn

// The coordinator's requests: InitProducerId (transactional),
// AddPartitionsToTxn (and its KIP-890 verify-only form), AddOffsetsToTxn
// (as AddPartitionsToTxn of the group's __consumer_offsets partition),
// EndTxn, DescribeTransactions, ListTransactions; and the abort of
// transactions past their timeout.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ProducerIDAllocator hands out fresh producer ids.
type ProducerIDAllocator func(ctx context.Context) (int64, error)

// InitProducerID handles InitProducerId for transactional id id: the
// producer id and epoch to use, or an error code. producerID/epoch are the
// request's (-1 when the producer has none: KIP-360 recovery otherwise).
func (c *Coordinator) InitProducerID(ctx context.Context, id string, timeout time.Duration,
	producerID int64, epoch int16, alloc ProducerIDAllocator) (int64, int16, int16) {
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout.Code
	}
	c.mu.Lock()
	s, code := c.shardLocked(id)
	if code != 0 {
		c.mu.Unlock()
		return -1, -1, code
	}
	m := s.txns[id]
	needID := m == nil || (m.epochExhausted() && m.reservedProducerID < 0 && !m.pending)
	c.mu.Unlock()
	if needID {
		// Allocation may ask the controller: never under the lock.
		pid, err := alloc(ctx)
		if err != nil {
			c.log.Warn("cannot allocate a producer id", "transactional_id", id, "error", err)
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		c.mu.Lock()
		if s, code = c.shardLocked(id); code != 0 {
			c.mu.Unlock()
			return -1, -1, code
		}
		m = s.txns[id]
		switch {
		case m == nil:
			m = &txnMeta{id: id, producerID: pid, epoch: -1, lastProducerID: -1, lastEpoch: -1,
				state: StateEmpty, startMs: -1, reservedProducerID: -1, partitions: map[TopicPartition]struct{}{}}
			s.txns[id] = m
		case m.epochExhausted() && m.reservedProducerID < 0:
			m.reservedProducerID = pid
		}
		c.mu.Unlock()
	}

	c.mu.Lock()
	if s, code = c.shardLocked(id); code != 0 {
		c.mu.Unlock()
		return -1, -1, code
	}
	m = s.txns[id]
	if m == nil || m.pending {
		c.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions.Code
	}
	if producerID >= 0 && epoch >= 0 {
		switch {
		case producerID == m.producerID && epoch == m.epoch:
		case producerID == m.lastProducerID && epoch == m.lastEpoch && m.state == StateEmpty:
			// A retry of the bump that made the current epoch.
			pid, ep := m.producerID, m.epoch
			c.mu.Unlock()
			return pid, ep, 0
		case producerID == m.producerID && epoch > m.epoch:
			// An epoch this coordinator never handed out (see
			// epochCheck): stale, not the producer's fault.
			c.mu.Unlock()
			return -1, -1, kerr.NotCoordinator.Code
		default:
			c.mu.Unlock()
			return -1, -1, kerr.ProducerFenced.Code
		}
	}
	switch m.state {
	case StatePrepareCommit, StatePrepareAbort, StatePrepareEpochFence:
		c.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions.Code
	case StateOngoing:
		// The previous instance's transaction is aborted first, under a
		// new epoch that fences it; the client retries meanwhile.
		next := m.clone()
		next.bump()
		next.state = StatePrepareAbort
		wait, code := c.writeLocked(s, m, next)
		c.mu.Unlock()
		if code == 0 {
			code = wait(ctx)
		}
		if code == 0 {
			c.log.Info("aborting the ongoing transaction of a fenced producer", "transactional_id", id,
				"producer_id", next.producerID, "producer_epoch", next.epoch)
			c.mu.Lock()
			if !s.gone && s.txns[id] == m {
				c.sendMarkersLocked(s, m)
			}
			c.mu.Unlock()
			return -1, -1, kerr.ConcurrentTransactions.Code
		}
		return -1, -1, code
	}
	// Empty, CompleteCommit, CompleteAbort (or Dead): a new epoch.
	next := m.clone()
	if m.epoch >= 0 || m.written {
		next.bump()
	} else {
		next.epoch = 0
	}
	if next.epochExhausted() && next.reservedProducerID < 0 && m.written {
		c.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions.Code // allocate on the retry
	}
	next.state = StateEmpty
	next.timeout = timeout
	next.partitions = map[TopicPartition]struct{}{}
	next.startMs = -1
	wait, code := c.writeLocked(s, m, next)
	c.mu.Unlock()
	if code == 0 {
		code = wait(ctx)
	}
	if code != 0 {
		return -1, -1, code
	}
	c.log.Debug("transactional producer initialized", "transactional_id", id, "producer_id", next.producerID,
		"producer_epoch", next.epoch)
	return next.producerID, next.epoch, 0
}

// AddPartitions adds partitions to id's transaction (AddPartitionsToTxn,
// and AddOffsetsToTxn with the group's offsets partition); the codes are
// per partition, in order. With verifyOnly (KIP-890, a partition leader
// asking) nothing is written: each partition not in the ongoing
// transaction gets INVALID_TXN_STATE.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, producerID int64, epoch int16,
	parts []TopicPartition, verifyOnly bool) []int16 {
	codes := make([]int16, len(parts))
	all := func(code int16) []int16 {
		for i := range codes {
			codes[i] = code
		}
		return codes
	}
	c.mu.Lock()
	s, code := c.shardLocked(id)
	if code != 0 {
		c.mu.Unlock()
		return all(code)
	}
	m := s.txns[id]
	if code := epochCheck(m, producerID, epoch); code != 0 {
		c.mu.Unlock()
		return all(code)
	}
	if verifyOnly {
		for i, tp := range parts {
			if _, ok := m.partitions[tp]; !ok || m.state != StateOngoing {
				codes[i] = kerr.InvalidTxnState.Code
			}
		}
		c.mu.Unlock()
		return codes
	}
	if m.pending || m.state == StatePrepareCommit || m.state == StatePrepareAbort || m.state == StatePrepareEpochFence {
		c.mu.Unlock()
		return all(kerr.ConcurrentTransactions.Code)
	}
	if m.state == StateDead {
		c.mu.Unlock()
		return all(kerr.InvalidTxnState.Code)
	}
	next := m.clone()
	added := false
	for _, tp := range parts {
		if _, ok := next.partitions[tp]; !ok {
			next.partitions[tp] = struct{}{}
			added = true
		}
	}
	if !added && m.state == StateOngoing {
		c.mu.Unlock()
		return codes
	}
	if m.state != StateOngoing {
		next.state = StateOngoing
		next.startMs = c.now().UnixMilli()
	}
	wait, code := c.writeLocked(s, m, next)
	c.mu.Unlock()
	if code == 0 {
		code = wait(ctx)
	}
	return all(code)
}

// EndTxn commits or aborts id's ongoing transaction. It answers once the
// prepare record is committed; the markers and the complete record follow
// in the background.
func (c *Coordinator) EndTxn(ctx context.Context, id string, producerID int64, epoch int16, commit bool) int16 {
	c.mu.Lock()
	s, code := c.shardLocked(id)
	if code != 0 {
		c.mu.Unlock()
		return code
	}
	m := s.txns[id]
	if code := epochCheck(m, producerID, epoch); code != 0 {
		c.mu.Unlock()
		return code
	}
	if m.pending {
		c.mu.Unlock()
		return kerr.ConcurrentTransactions.Code
	}
	target := StatePrepareAbort
	if commit {
		target = StatePrepareCommit
	}
	switch m.state {
	case StateOngoing:
	case StateCompleteCommit, StateCompleteAbort:
		c.mu.Unlock()
		if (m.state == StateCompleteCommit) == commit {
			return 0 // a retry of the request that ended it
		}
		return kerr.InvalidTxnState.Code
	case StatePrepareCommit, StatePrepareAbort:
		c.mu.Unlock()
		if m.state == target {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	default:
		c.mu.Unlock()
		return kerr.InvalidTxnState.Code
	}
	next := m.clone()
	next.state = target
	wait, code := c.writeLocked(s, m, next)
	c.mu.Unlock()
	if code == 0 {
		code = wait(ctx)
	}
	if code != 0 {
		return code
	}
	c.mu.Lock()
	if !s.gone && s.txns[id] == m && m.state == target {
		c.sendMarkersLocked(s, m)
	}
	c.mu.Unlock()
	c.awaitComplete(ctx, s, id, m)
	return 0
}

// awaitComplete waits, at most EndTxnCompleteWait, until id's transaction
// m is complete (its markers and complete record written).
func (c *Coordinator) awaitComplete(ctx context.Context, s *shard, id string, m *txnMeta) {
	if c.cfg.EndTxnCompleteWait <= 0 {
		return
	}
	timer := c.clock.NewTimer(c.cfg.EndTxnCompleteWait)
	defer timer.Stop()
	for {
		c.mu.Lock()
		// Done when the transaction is no longer ours to watch, or is
		// complete with no record being written.
		same := !s.gone && !c.closed && s.txns[id] == m
		done := !same || (!m.pending && m.state != StatePrepareCommit && m.state != StatePrepareAbort)
		ch := c.completed
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-timer.Chan():
			return
		case <-ctx.Done():
			return
		}
	}
}

// Transaction is DescribeTransactions' and ListTransactions' view of one
// transaction.
type Transaction struct {
	ID            string
	State         State
	ProducerID    int64
	ProducerEpoch int16
	Timeout       time.Duration
	// StartMs is when the ongoing transaction started (-1: none).
	StartMs    int64
	Partitions []TopicPartition
}

func (m *txnMeta) view() Transaction {
	t := Transaction{ID: m.id, State: m.state, ProducerID: m.producerID, ProducerEpoch: m.epoch,
		Timeout: m.timeout, StartMs: m.startMs}
	for tp := range m.partitions {
		t.Partitions = append(t.Partitions, tp)
	}
	slices.SortFunc(t.Partitions, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return t
}

// Describe returns id's transaction, or the error code: NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS, TRANSACTIONAL_ID_NOT_FOUND.
func (c *Coordinator) Describe(id string) (Transaction, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, code := c.shardLocked(id)
	if code != 0 {
		return Transaction{}, code
	}
	m := s.txns[id]
	if m == nil || !m.written {
		return Transaction{}, kerr.TransactionalIDNotFound.Code
	}
	return m.view(), 0
}

// ListFilter selects transactions for List: empty slices select all; a
// positive MinDuration keeps transactions running for at least that long.
type ListFilter struct {
	States      []State
	ProducerIDs []int64
	MinDuration time.Duration
}

// List returns the transactions this broker coordinates that pass f, and
// COORDINATOR_LOAD_IN_PROGRESS when a state partition is still loading.
func (c *Coordinator) List(f ListFilter) ([]Transaction, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Transaction
	var code int16
	nowMs := c.now().UnixMilli()
	for _, s := range c.shards {
		if !s.loaded {
			code = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		for _, m := range s.txns {
			switch {
			case !m.written:
			case len(f.States) > 0 && !slices.Contains(f.States, m.state):
			case len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, m.producerID):
			case f.MinDuration > 0 && (m.startMs < 0 || m.state != StateOngoing ||
				time.Duration(nowMs-m.startMs)*time.Millisecond < f.MinDuration):
			default:
				out = append(out, m.view())
			}
		}
	}
	slices.SortFunc(out, func(a, b Transaction) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, code
}

// timeoutLoop aborts, every AbortTimedOutInterval, the ongoing
// transactions past their timeout.
func (c *Coordinator) timeoutLoop() {
	defer c.wg.Done()
	t := c.clock.NewTicker(c.cfg.AbortTimedOutInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.Chan():
			c.AbortTimedOut()
		}
	}
}

// AbortTimedOut aborts every ongoing transaction past its timeout, under a
// bumped epoch so its producer is fenced. The writes complete in the
// background.
func (c *Coordinator) AbortTimedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	nowMs := c.now().UnixMilli()
	for _, s := range c.shards {
		if !s.loaded {
			continue
		}
		for _, m := range s.txns {
			if m.state != StateOngoing || m.pending || m.startMs < 0 ||
				nowMs < m.startMs+m.timeout.Milliseconds() {
				continue
			}
			next := m.clone()
			next.bump()
			next.state = StatePrepareAbort
			wait, code := c.writeLocked(s, m, next)
			if code != 0 {
				continue
			}
			c.stats.timedOut.Add(1)
			c.log.Info("aborting a transaction past its timeout", "transactional_id", m.id,
				"producer_id", next.producerID, "producer_epoch", next.epoch, "timeout", m.timeout)
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				if wait(context.Background()) != 0 {
					return
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				if !s.gone && s.txns[m.id] == m && m.state == StatePrepareAbort {
					c.sendMarkersLocked(s, m)
				}
			}()
		}
	}
}
