package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
)

// noFetchSessions is the cache of Handlers without FetchSessions: no slot,
// so every fetch is sessionless.
var noFetchSessions = NewFetchSessionCache(0, 0, nil)

// sessionFetch serves a fetch of session s (held by the caller): a full
// one (the request that created s: every partition read and answered) or
// an incremental one (the request's partitions and ForgottenTopics applied
// to s; only the partitions that need it read, only the changed ones
// answered). See fetch_session.go.
func (h *Handlers) sessionFetch(ctx context.Context, req *wire.Request, resp *kmsg.FetchResponse, s *fetchSession,
	full bool, replicaID int32, replicaEpoch int64) (kmsg.Response, error) {
	r := req.Body.(*kmsg.FetchRequest)
	start := time.Now()
	s.apply(r, replicaID)
	resp.SessionID = s.id

	// A signal pending from before is stale: every partition is checked
	// below anyway.
	select {
	case <-s.wake:
	default:
	}
	var follower *partition.FollowerWatch
	var clock *partition.SessionClock
	if replicaID >= 0 {
		clock = &s.clock
		// A partition this follower must now fetch from here wakes the
		// session and answers it (partition.FollowerWatch).
		fw := h.Partitions.WatchFollower(replicaID, s.wake)
		defer fw.Close()
		follower = fw
	}
	img := h.Partitions.Image()
	// inFetch marks the session partitions already in parts.
	inFetch := make(map[*sessionPartition]bool)
	var parts []fetchPartition
	collect := func() {
		for _, sp := range s.parts {
			if inFetch[sp] || (!full && !sp.mustRead()) {
				continue
			}
			inFetch[sp] = true
			fp := h.sessionPartitionFetch(r.Version, img, s, sp, replicaID, replicaEpoch, clock)
			fp.params.ReadCommitted = r.IsolationLevel == 1 && replicaID < 0
			if fp.p != nil && h.fetchDenied(req, replicaID, fp.topic) {
				fp.out.ErrorCode, fp.p = topicDenied, nil
			}
			parts = append(parts, fp)
		}
	}
	collect()
	maxBytes := r.MaxBytes
	if h.Config.FetchMaxBytes > 0 {
		maxBytes = min(maxBytes, h.Config.FetchMaxBytes)
	}
	total, failed, held := h.readFetch(r.Version, parts, maxBytes)
	if clock != nil {
		// Every partition not read was as its last read left it.
		clock.Set(start)
	}
	if total < int64(r.MinBytes) && r.MaxWaitMillis > 0 && !failed {
		h.waiting.fetch.Add(1)
		defer h.waiting.fetch.Add(-1)
		deadline := req.Received.Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
		if follower != nil {
			deadline = follower.Deadline(deadline)
		}
		parked := time.Now()
		for total < int64(r.MinBytes) && !failed {
			// Wake for a change, or when the replication quota that held
			// back records has room again.
			wake := h.throttleWake(held, deadline)
			if !parkSession(ctx, s.wake, wake) && (ctx.Err() != nil || !wake.Before(deadline)) {
				break
			}
			if follower != nil && follower.Due() {
				break
			}
			collect()
			total, failed, held = h.readFetch(r.Version, parts, maxBytes)
			if follower != nil && logStartMoved(parts) {
				break
			}
		}
		if follower != nil && !failed && h.followerLinger(ctx, time.Since(parked), total) {
			collect()
			total, failed, held = h.readFetch(r.Version, parts, maxBytes)
		}
	}
	h.recordThrottled(parts)

	// The answer: partitions in session order, grouped by topic.
	type topicKey struct {
		id   [16]byte
		name string
	}
	topicIdx := map[topicKey]int{}
	var order []*fetchPartition
	var topicOf []int
	for i := range parts {
		fp := &parts[i]
		sp := fp.sp
		diverging := fp.out.DivergingEpoch.Epoch >= 0 || fp.out.DivergingEpoch.EndOffset >= 0
		sp.stale = fp.out.ErrorCode != 0 || fp.read.Size > 0 || diverging || fp.cut || fp.outOfISR || fp.held
		if full {
			sp.markSent(fp.out.HighWatermark, fp.out.LogStartOffset, fp.out.LastStableOffset)
		} else if !sp.mustSend(fp.out.ErrorCode, fp.read.Size, diverging, fp.out.HighWatermark, fp.out.LogStartOffset, fp.out.LastStableOffset) {
			continue
		}
		k := topicKey{id: sp.key.topicID, name: sp.key.topic}
		ti, ok := topicIdx[k]
		if !ok {
			ti = len(resp.Topics)
			topicIdx[k] = ti
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = fp.topic, sp.key.topicID
			resp.Topics = append(resp.Topics, t)
		}
		order = append(order, fp)
		topicOf = append(topicOf, ti)
	}
	s.rotate(parts)
	// Records are attached in the order the response encodes them.
	byTopic := make([][]*fetchPartition, len(resp.Topics))
	for i, fp := range order {
		byTopic[topicOf[i]] = append(byTopic[topicOf[i]], fp)
	}
	fr := wire.NewFileResponse(resp)
	for ti, fps := range byTopic {
		t := &resp.Topics[ti]
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(fps))
		for _, fp := range fps {
			h.attachRecords(fr, fp)
			t.Partitions = append(t.Partitions, *fp.out)
		}
	}
	return fr, nil
}

