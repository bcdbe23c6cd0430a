package txn

// Markers: once a transaction's prepare record is committed, its commit or
// abort marker goes to every partition of the transaction (WriteTxnMarkers
// to each partition's leader, __consumer_offsets partitions included);
// when every marker is written, the complete record is.

import (
	"context"
	"sync/atomic"
)

// MarkerJob is the markers of one transaction's end.
type MarkerJob struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Commit          bool
	// CoordinatorEpoch is the leader epoch of the coordinator's state
	// partition: partitions refuse markers of an older coordinator.
	CoordinatorEpoch int32
	Partitions       []TopicPartition
	// Ctx ends when the coordinator gives the transaction up (it lost its
	// state partition): the writer then drops the job.
	Ctx context.Context
}

// MarkerWriter delivers markers. Enqueue must not block; done is called
// once, from any goroutine, when every partition has its marker (or its
// topic was deleted), with nil, or with the context's error when Ctx
// ended first.
type MarkerWriter interface {
	Enqueue(job *MarkerJob, done func(error))
}

// sendMarkersLocked hands m's markers (m is PrepareCommit or
// PrepareAbort) to the writer; once they are written, the complete record
// follows.
func (c *Coordinator) sendMarkersLocked(s *shard, m *txnMeta) {
	commit := m.state == StatePrepareCommit
	job := &MarkerJob{
		TransactionalID:  m.id,
		ProducerID:       m.producerID,
		ProducerEpoch:    m.epoch,
		Commit:           commit,
		CoordinatorEpoch: s.epoch,
		Partitions:       m.view().Partitions,
		Ctx:              s.ctx,
	}
	prepared := m.state
	epoch := m.epoch
	c.markers.Enqueue(job, func(err error) {
		if err != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if s.gone || c.closed || s.txns[m.id] != m || m.state != prepared || m.epoch != epoch {
			return
		}
		c.completeLocked(s, m)
	})
}

// completeLocked writes m's complete record (its markers are all
// written); a failed write is retried after MarkerRetryBackoff while the
// shard is loaded.
func (c *Coordinator) completeLocked(s *shard, m *txnMeta) {
	prepared := m.state
	next := m.clone()
	if prepared == StatePrepareCommit {
		next.state = StateCompleteCommit
	} else {
		next.state = StateCompleteAbort
	}
	next.partitions = map[TopicPartition]struct{}{}
	next.startMs = -1
	retry := func() {
		c.clock.AfterFunc(c.cfg.MarkerRetryBackoff, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !s.gone && !c.closed && s.txns[m.id] == m && m.state == prepared && !m.pending {
				c.completeLocked(s, m)
			}
		})
	}
	wait, code := c.writeLocked(s, m, next)
	if code != 0 {
		retry()
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if code := wait(s.ctx); code != 0 {
			c.mu.Lock()
			defer c.mu.Unlock()
			retry()
			return
		}
		if prepared == StatePrepareCommit {
			c.stats.committed.Add(1)
		} else {
			c.stats.aborted.Add(1)
		}
		c.mu.Lock()
		close(c.completed)
		c.completed = make(chan struct{})
		c.mu.Unlock()
	}()
}

// counters are the coordinator's running totals (Stats).
type counters struct {
	committed, aborted, timedOut atomic.Int64
}

// Stats is a snapshot of the coordinator's counters.
type Stats struct {
	// ByState counts the loaded transactions per state.
	ByState map[State]int
	// Committed, Aborted: transactions completed here; TimedOut: aborted
	// because they outlived their timeout.
	Committed, Aborted, TimedOut int64
	// Partitions is how many state partitions this broker coordinates.
	Partitions int
}

// Stats reads the counters.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{ByState: map[State]int{}, Partitions: len(c.shards)}
	for _, s := range c.shards {
		for _, m := range s.txns {
			if m.written {
				st.ByState[m.state]++
			}
		}
	}
	st.Committed, st.Aborted, st.TimedOut = c.stats.committed.Load(), c.stats.aborted.Load(), c.stats.timedOut.Load()
	return st
}
