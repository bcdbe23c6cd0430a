package group

// Offsets and group administration: OffsetCommit, OffsetFetch,
// OffsetDelete, DeleteGroups, ListGroups, DescribeGroups; the writes to the
// offsets partition; offset expiry.

import (
	"context"
	"errors"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// appendLocked writes records to the shard's partition as leader (acks=all
// semantics: refused when the ISR is below min.insync.replicas). Follow
// with waitCommitted to know the ISR has them.
func (c *Coordinator) appendLocked(s *shard, recs []kv) (partition.AppendResult, error) {
	return s.p.AppendAsLeader(buildBatch(recs, c.now().UnixMilli()), -1)
}

func (c *Coordinator) waitCommitted(ctx context.Context, s *shard, res partition.AppendResult) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
	defer cancel()
	return s.p.WaitCommitted(ctx, res)
}

// writeAsync appends records nobody waits for (group state changes with no
// client to answer); a failure is logged.
func (c *Coordinator) writeAsync(s *shard, recs []kv, what string) {
	if _, err := c.appendLocked(s, recs); err != nil {
		c.log.Warn("cannot write to the offsets partition", "partition", s.index, "what", what, "error", err)
	}
}

// writeErrorCode maps a failed write to what Kafka answers for it.
func writeErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrNotLeaderOrFollower), errors.Is(err, partition.ErrClosed),
		errors.Is(err, storage.ErrClosed), errors.Is(err, storage.ErrDiskFull),
		errors.Is(err, partition.ErrFencedLeaderEpoch):
		return kerr.NotCoordinator.Code
	case errors.Is(err, partition.ErrNotEnoughReplicas), errors.Is(err, partition.ErrNotEnoughReplicasAfterAppend),
		errors.Is(err, partition.ErrRequestTimedOut), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled), errors.Is(err, partition.ErrUnknownTopicOrPartition):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, storage.ErrBatchTooLarge):
		return kerr.InvalidCommitOffsetSize.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// CommitOffsets handles an OffsetCommit request (v0-v8).
func (c *Coordinator) CommitOffsets(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, 0, len(req.Topics))
	n, arena := 0, 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
		arena += len(t.Partitions) * offsetRecordSize(req.Group, t.Topic)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID.Code)
	}
	gen, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		gen, memberID = -1, ""
	}
	c.mu.Lock()
	s, g, code := c.groupLocked(req.Group)
	if code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	if g == nil {
		if gen >= 0 {
			c.mu.Unlock()
			return setAll(kerr.IllegalGeneration.Code)
		}
		// Offsets only: the group uses Kafka just to store them.
		g = newGroup(c, s, req.Group)
		s.groups[req.Group] = g
	}
	if code := g.checkCommit(gen, memberID, req.InstanceID); code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	nowMs := c.now().UnixMilli()
	// The records' keys and values are encoded into one buffer.
	buf := make([]byte, 0, arena)
	recs := make([]kv, 0, n)
	type pending struct {
		tp tp
		o  *offset
	}
	staged := make([]pending, 0, n)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			o, code := c.newOffset(p.Offset, p.LeaderEpoch, req.Version >= 6, p.Metadata, nowMs)
			if code != 0 {
				resp.Topics[i].Partitions[j].ErrorCode = code
				continue
			}
			var r kv
			r, buf = appendOffsetRecord(buf, req.Group, t.Topic, p.Partition, o)
			recs = append(recs, r)
			staged = append(staged, pending{tp{t.Topic, p.Partition}, o})
		}
	}
	if len(recs) == 0 {
		c.mu.Unlock()
		return resp
	}
	res, err := c.appendLocked(s, recs)
	c.mu.Unlock()
	if err == nil {
		err = c.waitCommitted(ctx, s, res)
	}
	code = writeErrorCode(err)
	c.mu.Lock()
	if err == nil && g.live() {
		for i, st := range staged {
			st.o.logOffset = res.BaseOffset + int64(i)
			if cur := g.offsets[st.tp]; cur == nil || cur.logOffset < st.o.logOffset {
				g.offsets[st.tp] = st.o
			}
		}
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("offset commit failed", "group", req.Group, "error", err)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
	}
	return resp
}

