package kafka

// Fetch (API key 1), versions 4-16.
//
//   - v13+ names topics by TopicID (unknown id: UNKNOWN_TOPIC_ID); earlier
//     versions by name.
//   - Only the leader serves fetches (NOT_LEADER_OR_FOLLOWER otherwise, with
//     the CurrentLeader hint from v12); CurrentLeaderEpoch older than ours is
//     FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
//   - Consumers read whole batches below the high watermark. A follower's
//     fetch (ReplicaID, or ReplicaState.ID from v15, >= 0) reads up to the
//     log end and reports its log end offset (the fetch offset) to the
//     leader's high watermark. A follower not in the replica set gets
//     UNKNOWN_LEADER_EPOCH when it names the current epoch, else
//     NOT_LEADER_OR_FOLLOWER (Kafka's answers).
//   - A debug consumer's fetch (ReplicaID -2, partition.DebugReplicaID) is
//     served by any replica, leader or follower, from its own log up to its
//     own high watermark; it is not a follower fetch (no log end offset
//     reported, no divergence check). `skein replicas verify` uses it.
//   - Divergence (v12+, KIP-279/KIP-320): a follower's LastFetchedEpoch and
//     FetchOffset are checked against the leader's epoch history; a
//     mismatch answers DivergingEpoch{Epoch, EndOffset} without data, the
//     follower truncates and fetches again. Such a fetch does not count as
//     the follower's log end offset. Consumers' LastFetchedEpoch is ignored
//     (they detect truncation with OffsetForLeaderEpoch).
//   - Sizes: PartitionMaxBytes per partition, MaxBytes (capped by the
//     broker's FetchMaxBytes) in total, except that the first partition with
//     data always returns at least one whole batch (KIP-74).
//   - Long poll: while fewer than MinBytes are available and MaxWaitMillis
//     has not passed, the request waits on the partitions' state changes
//     (no polling), then reads again. Any partition error answers at once.
//   - A follower's long poll also answers when the follower must now fetch
//     another partition from here (this broker became its leader, or the
//     follower joined its replicas), so that its next fetch adds it; and
//     for a while after such a change it waits no longer than the time
//     since the change, for a follower that learns of it after this broker
//     does (partition.FollowerWatch, issue 13).
//   - OFFSET_OUT_OF_RANGE answers carry the high watermark and log start.
//   - Fetch sessions (KIP-227, v7+; fetch_session.go): a full fetch with
//     epoch 0 creates one, incremental fetches name only what changed and
//     are answered with only what changed; idle partitions of a session
//     are not read, and a session parks on one channel for all of them.
//     Epoch -1 (and every fetch before v7) is sessionless, as before.
//   - Replication throttle (KIP-73, Handlers.Throttles' leader side): a
//     follower's fetch of a partition throttled here (listed for this
//     broker in leader.replication.throttled.replicas, with a bounded
//     leader.replication.throttled.rate) gets no data while the quota is
//     exceeded, unless the follower is in the ISR; the partition stays in
//     the fetch (and its session) and is read again on the next one. The
//     bytes answered for throttled partitions, to any follower, are taken
//     from the quota. A long poll held back only by the quota wakes when
//     it has room again (never past MaxWait); nothing sleeps.
//   - LastStableOffset: min(high watermark, first offset of any open or
//     not yet committed transaction). IsolationLevel 1 (read_committed)
//     reads a consumer's fetch up to it instead of the high watermark and
//     answers AbortedTransactions: the aborted transactions (producer id,
//     first offset) overlapping the records returned, from the
//     .txnindex; the consumer drops their records itself, using the
//     abort markers (Kafka's design). Sessions carry the request's level.
//     PreferredReadReplica -1.
//   - Log data is not copied: the response carries file ranges that the
//     wire sends with sendfile(2) (wire.FileResponse).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
)