// apply takes the request's partitions (new or changed) and forgotten
// topics into the session. A full (creating) request names every
// partition.
func (s *fetchSession) apply(r *kmsg.FetchRequest, replicaID int32) {
	for i := range r.Topics {
		rt := &r.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			lastFetched, logStart := int32(-1), int64(-1)
			if replicaID >= 0 && r.Version >= 12 {
				lastFetched = rp.LastFetchedEpoch
			}
			if replicaID >= 0 && r.Version >= 5 {
				logStart = rp.LogStartOffset
			}
			s.upsert(s.key(rt.TopicID, rt.Topic, rp.Partition), rp.FetchOffset, logStart, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, lastFetched)
		}
	}
	for i := range r.ForgottenTopics {
		ft := &r.ForgottenTopics[i]
		for _, p := range ft.Partitions {
			s.forget(s.key(ft.TopicID, ft.Topic, p))
		}
	}
}

// rotate moves the partitions that answered records to the end of the
// session's order (as Kafka does), so that under a response size limit the
// others are read first next time and none starves.
func (s *fetchSession) rotate(parts []fetchPartition) {
	moved := 0
	for i := range parts {
		if parts[i].read.Size > 0 {
			parts[i].sp.moved = true
			moved++
		}
	}
	if moved == 0 {
		return
	}
	// A stable partition in place: the others keep their order in front,
	// the moved ones theirs behind (a small session's moved ones fit on
	// the stack).
	var buf [16]*sessionPartition
	tail := buf[:0]
	if moved > len(buf) {
		tail = make([]*sessionPartition, 0, moved)
	}
	kept := 0
	for _, sp := range s.parts {
		if sp.moved {
			sp.moved = false
			tail = append(tail, sp)
			continue
		}
		s.parts[kept] = sp
		kept++
	}
	copy(s.parts[kept:], tail)
	for i := range parts {
		parts[i].sp.moved = false
	}
}

// key names a partition of the session: by id or by name.
func (s *fetchSession) key(id [16]byte, name string, p int32) sessionKey {
	if s.topicIDs {
		return sessionKey{topicID: id, partition: p}
	}
	return sessionKey{topic: name, partition: p}
}

// sessionPartitionFetch resolves sp (topic id, hosted replica; the waker
// follows the replica) and returns it as a partition of this fetch.
func (h *Handlers) sessionPartitionFetch(version int16, img *image.Image, s *fetchSession, sp *sessionPartition, replicaID int32, replicaEpoch int64, clock *partition.SessionClock) fetchPartition {
	op := new(kmsg.FetchResponseTopicPartition)
	*op = kmsg.NewFetchResponseTopicPartition()
	op.Partition = sp.key.partition
	op.HighWatermark = -1
	fp := fetchPartition{out: op, sp: sp, clock: clock, topic: sp.key.topic, replicaEpoch: replicaEpoch, followerLogStart: sp.followerLogStart,
		params: partition.ReadParams{
			FetchOffset:        sp.fetchOffset,
			MaxBytes:           sp.maxBytes,
			CurrentLeaderEpoch: sp.currentLeaderEpoch,
			ReplicaID:          replicaID,
			LastFetchedEpoch:   sp.lastFetchedEpoch,
		}}
	if s.topicIDs {
		t := img.TopicByID(sp.key.topicID)
		if t == nil {
			op.ErrorCode = errorCode(partition.ErrUnknownTopicID)
			s.watch(sp, nil)
			return fp
		}
		fp.topic = t.Name
	}
	p, err := h.Partitions.Partition(fp.topic, sp.key.partition)
	if err != nil {
		h.setFetchError(version, fp.topic, op, err)
		s.watch(sp, nil)
		return fp
	}
	s.watch(sp, p)
	fp.p = p
	return fp
}

// logStartMoved says whether a partition's log start moved since the
// session last answered it (DeleteRecords): a parked follower fetch then
// answers at once, so the follower takes the new start and reports it in
// its next fetch, which the DeleteRecords waits for. Once per move: the
// answer records the start sent.
func logStartMoved(parts []fetchPartition) bool {
	for i := range parts {
		fp := &parts[i]
		if fp.sp != nil && fp.sp.sent && fp.out.ErrorCode == 0 && fp.out.LogStartOffset > fp.sp.logStart {
			return true
		}
	}
	return false
}

// followerLinger holds a follower's fetch that parked and was woken with
// total bytes to send, for Config.ReplicaFetchLinger, when records arrive
// often: it parked for less than lingerBusyFactor lingers, and the answer
// is small (under lingerMaxBytes). It reports whether it waited (the
// caller reads again). Every parked fetch woken by one produce request
// would carry that request's records alone; waiting about a
// millisecond lets one answer, and the follower's one append and next
// fetch, carry the requests that arrive meanwhile: fewer round trips,
// system calls and wake-ups per record at a steady load, for at most the
// linger added to an acks=all produce's latency. At a low rate of
// arrivals the fetch parked longer and is answered at once.
func (h *Handlers) followerLinger(ctx context.Context, parked time.Duration, total int64) bool {
	linger := h.Config.ReplicaFetchLinger
	if linger <= 0 || total <= 0 || total >= lingerMaxBytes || parked >= lingerBusyFactor*linger {
		return false
	}
	parkSession(ctx, nil, time.Now().Add(linger))
	return ctx.Err() == nil
}

const (
	// lingerBusyFactor: a follower fetch lingers when it parked for less
	// than this many lingers before records arrived.
	lingerBusyFactor = 8
	// lingerMaxBytes: an answer this large already carries many requests'
	// records; it does not linger.
	lingerMaxBytes = 64 << 10
)

// parkSession waits for a change of a session partition (true), or the
// deadline or the end of ctx (false).
func parkSession(ctx context.Context, wake <-chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