// checkCommit applies Kafka's rules for who may commit: a member of the
// current generation, or anyone (generation -1, no member id) while the
// group is Empty.
func (g *group) checkCommit(gen int32, memberID string, instanceID *string) int16 {
	if instanceID != nil && *instanceID == "" {
		instanceID = nil
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if gen < 0 && memberID == "" && instanceID == nil {
		if g.state == stateEmpty {
			return 0
		}
		// Only members commit to an active group (as Kafka answers).
		return kerr.UnknownMemberID.Code
	}
	if instanceID != nil && g.static[*instanceID] != memberID {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if gen != g.generation {
		return kerr.IllegalGeneration.Code
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	g.heartbeat(m)
	return 0
}

// FetchOffsets answers one group of an OffsetFetch: the committed offsets
// of the partitions asked (all the group has when topics is nil), or the
// group's error code.
//
// With requireStable (KIP-447), a partition with offsets pending in a
// transaction answers UNSTABLE_OFFSET_COMMIT (retriable) until its marker.
func (c *Coordinator) FetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = groupID
	c.mu.Lock()
	defer c.mu.Unlock()
	_, g, code := c.groupLocked(groupID)
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	entry := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		md := ""
		if g != nil {
			if o := g.offsets[tp{topic, p}]; o != nil {
				rp.Offset, rp.LeaderEpoch, md = o.offset, o.leaderEpoch, o.metadata
			}
			if requireStable && g.hasPendingTxn(tp{topic, p}) {
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
		}
		rp.Metadata = &md
		return rp
	}
	if topics == nil {
		if g == nil {
			return out
		}
		byTopic := map[string][]int32{}
		for k := range g.offsets {
			byTopic[k.topic] = append(byTopic[k.topic], k.partition)
		}
		names := make([]string, 0, len(byTopic))
		for n := range byTopic {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = n
			ps := byTopic[n]
			slices.Sort(ps)
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, entry(n, p))
			}
			out.Topics = append(out.Topics, rt)
		}
		return out
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, entry(t.Topic, p))
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}

// subscribedTopics are the topics the members of a consumer group
// subscribe to (from their subscription metadata); ok is false when the
// group does not use the consumer protocol or a subscription does not parse.
func (g *group) subscribedTopics() (map[string]bool, bool) {
	if g.protocolType != "consumer" {
		return nil, false
	}
	out := map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range meta.Topics {
			out[t] = true
		}
	}
	return out, true
}