// fetchPartition is one partition of a fetch being served.
type fetchPartition struct {
	out    *kmsg.FetchResponseTopicPartition
	p      *partition.Partition // nil when out already carries an error
	topic  string
	params partition.ReadParams
	read   storage.ReadResult
	// replicaEpoch is a follower's broker epoch (v15+), -1 unknown.
	replicaEpoch int64
	// followerLogStart is the log start a follower reported (v5+), -1
	// none.
	followerLogStart int64
	// sp is the session partition read (nil: sessionless), clock its
	// session's (followers only).
	sp    *sessionPartition
	clock *partition.SessionClock
	// aborted are the aborted transactions of a read_committed read.
	aborted []storage.AbortedTxn
	// cut: the read had records but the size limit left them out.
	cut bool
	// outOfISR: a follower's read while it is not in the ISR.
	outOfISR bool
	// throttled: a follower's read of a partition throttled on this
	// leader (its bytes count against the quota); held: its records were
	// left out because the quota was exceeded.
	throttled, held bool
}

func (h *Handlers) handleFetch(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	replicaID, replicaEpoch := r.ReplicaID, int64(-1)
	if r.Version >= 15 {
		replicaID, replicaEpoch = r.ReplicaState.ID, r.ReplicaState.Epoch
	}
	if h.followerDenied(req, replicaID) {
		resp.ErrorCode = clusterDenied
		return resp, nil
	}
	if r.Version >= 7 {
		cache := h.FetchSessions
		if cache == nil {
			cache = noFetchSessions
		}
		id, epoch := r.SessionID, r.SessionEpoch
		switch {
		case epoch == finalSessionEpoch:
			if id != 0 {
				cache.remove(id)
			}
		case epoch == initialSessionEpoch:
			if id != 0 {
				cache.remove(id)
			}
			if s := cache.create(replicaID >= 0, r.Version >= 13); s != nil {
				defer s.unlock()
				h.dataLog().Debug("fetch session created", "session_id", s.id, "replica_id", replicaID)
				return h.sessionFetch(ctx, req, resp, s, true, replicaID, replicaEpoch)
			}
		default:
			s, err := cache.acquire(id, epoch, r.Version >= 13)
			if err != nil {
				resp.ErrorCode = err.Code
				return resp, nil
			}
			defer s.unlock()
			return h.sessionFetch(ctx, req, resp, s, false, replicaID, replicaEpoch)
		}
	}
	img := h.Partitions.Image()

	var parts []fetchPartition
	resp.Topics = make([]kmsg.FetchResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		name, topicErr := rt.Topic, error(nil)
		if r.Version >= 13 {
			if t := img.TopicByID(rt.TopicID); t != nil {
				name = t.Name
			} else {
				topicErr = partition.ErrUnknownTopicID
			}
		}
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark = -1
			fp := fetchPartition{out: op, topic: name, replicaEpoch: replicaEpoch, followerLogStart: -1, params: partition.ReadParams{
				FetchOffset:        rp.FetchOffset,
				MaxBytes:           rp.PartitionMaxBytes,
				CurrentLeaderEpoch: rp.CurrentLeaderEpoch,
				ReplicaID:          replicaID,
				LastFetchedEpoch:   -1,
				ReadCommitted:      r.IsolationLevel == 1 && replicaID < 0,
			}}
			if replicaID >= 0 && r.Version >= 12 {
				fp.params.LastFetchedEpoch = rp.LastFetchedEpoch
			}
			if replicaID >= 0 && r.Version >= 5 {
				fp.followerLogStart = rp.LogStartOffset
			}
			if topicErr != nil {
				op.ErrorCode = errorCode(topicErr)
			} else if h.fetchDenied(req, replicaID, name) {
				op.ErrorCode = topicDenied
			} else if p, err := h.Partitions.Partition(name, rp.Partition); err != nil {
				h.setFetchError(r.Version, name, op, err)
			} else {
				fp.p = p
			}
			parts = append(parts, fp)
		}
	}

	maxBytes := r.MaxBytes
	if h.Config.FetchMaxBytes > 0 {
		maxBytes = min(maxBytes, h.Config.FetchMaxBytes)
	}
	total, failed, _ := h.readFetch(r.Version, parts, maxBytes)
	if total < int64(r.MinBytes) && r.MaxWaitMillis > 0 && !failed {
		h.waitFetch(ctx, r.Version, req.Received.Add(time.Duration(r.MaxWaitMillis)*time.Millisecond), parts, maxBytes, int64(r.MinBytes), replicaID)
	}
	h.recordThrottled(parts)

	// Each partition's data goes out with sendfile from its segment file
	// (see wire.FileResponse); only a read that spans several ranges is
	// copied.
	fr := wire.NewFileResponse(resp)
	for i := range parts {
		h.attachRecords(fr, &parts[i])
	}
	return fr, nil
}

