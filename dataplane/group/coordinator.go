// Package group is the broker's consumer-group coordinator (Kafka's classic
// group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch, OffsetDelete, DeleteGroups, ListGroups, DescribeGroups).
//
// The coordinator of group G is the leader of partition
// PartitionFor(G, N) of the internal topic __consumer_offsets. Everything a
// group must keep across a coordinator failover (committed offsets, the
// group's generation, members and assignments after each rebalance) is a
// record in that partition, written as leader and acknowledged only once
// the ISR has it; a broker that becomes leader of such a partition reads it
// from its start to rebuild the groups (COORDINATOR_LOAD_IN_PROGRESS
// meanwhile), and one that loses leadership forgets them (NOT_COORDINATOR).
//
// Concurrency: one mutex guards every group of this broker; no request
// holds it while waiting (a join waiting for the rebalance, a commit waiting
// for the ISR), and timers (session expiry, rebalance timeout, the initial
// rebalance delay, offset expiry) take it when they fire. All time, timers
// included, comes from Config.Clock, so tests drive it with a fake clock.
package group

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// OffsetsTopic is the internal topic holding groups and offsets.
const OffsetsTopic = "__consumer_offsets"

// loadRetry is the pause before loading an offsets partition again after
// a read error.
const loadRetry = time.Second

