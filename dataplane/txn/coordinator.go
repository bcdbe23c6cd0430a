// Package txn is the broker's transaction coordinator (Kafka's KIP-98
// design, with KIP-360 epoch bumps and KIP-890 part 1 verification):
// InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions, the
// abort of transactions that outlive their timeout, and the delivery of
// commit/abort markers to the partitions of a transaction.
//
// The coordinator of transactional id T is the leader of partition
// PartitionFor(T, N) of the internal compacted topic __transaction_state.
// Each transaction's metadata (producer id and epoch, timeout, state,
// partitions, timestamps) is a record in that partition, in Kafka's
// TransactionLog format (key TxnMetadataKey v0, value TxnMetadataValue v0),
// written as leader and applied in memory only once the ISR has it. A
// broker that becomes leader of a partition reads it from its start
// (COORDINATOR_LOAD_IN_PROGRESS meanwhile) and resumes the transactions
// that were between their prepare and complete records (their markers are
// sent again); one that loses leadership forgets them (NOT_COORDINATOR).
//
// State machine (Kafka's): Empty -> Ongoing (first partition added) ->
// PrepareCommit|PrepareAbort (EndTxn, or an abort by InitProducerId or the
// timeout) -> CompleteCommit|CompleteAbort (every marker written) ->
// Ongoing again or Empty (InitProducerId). At most one transition is in
// flight per transactional id (pending): requests meanwhile are answered
// CONCURRENT_TRANSACTIONS, which clients retry.
//
// Concurrency: one mutex guards every transaction of this broker; no
// request holds it while waiting for the ISR or for markers. All time,
// timers included, comes from Config.Clock.
package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// StateTopic is the internal topic holding the transactions' metadata.
const StateTopic = "__transaction_state"

// loadRetry is the pause before loading a state partition again after a
// read error.
const loadRetry = time.Second