// attachRecords puts fp's records in its answer: a file range sent with
// sendfile, or a copy when the read spans several ranges. Partitions must
// be attached in the order the response encodes them.
func (h *Handlers) attachRecords(fr *wire.FileResponse, fp *fetchPartition) {
	// Never null: librdkafka refuses a MessageSetSize of -1.
	fp.out.RecordBatches = noRecords
	switch {
	case fp.read.Size == 0:
		return
	case len(fp.read.Ranges) == 1:
		rg := fp.read.Ranges[0]
		fp.out.RecordBatches = fr.Add(wire.FileRange{File: rg.File, Pos: rg.Pos, Size: rg.Size})
	default:
		data, err := fp.read.ReadInto(make([]byte, 0, fp.read.Size))
		if err != nil {
			// A segment deleted by retention since the read: answer
			// without data; the client fetches again.
			h.dataLog().Debug("fetch read failed", "topic", fp.topic, "partition", fp.out.Partition, "error", err)
			return
		}
		fp.out.RecordBatches = data
	}
	for _, t := range fp.aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = t.ProducerID, t.FirstOffset
		fp.out.AbortedTransactions = append(fp.out.AbortedTransactions, at)
	}
	if fp.read.Size > 0 {
		fp.p.CountFetched(fp.params.ReplicaID >= 0, fp.read.Size, fp.params.FetchOffset, fp.read.NextOffset)
		// A follower is told where a segment of this log starts only
		// when the answer begins one (its fetch offset at or below the
		// segment's base): inside a segment it has nothing to learn, and
		// the common answer carries no tag to allocate.
		if fp.params.ReplicaID >= 0 && fp.read.SegmentBase >= fp.params.FetchOffset {
			fp.out.UnknownTags.Set(wire.TagLeaderSegmentBase, wire.EncodeLeaderSegmentBase(fp.read.SegmentBase))
		}
	}
}

// noRecords is the empty (not null) record set of a partition without data.
var noRecords = []byte{}

// readFetch reads every partition (file ranges only, no copy) and returns
// the total size, whether a partition failed or diverged (then the fetch
// answers at once), and whether the replication throttle held back a
// partition's records.
func (h *Handlers) readFetch(version int16, parts []fetchPartition, maxBytes int32) (total int64, failed, held bool) {
	quota := h.Throttles.Leader()
	for i := range parts {
		fp := &parts[i]
		fp.read, fp.aborted, fp.cut, fp.outOfISR, fp.throttled, fp.held = storage.ReadResult{}, nil, false, false, false, false
		if fp.p == nil {
			failed = failed || fp.out.ErrorCode != 0
			continue
		}
		limit := min(int64(fp.params.MaxBytes), int64(maxBytes)-total)
		params := fp.params
		params.MaxBytes = int32(max(limit, 0))
		if fp.sp != nil {
			// Before the read: a change during it shows on the next fetch.
			fp.sp.changes = fp.p.Changes()
		}
		rr, err := fp.p.Read(params)
		fp.out.HighWatermark = rr.HighWatermark
		fp.out.LastStableOffset = rr.LastStableOffset
		fp.out.LogStartOffset = rr.LogStartOffset
		if err != nil {
			h.setFetchError(version, fp.topic, fp.out, err)
			failed = true
			continue
		}
		fp.out.ErrorCode = 0
		if d := rr.Diverging; d != nil {
			// The follower truncates first; answer at once.
			fp.out.DivergingEpoch.Epoch, fp.out.DivergingEpoch.EndOffset = d.Epoch, d.EndOffset
			failed = true
			continue
		}
		if fp.params.ReplicaID >= 0 {
			inISR, err := fp.p.UpdateFollowerFetchSession(fp.params.ReplicaID, fp.replicaEpoch, fp.params.FetchOffset, fp.followerLogStart, fp.clock)
			// A session reads a follower's partitions outside the ISR on
			// every fetch, so that its expansion is tried again.
			fp.outOfISR = err == nil && !inISR
			if quota.Throttled(fp.topic, fp.out.Partition) {
				fp.throttled = true
				if rr.Size > 0 && (err != nil || !inISR) && quota.Exceeded() {
					fp.held, held = true, true
					continue
				}
			}
		}
		// KIP-74: only the first partition with data may exceed the limits.
		if total > 0 && rr.Size > limit {
			fp.cut = true
			continue
		}
		fp.read, fp.aborted = rr.ReadResult, rr.AbortedTxns
		total += rr.Size
	}
	return total, failed, held
}