// DeleteOffsets handles an OffsetDelete request (v0).
func (c *Coordinator) DeleteOffsets(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	c.mu.Lock()
	s, g, code := c.groupLocked(req.Group)
	if code != 0 {
		c.mu.Unlock()
		resp.ErrorCode = code
		return resp
	}
	if g == nil || g.state == stateDead {
		c.mu.Unlock()
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	var subscribed map[string]bool
	if g.state != stateEmpty {
		var ok bool
		if subscribed, ok = g.subscribedTopics(); !ok {
			c.mu.Unlock()
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
	}
	var recs []kv
	var gone []tp
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if subscribed[t.Topic] {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if g.offsets[tp{t.Topic, p.Partition}] != nil {
				recs = append(recs, offsetRecord(req.Group, t.Topic, p.Partition, nil))
				gone = append(gone, tp{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		c.mu.Unlock()
		return resp
	}
	res, err := c.appendLocked(s, recs)
	if err == nil {
		for _, k := range gone {
			delete(g.offsets, k)
		}
	}
	c.mu.Unlock()
	if err == nil {
		err = c.waitCommitted(ctx, s, res)
	}
	if err != nil {
		resp.ErrorCode = writeErrorCode(err)
	}
	return resp
}

// DeleteGroups deletes empty groups with their offsets (v0-v2); one result
// per group.
func (c *Coordinator) DeleteGroups(ctx context.Context, groups []string) []kmsg.DeleteGroupsResponseGroup {
	out := make([]kmsg.DeleteGroupsResponseGroup, 0, len(groups))
	type write struct {
		i   int
		s   *shard
		res partition.AppendResult
	}
	var writes []write
	c.mu.Lock()
	for _, id := range groups {
		r := kmsg.NewDeleteGroupsResponseGroup()
		r.Group = id
		out = append(out, r)
		i := len(out) - 1
		if id == "" {
			out[i].ErrorCode = kerr.InvalidGroupID.Code
			continue
		}
		s, g, code := c.groupLocked(id)
		if code != 0 {
			out[i].ErrorCode = code
			continue
		}
		switch {
		case g == nil || g.state == stateDead:
			out[i].ErrorCode = kerr.GroupIDNotFound.Code
			continue
		case g.state != stateEmpty:
			out[i].ErrorCode = kerr.NonEmptyGroup.Code
			continue
		}
		var recs []kv
		for k := range g.offsets {
			recs = append(recs, offsetRecord(id, k.topic, k.partition, nil))
		}
		recs = append(recs, kv{key: groupKey(id)})
		res, err := c.appendLocked(s, recs)
		if err != nil {
			out[i].ErrorCode = writeErrorCode(err)
			continue
		}
		g.shutdown(kerr.CoordinatorNotAvailable.Code)
		g.state = stateDead
		delete(s.groups, id)
		c.log.Info("group deleted", "group", id, "offsets", len(g.offsets))
		writes = append(writes, write{i, s, res})
	}
	c.mu.Unlock()
	for _, w := range writes {
		if err := c.waitCommitted(ctx, w.s, w.res); err != nil {
			out[w.i].ErrorCode = writeErrorCode(err)
		}
	}
	return out
}

// ListedGroup is one ListGroups entry.
type ListedGroup struct {
	Group, ProtocolType, State string
}

// ListGroups lists the groups this broker coordinates, optionally only
// those in the given states (case-insensitive, as Kafka matches them).
func (c *Coordinator) ListGroups(states []string) ([]ListedGroup, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ListedGroup
	var loading bool
	for _, s := range c.shards {
		if !s.loaded {
			loading = true
			continue
		}
		for _, g := range s.groups {
			if g.state == stateDead {
				continue
			}
			st := g.state.String()
			if len(states) > 0 && !slices.ContainsFunc(states, func(x string) bool { return equalFold(x, st) }) {
				continue
			}
			out = append(out, ListedGroup{Group: g.id, ProtocolType: g.protocolType, State: st})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	if loading {
		return out, kerr.CoordinatorLoadInProgress.Code
	}
	return out, 0
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// DescribeGroup answers one group of a DescribeGroups: members with their
// metadata and assignment while Stable, without them in other states.
func (c *Coordinator) DescribeGroup(id string) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = id
	out.AuthorizedOperations = -2147483648
	c.mu.Lock()
	defer c.mu.Unlock()
	_, g, code := c.groupLocked(id)
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	if g == nil || g.state == stateDead {
		out.State = stateDead.String()
		return out
	}
	out.State = g.state.String()
	out.ProtocolType = g.protocolType
	if g.state == stateStable {
		out.Protocol = g.protocol
	}
	for _, mid := range g.memberOrder() {
		m := g.members[mid]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceIDPtr()
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if g.state == stateStable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		out.Members = append(out.Members, dm)
	}
	return out
}

// expiryLoop expires offsets every OffsetsRetentionCheckInterval.
func (c *Coordinator) expiryLoop() {
	defer c.wg.Done()
	t := c.clock.NewTicker(c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.Chan():
			c.ExpireOffsets()
		}
	}
}

// ExpireOffsets deletes (with tombstones) the offsets of empty groups older
// than offsets.retention.minutes: counted from when the group became empty,
// or from the commit for groups that only store offsets. An empty group
// left without offsets is deleted too. It returns how many offsets expired.
func (c *Coordinator) ExpireOffsets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	nowMs := c.now().UnixMilli()
	ret := c.cfg.OffsetsRetention.Milliseconds()
	total := 0
	for _, s := range c.shards {
		if !s.loaded {
			continue
		}
		var recs []kv
		var expiredGroups []string
		var expired int
		for id, g := range s.groups {
			if g.state != stateEmpty {
				continue
			}
			var gone []tp
			for k, o := range g.offsets {
				base := o.commitMs
				if g.stateSinceMs > 0 && g.protocolType != "" {
					base = g.stateSinceMs
				}
				if nowMs-base >= ret {
					gone = append(gone, k)
					recs = append(recs, offsetRecord(id, k.topic, k.partition, nil))
				}
			}
			for _, k := range gone {
				delete(g.offsets, k)
			}
			expired += len(gone)
			if len(g.offsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 && len(g.pendingTxn) == 0 {
				recs = append(recs, kv{key: groupKey(id)})
				g.shutdown(kerr.CoordinatorNotAvailable.Code)
				g.state = stateDead
				delete(s.groups, id)
				expiredGroups = append(expiredGroups, id)
			}
		}
		if len(recs) == 0 {
			continue
		}
		c.writeAsync(s, recs, "offset expiry")
		total += expired
		c.log.Info("offsets expired", "partition", s.index, "offsets", expired, "groups_deleted", len(expiredGroups))
	}
	return total
}

// newOffset is a committed offset as OffsetCommit and TxnOffsetCommit
// take it: the leader epoch only when the request version carries one
// (-1 otherwise), the metadata bounded by offset.metadata.max.bytes
// (OFFSET_METADATA_TOO_LARGE).
func (c *Coordinator) newOffset(off int64, leaderEpoch int32, hasEpoch bool, metadata *string, nowMs int64) (*offset, int16) {
	md := ""
	if metadata != nil {
		md = *metadata
	}
	if len(md) > c.cfg.OffsetMetadataMaxBytes {
		return nil, kerr.OffsetMetadataTooLarge.Code
	}
	if !hasEpoch {
		leaderEpoch = -1
	}
	return &offset{offset: off, leaderEpoch: leaderEpoch, metadata: md, commitMs: nowMs}, 0
}