// Config configures a Coordinator. Names follow Kafka's broker configs.
type Config struct {
	NodeID int32
	// StateLogNumPartitions is transaction.state.log.num.partitions (50).
	StateLogNumPartitions int32
	// StateLogReplicationFactor is transaction.state.log.replication.factor
	// (3), capped at the live brokers when the topic is created.
	StateLogReplicationFactor int16
	// StateLogMinISR is transaction.state.log.min.isr (2), capped at the
	// replication factor the topic gets.
	StateLogMinISR int
	// StateLogSegmentBytes is transaction.state.log.segment.bytes (100 MiB).
	StateLogSegmentBytes int64
	// MaxTimeout is transaction.max.timeout.ms (15 minutes): a producer
	// asking for more gets INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// AbortTimedOutInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s):
	// how often ongoing transactions past their timeout are aborted.
	AbortTimedOutInterval time.Duration
	// WriteTimeout bounds the wait for the ISR to have a state record.
	WriteTimeout time.Duration
	// MarkerRetryBackoff is the pause before sending markers again to
	// partitions whose leader refused them or could not be reached.
	MarkerRetryBackoff time.Duration
	// EndTxnCompleteWait is how long EndTxn may wait, after the prepare
	// record, for the markers and the complete record before it answers
	// (0: answer at once, as Kafka does). A client's next transaction then
	// finds the last one complete instead of being answered
	// CONCURRENT_TRANSACTIONS and backing off (franz-go: 20 ms, the bulk of
	// a short transaction's cost); markers that take longer (a leader
	// down) follow in the background as before.
	EndTxnCompleteWait time.Duration
	// PartitionVerification is transaction.partition.verification.enable
	// (true, KIP-890): partition leaders ask the coordinator before a
	// producer's first transactional batch lands on them. The broker reads
	// it; the coordinator answers verifications either way.
	PartitionVerification bool
	Logger                hclog.Logger
	// Clock is the coordinator's time (nil: the real clock).
	Clock clockwork.Clock
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig(nodeID int32) Config {
	return Config{
		NodeID:                    nodeID,
		StateLogNumPartitions:     50,
		StateLogReplicationFactor: 3,
		StateLogMinISR:            2,
		StateLogSegmentBytes:      100 << 20,
		MaxTimeout:                15 * time.Minute,
		AbortTimedOutInterval:     10 * time.Second,
		WriteTimeout:              5 * time.Second,
		MarkerRetryBackoff:        100 * time.Millisecond,
		EndTxnCompleteWait:        50 * time.Millisecond,
		PartitionVerification:     true,
		Logger:                    hclog.NewNullLogger(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.StateLogNumPartitions < 1:
		return errors.New("txn: StateLogNumPartitions must be >= 1")
	case c.StateLogReplicationFactor < 1:
		return errors.New("txn: StateLogReplicationFactor must be >= 1")
	case c.StateLogMinISR < 1:
		return errors.New("txn: StateLogMinISR must be >= 1")
	case c.StateLogSegmentBytes < 1:
		return errors.New("txn: StateLogSegmentBytes must be >= 1")
	case c.MaxTimeout < time.Millisecond || c.MaxTimeout > math.MaxInt32*time.Millisecond:
		return errors.New("txn: MaxTimeout must be between 1 ms and 2^31-1 ms")
	case c.AbortTimedOutInterval <= 0:
		return errors.New("txn: AbortTimedOutInterval must be > 0")
	case c.WriteTimeout <= 0:
		return errors.New("txn: WriteTimeout must be > 0")
	case c.MarkerRetryBackoff <= 0:
		return errors.New("txn: MarkerRetryBackoff must be > 0")
	case c.Logger == nil:
		return errors.New("txn: Logger is nil")
	}
	return nil
}

// PartitionFor is the __transaction_state partition of a transactional id:
// Java's String.hashCode of the id, made non-negative as Kafka's
// Utils.abs does (Integer.MIN_VALUE becomes 0), modulo the partition
// count, so Kafka's tools agree.
func PartitionFor(id string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16Units(id) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// utf16Units are the UTF-16 code units of s (what Java hashes).
func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// Coordinator runs the transactions whose __transaction_state partition
// this broker leads.
type Coordinator struct {
	cfg     Config
	log     hclog.Logger
	clock   clockwork.Clock
	markers MarkerWriter

	mu sync.Mutex
	// numPartitions is the state topic's partition count in the latest
	// image (0: it does not exist yet).
	numPartitions int32
	shards        map[int32]*shard
	closed        bool
	stats         counters
	// completed is closed (and replaced) whenever a transaction's
	// complete record is committed: EndTxn's bounded wait.
	completed chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// shard is one __transaction_state partition led here.
type shard struct {
	index int32
	p     *partition.Partition
	// epoch is the partition's leader epoch: the coordinator epoch of the
	// markers sent for its transactions.
	epoch  int32
	loaded bool
	gone   bool // unloaded: late writes, loads and markers do nothing
	txns   map[string]*txnMeta
	// ctx ends when the shard is unloaded (markers in flight stop).
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a coordinator sending markers through markers; feed it
// leaderships with OnLeaders and Close it.
func New(cfg Config, markers MarkerWriter) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if markers == nil {
		return nil, errors.New("txn: no marker writer")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, markers: markers,
		shards: map[int32]*shard{}, stop: make(chan struct{}), completed: make(chan struct{})}
	c.wg.Add(1)
	go c.timeoutLoop()
	return c, nil
}

// Config returns the coordinator's configuration.
func (c *Coordinator) Config() Config { return c.cfg }

func (c *Coordinator) now() time.Time { return c.clock.Now() }

// Close unloads every transaction and stops the timers. Idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for idx, s := range c.shards {
		c.unloadLocked(s, "shutdown")
		delete(c.shards, idx)
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

// OnLeaders is the partition manager's leadership hook for the state
// topic: it loads the partitions this broker newly leads (or leads at a
// new epoch) and unloads those it no longer leads. It never blocks.
func (c *Coordinator) OnLeaders(img *image.Image, led []*partition.Partition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.numPartitions = 0
	if t := img.Topics[StateTopic]; t != nil {
		c.numPartitions = int32(len(t.Partitions))
	}
	now := map[int32]bool{}
	for _, p := range led {
		if p.Topic() != StateTopic {
			continue
		}
		idx := p.Index()
		now[idx] = true
		epoch := p.State().LeaderEpoch
		if s := c.shards[idx]; s != nil {
			if s.p == p && s.epoch == epoch {
				continue
			}
			c.unloadLocked(s, "new leader epoch")
		}
		s := &shard{index: idx, p: p, epoch: epoch, txns: map[string]*txnMeta{}}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		c.shards[idx] = s
		c.startLoad(s)
	}
	for idx, s := range c.shards {
		if !now[idx] {
			c.unloadLocked(s, "leadership lost")
			delete(c.shards, idx)
		}
	}
}

func (c *Coordinator) startLoad(s *shard) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.load(s)
	}()
}

// unloadLocked forgets a shard's transactions; their markers stop.
func (c *Coordinator) unloadLocked(s *shard, why string) {
	s.gone = true
	s.cancel()
	n := len(s.txns)
	s.txns = map[string]*txnMeta{}
	if s.loaded && n > 0 {
		c.log.Info("transaction state partition unloaded", "partition", s.index, "leader_epoch", s.epoch,
			"transactions", n, "reason", why)
	}
}

// load reads the shard's partition and rebuilds its transactions; those
// between prepare and complete get their markers sent again.
func (c *Coordinator) load(s *shard) {
	start := c.now()
	l := s.p.Log()
	end := l.LogEndOffset()
	txns := map[string]*txnMeta{}
	var records, bad int
	var firstErr error
	err := readStateLog(l, end, func(key, value []byte) {
		records++
		id, m, err := decodeRecord(key, value)
		if err != nil {
			if bad == 0 {
				firstErr = err
			}
			bad++
			return
		}
		if m == nil {
			delete(txns, id)
			return
		}
		txns[id] = m
	})
	if bad > 0 {
		c.log.Warn("skipped malformed records in transaction state partition", "partition", s.index,
			"records", bad, "error", firstErr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.gone || c.closed {
		return
	}
	if err != nil {
		c.log.Error("cannot load transaction state partition; retrying", "partition", s.index, "error", err, "retry_in", loadRetry)
		c.clock.AfterFunc(loadRetry, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !s.gone && !c.closed {
				c.startLoad(s)
			}
		})
		return
	}
	s.txns = txns
	s.loaded = true
	var resumed int
	for _, m := range txns {
		if m.state == StatePrepareCommit || m.state == StatePrepareAbort {
			resumed++
			c.sendMarkersLocked(s, m)
		}
	}
	logf := c.log.Info
	if records == 0 {
		logf = c.log.Debug
	}
	logf("transaction state partition loaded", "partition", s.index, "leader_epoch", s.epoch,
		"transactions", len(txns), "resumed", resumed, "records", records, "end_offset", end,
		"duration", c.now().Sub(start))
}

// readStateLog hands every record of l below end to fn (value nil: a
// tombstone). Control batches are skipped.
func readStateLog(l *storage.Log, end int64, fn func(key, value []byte)) error {
	var buf []byte
	for off := l.LogStartOffset(); off < end; {
		res, err := l.Read(off, 1<<20, math.MaxInt64)
		if err != nil {
			return err
		}
		if res.Size == 0 {
			return nil
		}
		if buf, err = res.ReadInto(buf[:0]); err != nil {
			return err
		}
		next, err := forEachRecord(buf, fn)
		if err != nil {
			return fmt.Errorf("offset %d: %w", off, err)
		}
		if next <= off {
			return fmt.Errorf("batch framing did not advance past offset %d", off)
		}
		off = next
	}
	return nil
}

// shardLocked finds the loaded shard coordinating id, or the error code
// to answer: NOT_COORDINATOR when this broker does not lead its state
// partition, COORDINATOR_LOAD_IN_PROGRESS while it loads.
func (c *Coordinator) shardLocked(id string) (*shard, int16) {
	if c.closed || c.numPartitions == 0 {
		return nil, kerr.NotCoordinator.Code
	}
	s := c.shards[PartitionFor(id, c.numPartitions)]
	switch {
	case s == nil:
		return nil, kerr.NotCoordinator.Code
	case !s.loaded:
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return s, 0
}

// writeErrorCode maps a failed state write to what Kafka answers.
func writeErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrNotLeaderOrFollower), errors.Is(err, partition.ErrClosed),
		errors.Is(err, storage.ErrClosed), errors.Is(err, partition.ErrFencedLeaderEpoch),
		errors.Is(err, errUnloaded):
		return kerr.NotCoordinator.Code
	default:
		// Not enough replicas, timeouts, a full disk: the client retries.
		return kerr.CoordinatorNotAvailable.Code
	}
}

var errUnloaded = errors.New("transaction state partition unloaded")