// recordThrottled takes the bytes answered for throttled partitions from
// the leader's replication quota.
func (h *Handlers) recordThrottled(parts []fetchPartition) {
	var n int64
	for i := range parts {
		if parts[i].throttled {
			n += parts[i].read.Size
		}
	}
	h.Throttles.Leader().Record(n)
}

// minThrottleWait is the shortest park of a fetch waiting for the
// replication quota, so that racing fetches do not spin.
const minThrottleWait = 5 * time.Millisecond

// throttleWake returns when a long poll that waits until deadline should
// read again: then, or, when held (the quota held back records), as soon
// as the quota has room.
func (h *Handlers) throttleWake(held bool, deadline time.Time) time.Time {
	if !held {
		return deadline
	}
	at, ok := h.Throttles.Leader().ReadyAt()
	if !ok {
		return deadline
	}
	if soon := time.Now().Add(minThrottleWait); at.Before(soon) {
		at = soon
	}
	if deadline.Before(at) {
		return deadline
	}
	return at
}

// fetchWakeOn is what a parked fetch waits for: a follower reads up to
// the log end, so appends; a consumer up to the high watermark, so its
// advances.
func fetchWakeOn(replicaID int32) partition.Event {
	if replicaID >= 0 {
		return partition.WakeFollowerFetch
	}
	return partition.WakeConsumerFetch
}

// waitFetch parks the fetch on its partitions until MinBytes are available,
// the deadline passes or ctx ends; it re-reads after every wake-up (and
// when the replication quota held back records and has room again). A
// follower's fetch (replicaID >= 0) also answers when the follower must
// fetch another partition from here, and parks only briefly soon after
// such a change (partition.FollowerWatch).
func (h *Handlers) waitFetch(ctx context.Context, version int16, deadline time.Time, parts []fetchPartition, maxBytes int32, minBytes int64, replicaID int32) {
	h.waiting.fetch.Add(1)
	defer h.waiting.fetch.Add(-1)
	w := partition.NewWaiter(fetchWakeOn(replicaID))
	defer w.Close()
	var follower *partition.FollowerWatch
	if replicaID >= 0 {
		follower = h.Partitions.WatchFollowerWaiter(replicaID, w)
		defer follower.Close()
		deadline = follower.Deadline(deadline)
	}
	for i := range parts {
		if parts[i].p != nil {
			w.Watch(parts[i].p)
		}
	}
	parked := time.Now() // the caller's read found too little
	for {
		// Read again right after watching, so a change in between is seen.
		total, failed, held := h.readFetch(version, parts, maxBytes)
		if total >= minBytes || failed || (follower != nil && follower.Due()) {
			if follower != nil && !failed && h.followerLinger(ctx, time.Since(parked), total) {
				h.readFetch(version, parts, maxBytes)
			}
			return
		}
		wake := h.throttleWake(held, deadline)
		if !w.Wait(ctx, wake) && (ctx.Err() != nil || !wake.Before(deadline)) {
			return
		}
	}
}

// setFetchError fills a failed partition's error code (and the leader hint
// for NOT_LEADER_OR_FOLLOWER from v12).
func (h *Handlers) setFetchError(version int16, topic string, op *kmsg.FetchResponseTopicPartition, err error) {
	op.ErrorCode = errorCode(err)
	if !isKnownError(err) {
		h.dataLog().Error("fetch failed", "topic", topic, "partition", op.Partition, "error", err)
	}
	if op.ErrorCode == kerr.NotLeaderForPartition.Code && version >= 12 {
		if leader, epoch, ok := h.leaderHint(topic, op.Partition); ok {
			op.CurrentLeader.LeaderID, op.CurrentLeader.LeaderEpoch = leader, epoch
		}
	}
}