// Config configures a Coordinator. Durations follow Kafka's broker configs.
type Config struct {
	NodeID int32
	// OffsetsTopicNumPartitions is offsets.topic.num.partitions (50).
	OffsetsTopicNumPartitions int32
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor
	// (3), capped at the number of live brokers when the topic is created.
	OffsetsTopicReplicationFactor int16
	// OffsetsTopicSegmentBytes is offsets.topic.segment.bytes (100 MiB).
	OffsetsTopicSegmentBytes int64
	// MinSessionTimeout, MaxSessionTimeout: group.min/max.session.timeout.ms.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (3 s).
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size; 0 is unlimited.
	MaxSize int
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes (4096).
	OffsetMetadataMaxBytes int
	// OffsetsRetention is offsets.retention.minutes (7 days).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// CommitTimeout is offsets.commit.timeout.ms: how long a write waits
	// for the ISR before the request is answered with an error.
	CommitTimeout time.Duration
	Logger        hclog.Logger
	// Clock is the coordinator's time: Now, and every timer (session
	// timeouts, pending KIP-394 member ids, rebalance and sync timeouts,
	// the initial rebalance delay, the load retry and the offsets expiry
	// check). nil is the real clock; tests inject a fake one.
	Clock clockwork.Clock
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig(nodeID int32) Config {
	return Config{
		NodeID:                        nodeID,
		OffsetsTopicNumPartitions:     50,
		OffsetsTopicReplicationFactor: 3,
		OffsetsTopicSegmentBytes:      100 << 20,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		InitialRebalanceDelay:         3 * time.Second,
		OffsetMetadataMaxBytes:        4096,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		CommitTimeout:                 5 * time.Second,
		Logger:                        hclog.NewNullLogger(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.OffsetsTopicNumPartitions < 1:
		return errors.New("group: OffsetsTopicNumPartitions must be >= 1")
	case c.OffsetsTopicReplicationFactor < 1:
		return errors.New("group: OffsetsTopicReplicationFactor must be >= 1")
	case c.OffsetsTopicSegmentBytes < 1:
		return errors.New("group: OffsetsTopicSegmentBytes must be >= 1")
	case c.MinSessionTimeout < 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return errors.New("group: need 0 <= MinSessionTimeout <= MaxSessionTimeout")
	case c.InitialRebalanceDelay < 0:
		return errors.New("group: InitialRebalanceDelay must be >= 0")
	case c.MaxSize < 0:
		return errors.New("group: MaxSize must be >= 0 (0: unlimited)")
	case c.OffsetMetadataMaxBytes < 0:
		return errors.New("group: OffsetMetadataMaxBytes must be >= 0")
	case c.OffsetsRetention <= 0:
		return errors.New("group: OffsetsRetention must be > 0")
	case c.OffsetsRetentionCheckInterval <= 0:
		return errors.New("group: OffsetsRetentionCheckInterval must be > 0")
	case c.CommitTimeout <= 0:
		return errors.New("group: CommitTimeout must be > 0")
	case c.Logger == nil:
		return errors.New("group: Logger is nil")
	}
	return nil
}

// PartitionFor is the __consumer_offsets partition of a group: Java's
// String.hashCode of the id, made non-negative with & 0x7fffffff, modulo
// the number of partitions (as Kafka computes it, so tools agree).
func PartitionFor(group string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	var h int32
	for _, r := range utf16Units(group) {
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % partitions
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

// Coordinator runs the groups whose __consumer_offsets partition this
// broker leads.
type Coordinator struct {
	cfg   Config
	log   hclog.Logger
	clock clockwork.Clock

	mu sync.Mutex
	// numPartitions is the partition count of the offsets topic in the
	// latest image (0: the topic does not exist yet).
	numPartitions int32
	shards        map[int32]*shard
	closed        bool
	// rebalances counts the rebalances completed here (Rebalances).
	rebalances atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// shard is one __consumer_offsets partition led here.
type shard struct {
	index  int32
	p      *partition.Partition
	epoch  int32
	loaded bool
	gone   bool // unloaded: late timers and loads do nothing
	groups map[string]*group
	// txnGroups are the groups with offsets pending in each producer's
	// transaction (TxnOffsetCommit), until its marker.
	txnGroups map[int64]map[string]bool
	// txnSeq is the next sequence of each transactional producer's
	// offset batches here, with its epoch (txn_offsets.go).
	txnSeq map[int64]producerSeq
	// lateMarkers are markers written while the shard loaded.
	lateMarkers []lateMarker
}

// New returns a coordinator; feed it leaderships with OnLeaders and Close it.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, shards: map[int32]*shard{}, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.expiryLoop()
	return c, nil
}

// now is the coordinator's clock's time.
func (c *Coordinator) now() time.Time { return c.clock.Now() }

// Config returns the coordinator's configuration.
func (c *Coordinator) Config() Config { return c.cfg }

// Close unloads every group and stops the timers. Waiting requests are
// answered NOT_COORDINATOR.
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

// OnLeaders is the partition manager's leadership hook: it loads the
// offsets partitions this broker newly leads (or leads at a new epoch) and
// unloads those it no longer leads. It never blocks.
func (c *Coordinator) OnLeaders(img *image.Image, led []*partition.Partition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.numPartitions = 0
	if t := img.Topics[OffsetsTopic]; t != nil {
		c.numPartitions = int32(len(t.Partitions))
	}
	now := map[int32]bool{}
	for _, p := range led {
		if p.Topic() != OffsetsTopic {
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
		s := &shard{index: idx, p: p, epoch: epoch, groups: map[string]*group{}}
		c.shards[idx] = s
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.load(s)
		}()
	}
	for idx, s := range c.shards {
		if !now[idx] {
			c.unloadLocked(s, "leadership lost")
			delete(c.shards, idx)
		}
	}
}

// unloadLocked forgets a shard's groups; requests waiting on them are
// answered NOT_COORDINATOR.
func (c *Coordinator) unloadLocked(s *shard, why string) {
	s.gone = true
	n := len(s.groups)
	for _, g := range s.groups {
		g.shutdown(kerr.NotCoordinator.Code)
	}
	s.groups = map[string]*group{}
	if s.loaded {
		// Partitions that never held a group (most of the 50) log at
		// debug level.
		logf := c.log.Info
		if n == 0 {
			logf = c.log.Debug
		}
		logf("offsets partition unloaded", "partition", s.index, "leader_epoch", s.epoch, "groups", n, "reason", why)
	}
}

// load reads the shard's partition from its start to its end and rebuilds
// its groups and offsets. Records that do not decode are skipped (one
// warning per load says how many and why): a bad record costs its own
// content, never the partition's groups. A read error retries the load.
func (c *Coordinator) load(s *shard) {
	start := c.now()
	l := s.p.Log()
	end := l.LogEndOffset()
	offsets := map[string]map[tp]*offset{}
	metas := map[string]*groupMetaRecord{}
	var records int
	// Offset commit records are parsed into reused structs whose strings
	// alias the read buffer (see recordParser): apply copies the strings
	// it keeps, which for a partition committed again is only a changed
	// metadata.
	// pendingTxn are the offsets of transactions without their marker
	// yet, by producer id, group and partition.
	pendingTxn := map[int64]map[string]map[tp]*offset{}
	seqs := map[int64]producerSeq{}
	apply := func(r parsed) {
		records++
		switch {
		case r.control:
			byGroup := pendingTxn[r.txnProducer]
			delete(pendingTxn, r.txnProducer)
			if !r.commit {
				return
			}
			for id, pm := range byGroup {
				m := offsets[id]
				if m == nil {
					m = map[tp]*offset{}
					offsets[id] = m
				}
				for k, o := range pm {
					if cur := m[k]; cur == nil || cur.logOffset < o.logOffset {
						m[k] = o
					}
				}
			}
		case r.offsetKey != nil && r.txnProducer >= 0:
			seqs[r.txnProducer] = producerSeq{epoch: r.txnEpoch, next: r.txnNextSeq}
			k := r.offsetKey
			if r.offsetValue == nil {
				return // a transaction writes no tombstones
			}
			v := r.offsetValue
			le := v.LeaderEpoch
			if v.Version < 3 {
				le = -1
			}
			byGroup := pendingTxn[r.txnProducer]
			if byGroup == nil {
				byGroup = map[string]map[tp]*offset{}
				pendingTxn[r.txnProducer] = byGroup
			}
			pm := byGroup[k.Group]
			if pm == nil {
				pm = map[tp]*offset{}
				byGroup[strings.Clone(k.Group)] = pm
			}
			pm[tp{strings.Clone(k.Topic), k.Partition}] = &offset{offset: v.Offset, leaderEpoch: le,
				commitMs: v.CommitTimestamp, logOffset: r.offset, metadata: strings.Clone(v.Metadata)}
		case r.offsetKey != nil:
			k := r.offsetKey
			if r.offsetValue == nil {
				if m := offsets[k.Group]; m != nil {
					delete(m, tp{k.Topic, k.Partition})
				}
				return
			}
			m := offsets[k.Group]
			if m == nil {
				m = map[tp]*offset{}
				offsets[strings.Clone(k.Group)] = m
			}
			v := r.offsetValue
			le := v.LeaderEpoch
			if v.Version < 3 {
				le = -1
			}
			o := offset{offset: v.Offset, leaderEpoch: le, commitMs: v.CommitTimestamp, logOffset: r.offset}
			// Nothing outside the load holds these yet: a newer commit
			// of the same partition reuses the struct.
			if cur := m[tp{k.Topic, k.Partition}]; cur != nil {
				o.metadata = cur.metadata
				if o.metadata != v.Metadata {
					o.metadata = strings.Clone(v.Metadata)
				}
				*cur = o
			} else {
				no := o // allocated only here
				no.metadata = strings.Clone(v.Metadata)
				m[tp{strings.Clone(k.Topic), k.Partition}] = &no
			}
		case r.groupKey != nil:
			if r.groupValue == nil {
				delete(metas, r.groupKey.Group)
				// A deleted group's offsets were tombstoned before it.
				return
			}
			metas[r.groupKey.Group] = &groupMetaRecord{v: r.groupValue, logOffset: r.offset}
		}
	}
	var bad malformed
	err := readOffsetsLog(l, end, &bad, new(recordParser), apply)
	switch {
	case err != nil:
	case bad.stopped:
		c.log.Error("offsets partition damaged: loaded the records before the damage only", "partition", s.index,
			"records_skipped", bad.records, "first_offset", bad.first, "error", bad.err)
	case bad.records > 0:
		c.log.Warn("skipped malformed records in offsets partition", "partition", s.index, "records", bad.records,
			"first_offset", bad.first, "error", bad.err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if s.gone || c.closed {
		return
	}
	if err != nil {
		// Meanwhile the groups of this partition answer
		// COORDINATOR_LOAD_IN_PROGRESS.
		c.log.Error("cannot load offsets partition; retrying", "partition", s.index, "error", err, "retry_in", loadRetry)
		c.clock.AfterFunc(loadRetry, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if s.gone || c.closed {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.load(s)
			}()
		})
		return
	}
	nowT := c.now()
	for id, m := range metas {
		g := newGroup(c, s, id)
		g.restore(m.v, nowT)
		s.groups[id] = g
	}
	var nOffsets int
	for id, m := range offsets {
		if len(m) == 0 {
			continue
		}
		g := s.groups[id]
		if g == nil {
			g = newGroup(c, s, id)
			s.groups[id] = g
		}
		g.offsets = m
		nOffsets += len(m)
	}
	s.txnSeq = seqs
	for pid, byGroup := range pendingTxn {
		for id, pm := range byGroup {
			g := s.groups[id]
			if g == nil {
				g = newGroup(c, s, id)
				s.groups[id] = g
			}
			g.addPendingTxn(pid, pm)
			s.txnGroupsAdd(pid, id)
		}
	}
	for _, m := range s.lateMarkers {
		s.completeTxnLocked(m.producerID, m.commit)
	}
	s.lateMarkers = nil
	s.loaded = true
	logf := c.log.Info
	if records == 0 {
		logf = c.log.Debug
	}
	logf("offsets partition loaded", "partition", s.index, "leader_epoch", s.epoch, "groups", len(s.groups),
		"offsets", nOffsets, "records", records, "malformed_records", bad.records, "end_offset", end, "duration", c.now().Sub(start))
}

// readOffsetsLog parses the records of l from its start to end (as read
// when the load began) and hands each to apply; malformed ones are counted
// in bad and skipped; at batches that do not frame (damage on disk) it
// stops (bad.stopped). An error is a read error: the load is retried.
func readOffsetsLog(l *storage.Log, end int64, bad *malformed, ps *recordParser, apply func(parsed)) error {
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
		next, perr := parseBatchesWith(buf, bad, ps, apply)
		if perr == nil && next <= off {
			perr = fmt.Errorf("batch framing did not advance past offset %d", off)
		}
		if perr != nil {
			// Damage on disk (a log opened without recovery): reading
			// again cannot help, so what came before it is loaded.
			bad.add(off, 1, perr)
			bad.stopped = true
			return nil
		}
		off = next
	}
	return nil
}

type groupMetaRecord struct {
	v         *kmsg.GroupMetadataValue
	logOffset int64
}
