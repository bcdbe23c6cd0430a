package group

// Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447): the
// offsets are written at once to the group's __consumer_offsets partition,
// in a transactional batch of the producer (its producer id and epoch), but
// stay pending, invisible to OffsetFetch, until the transaction's marker
// reaches that partition: a commit marker makes them the group's committed
// offsets (unless a newer plain commit of the same partition came after
// them in the log), an abort marker discards them. A coordinator that
// loads the partition resolves them the same way from the log (the
// records, then the marker), so pending offsets survive a failover.
// OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT for a
// partition with pending offsets.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
)

// producerSeq is the epoch and next sequence of a transactional producer's
// offset batches in one offsets partition (the partition checks them as
// any idempotent producer's).
type producerSeq struct {
	epoch int16
	next  int32
}

// nextSeqLocked is the first sequence of the producer's next batch of n
// records at epoch, and records it as taken.
func (s *shard) nextSeqLocked(producerID int64, epoch int16, n int) int32 {
	if s.txnSeq == nil {
		s.txnSeq = map[int64]producerSeq{}
	}
	seq := int32(0)
	if cur, ok := s.txnSeq[producerID]; ok && cur.epoch == epoch {
		seq = cur.next
	}
	s.txnSeq[producerID] = producerSeq{epoch: epoch, next: seq + int32(n)}
	return seq
}

func (s *shard) txnGroupsAdd(producerID int64, group string) {
	if s.txnGroups == nil {
		s.txnGroups = map[int64]map[string]bool{}
	}
	m := s.txnGroups[producerID]
	if m == nil {
		m = map[string]bool{}
		s.txnGroups[producerID] = m
	}
	m[group] = true
}

// addPendingTxn adds offsets of producerID's transaction (newer records
// replace older ones of the same partition).
func (g *group) addPendingTxn(producerID int64, offsets map[tp]*offset) {
	if g.pendingTxn == nil {
		g.pendingTxn = map[int64]map[tp]*offset{}
	}
	m := g.pendingTxn[producerID]
	if m == nil {
		m = map[tp]*offset{}
		g.pendingTxn[producerID] = m
	}
	for k, o := range offsets {
		if cur := m[k]; cur == nil || cur.logOffset < o.logOffset {
			m[k] = o
		}
	}
}

// hasPendingTxn says a transaction has offsets of k pending.
func (g *group) hasPendingTxn(k tp) bool {
	for _, m := range g.pendingTxn {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// TxnCommitOffsets handles a TxnOffsetCommit request (v0-v4).
func (c *Coordinator) TxnCommitOffsets(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = req.Version
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID.Code)
	}
	c.mu.Lock()
	s, g, code := c.groupLocked(req.Group)
	if code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	if g == nil {
		g = newGroup(c, s, req.Group)
		s.groups[req.Group] = g
	}
	// KIP-447: a member's commit is checked against the group; one without
	// member information (older producers) is not.
	if req.Version >= 3 && (req.MemberID != "" || req.Generation >= 0 || (req.InstanceID != nil && *req.InstanceID != "")) {
		if code := g.checkCommit(req.Generation, req.MemberID, req.InstanceID); code != 0 {
			c.mu.Unlock()
			return setAll(code)
		}
	} else if g.state == stateDead {
		c.mu.Unlock()
		return setAll(kerr.CoordinatorNotAvailable.Code)
	}
	nowMs := c.now().UnixMilli()
	var recs []kv
	type staged struct {
		tp tp
		o  *offset
	}
	var pending []staged
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			o, code := c.newOffset(p.Offset, p.LeaderEpoch, req.Version >= 2, p.Metadata, nowMs)
			if code != 0 {
				resp.Topics[i].Partitions[j].ErrorCode = code
				continue
			}
			recs = append(recs, offsetRecord(req.Group, t.Topic, p.Partition, o))
			pending = append(pending, staged{tp{t.Topic, p.Partition}, o})
		}
	}
	if len(recs) == 0 {
		c.mu.Unlock()
		return resp
	}
	seq := s.nextSeqLocked(req.ProducerID, req.ProducerEpoch, len(recs))
	batch := buildProducerBatch(recs, nowMs, req.ProducerID, req.ProducerEpoch, seq, true)
	res, err := s.p.AppendAsLeader(batch, -1)
	if err != nil {
		// Nothing was written: the sequence is not taken.
		if cur, ok := s.txnSeq[req.ProducerID]; ok && cur.epoch == req.ProducerEpoch && cur.next == seq+int32(len(recs)) {
			if seq == 0 {
				delete(s.txnSeq, req.ProducerID)
			} else {
				s.txnSeq[req.ProducerID] = producerSeq{epoch: req.ProducerEpoch, next: seq}
			}
		}
	}
	c.mu.Unlock()
	if err == nil {
		err = c.waitCommitted(ctx, s, res)
	}
	if err != nil {
		c.log.Warn("transactional offset commit failed", "group", req.Group, "producer_id", req.ProducerID, "error", err)
		return setAll(txnWriteErrorCode(err))
	}
	c.mu.Lock()
	if g.live() {
		m := map[tp]*offset{}
		for i, st := range pending {
			st.o.logOffset = res.BaseOffset + int64(i)
			m[st.tp] = st.o
		}
		g.addPendingTxn(req.ProducerID, m)
		s.txnGroupsAdd(req.ProducerID, req.Group)
	}
	c.mu.Unlock()
	return resp
}

// txnWriteErrorCode is writeErrorCode with the producer's own errors.
func txnWriteErrorCode(err error) int16 {
	switch {
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	}
	return writeErrorCode(err)
}

// CompleteTxn applies a transaction marker written to offsets partition
// index (the WriteTxnMarkers handler calls it once the marker is
// appended): the producer's pending offsets there become the groups'
// committed offsets (commit) or are dropped (abort).
func (c *Coordinator) CompleteTxn(index int32, producerID int64, commit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.shards[index]
	if s == nil || s.gone {
		return
	}
	if !s.loaded {
		// The load may have read the log before this marker: it applies
		// the marker again when it is done.
		s.lateMarkers = append(s.lateMarkers, lateMarker{producerID, commit})
		return
	}
	s.completeTxnLocked(producerID, commit)
}

// lateMarker is a marker written while its partition loaded.
type lateMarker struct {
	producerID int64
	commit     bool
}

func (s *shard) completeTxnLocked(producerID int64, commit bool) {
	groups := s.txnGroups[producerID]
	delete(s.txnGroups, producerID)
	for id := range groups {
		g := s.groups[id]
		if g == nil {
			continue
		}
		pm := g.pendingTxn[producerID]
		delete(g.pendingTxn, producerID)
		if !commit {
			continue
		}
		for k, o := range pm {
			if cur := g.offsets[k]; cur == nil || cur.logOffset < o.logOffset {
				g.offsets[k] = o
			}
		}
	}
}
