package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
)

// fetcher replicates every partition this broker follows from one leader
// broker, over one connection, in one goroutine.
type fetcher struct {
	cfg      Config
	leaderID int32
	addr     string
	log      hclog.Logger
	clientID string
	// cn is the connection to the leader, owned by the loop goroutine;
	// nil until dialed and after a failure (the next attempt redials).
	cn *conn

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// kick wakes an idle loop when the partitions change.
	kick chan struct{}
	// sess is the fetch session (KIP-227) with the leader, and gen counts
	// requests built; both owned by the loop goroutine.
	sess session
	gen  uint64
	// sessGen counts the sessions started (full fetches); reshaped says a
	// partition may have left the fetch since the last request (Update, a
	// backoff), so the next one looks for partitions to forget.
	sessGen  uint64
	reshaped bool

	mu struct {
		sync.Mutex
		// parts is changed by update; a *fetchState stays the same
		// while its partition keeps its leader epoch.
		parts map[storage.TopicPartition]*fetchState
		// reshaped: update ran since the loop last looked.
		reshaped bool
	}
}

// fetchState is one partition being fetched under one leader epoch. The
// fields after leaderEpoch are owned by the fetcher goroutine.
type fetchState struct {
	tp          storage.TopicPartition
	p           *partition.Partition
	leaderEpoch int32

	fetchOffset int64     // offset of the request in flight
	retryAt     time.Time // zero: fetch now
	failures    int       // consecutive failures (backoff exponent)

	// The fetch position (FetchPosition) as of the partition's change
	// count posChanges; recomputed only when the partition changed.
	posKnown   bool
	posChanges uint64
	// gen is the fetcher's gen of the last request that fetched it;
	// inSession the fetcher's sessGen when the leader's session got it with
	// sentOffset, sentLastEpoch and sentLogStart (0: not in the session).
	gen           uint64
	inSession     uint64
	sentOffset    int64
	sentLastEpoch int32
	sentLogStart  int64
	lastEpoch     int32
	logStart      int64
	// caughtUp: the last answer's batches brought the log end to the
	// leader's high watermark (Kafka's "in sync" for the follower-side
	// replication throttle, which never holds back such a partition).
	caughtUp bool
	// lag is how many records the log end was behind the leader's high
	// watermark after the last answer (metrics read it: atomic).
	lag atomic.Int64
}

// session is the follower's side of a fetch session: its id and the epoch
// of the next request (0: a full fetch that creates a session), and what
// the leader's session holds, as of the last answered request. A full
// fetch answered with session id 0 leaves the follower sessionless: every
// fetch is then a full one.
type session struct {
	id    int32
	epoch int32
	// parts is every partition in the leader's session, by name, with the
	// fetch parameters last sent; names maps topic ids to names.
	parts map[storage.TopicPartition]sessionPart
	names map[[16]byte]string
}

// sessionPart is a partition of the session; the parameters the leader
// has for it are its fetch state's sentOffset and sentLastEpoch.
type sessionPart struct {
	st *fetchState
}

// reset starts over: the next fetch is a full one creating a new session.
func (s *session) reset() { *s = session{} }

// isSessionError says whether a Fetch error code means the session is gone
// or out of step (start over with a full fetch at once).
func isSessionError(code int16) bool {
	return code == kerr.FetchSessionIDNotFound.Code || code == kerr.InvalidFetchSessionEpoch.Code ||
		code == kerr.FetchSessionTopicIDError.Code
}

func newFetcher(cfg Config, leaderID int32, addr string) (*fetcher, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, err
	}
	f := &fetcher{
		cfg: cfg, leaderID: leaderID, addr: addr,
		clientID: "skein-replica-fetcher-" + strconv.Itoa(int(cfg.NodeID)),
		log:      cfg.Logger.With("leader", leaderID),
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.mu.parts = map[storage.TopicPartition]*fetchState{}
	return f, nil
}

func (f *fetcher) start() { go f.run() }

// stop ends the loop and waits for it; the loop closes the connection.
func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

// roundTrip sends req on the connection to the leader, dialing it first
// when there is none, and decodes the answer into resp; on any failure the
// connection is closed (the next call redials). With unsafe the decoded
// response aliases the connection's read buffer until the next round trip.
func (f *fetcher) roundTrip(req kmsg.Request, resp kmsg.Response, unsafe bool, timeout time.Duration) error {
	if f.cn == nil {
		cn, err := dial(f.ctx, f.addr, f.clientID, f.cfg.Dial, f.cfg.SASL)
		if err != nil {
			return err
		}
		f.cn = cn
	}
	if err := f.cn.reauthenticateIfDue(f.ctx); err != nil {
		f.closeConn()
		return err
	}
	if err := f.cn.request(req, resp, unsafe, timeout); err != nil {
		f.closeConn()
		return err
	}
	return nil
}

func (f *fetcher) closeConn() {
	if f.cn != nil {
		f.cn.close()
		f.cn = nil
	}
}

// update adds or replaces the partitions in set and drops those in
// removed, and returns how many partitions the fetcher has left. A
// partition in set keeps its fetch state only when it is the same replica
// under the same leader epoch.
func (f *fetcher) update(set map[storage.TopicPartition]partition.Follower, removed []storage.TopicPartition) int {
	f.mu.Lock()
	for _, tp := range removed {
		delete(f.mu.parts, tp)
	}
	for tp, fl := range set {
		if old := f.mu.parts[tp]; old != nil && old.p == fl.Partition && old.leaderEpoch == fl.LeaderEpoch {
			continue
		}
		f.mu.parts[tp] = &fetchState{tp: tp, p: fl.Partition, leaderEpoch: fl.LeaderEpoch}
		f.log.Info("following partition", "topic", tp.Topic, "partition", tp.Partition, "leader_epoch", fl.LeaderEpoch)
	}
	f.mu.reshaped = true
	n := len(f.mu.parts)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	return n
}

// followers returns the partitions fetched, as Followers of this
// fetcher's leader.
func (f *fetcher) followers() map[storage.TopicPartition]partition.Follower {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[storage.TopicPartition]partition.Follower, len(f.mu.parts))
	for tp, st := range f.mu.parts {
		out[tp] = partition.Follower{Partition: st.p, LeaderID: f.leaderID, LeaderEpoch: st.leaderEpoch, LeaderAddr: f.addr}
	}
	return out
}

// stats returns how many partitions the fetcher follows and the largest
// lag among them.
func (f *fetcher) stats() (partitions int, maxLag int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range f.mu.parts {
		maxLag = max(maxLag, st.lag.Load())
	}
	return len(f.mu.parts), maxLag
}

// current says whether st is still the partition's fetch state.
func (f *fetcher) current(st *fetchState) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.parts[st.tp] == st
}

// ready returns the partitions to fetch now, and when the next one in
// backoff becomes ready (zero: none).
func (f *fetcher) ready(now time.Time) ([]*fetchState, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reshaped = f.reshaped || f.mu.reshaped
	f.mu.reshaped = false
	var out []*fetchState
	var next time.Time
	for _, st := range f.mu.parts {
		if st.retryAt.After(now) {
			if next.IsZero() || st.retryAt.Before(next) {
				next = st.retryAt
			}
			continue
		}
		out = append(out, st)
	}
	return out, next
}

func (f *fetcher) run() {
	defer close(f.done)
	defer f.closeConn()
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(f.cfg.BackoffInitial),
		backoff.WithMaxInterval(f.cfg.BackoffMax),
		backoff.WithMaxElapsedTime(0),
	)
	failing := false
	for f.ctx.Err() == nil {
		states, wakeAt := f.ready(time.Now())
		backoffEnd := wakeAt
		var req *kmsg.FetchRequest
		if len(states) > 0 {
			var heldUntil time.Time
			req, heldUntil = f.buildRequest(states)
			if !heldUntil.IsZero() && (wakeAt.IsZero() || heldUntil.Before(wakeAt)) {
				wakeAt = heldUntil
			}
		}
		if req == nil {
			f.idle(wakeAt)
			continue
		}
		// The leader may hold the fetch for MaxWait before answering, but
		// not past the end of a partition's backoff: it then joins the
		// fetch.
		req.MaxWaitMillis = maxWaitMillis(f.cfg.MaxWait, backoffEnd, time.Now())
		resp := kmsg.NewPtrFetchResponse()
		err := f.roundTrip(req, resp, true, f.cfg.MaxWait+requestTimeout)
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
			if isSessionError(resp.ErrorCode) && f.sess.id != 0 {
				// The leader lost or refused the session (restart,
				// eviction): start over with a full fetch now.
				f.log.Info("fetch session lost; starting a new one", "session_id", f.sess.id, "error", err)
				f.sess.reset()
				continue
			}
		}
		if err != nil {
			// The next connection starts a new session.
			f.sess.reset()
			if f.ctx.Err() != nil {
				return
			}
			if !failing {
				f.log.Warn("fetch from leader failed; retrying with backoff", "address", f.addr, "error", err)
				failing = true
			}
			_ = sleep(f.ctx, bo.NextBackOff())
			continue
		}
		if failing {
			f.log.Info("fetch from leader recovered", "address", f.addr)
			failing = false
		}
		bo.Reset()
		f.answered(req, resp.SessionID)
		// Appending copies the batches into the log, so the read buffer
		// they alias is free again once this returns.
		f.handleResponse(resp)
	}
}

// maxWaitMillis is a fetch's MaxWaitMillis sent at now: maxWait, or less
// when a partition's backoff ends sooner (backoffEnd; zero: none in
// backoff), so that it is fetched again then rather than after a fetch
// parked at the leader for maxWait (at least 1 ms: the fetch still
// parks).
func maxWaitMillis(maxWait time.Duration, backoffEnd, now time.Time) int32 {
	if !backoffEnd.IsZero() {
		// Rounded up to whole ms: not before the backoff ends.
		maxWait = min(maxWait, (backoffEnd.Sub(now) + time.Millisecond - 1).Truncate(time.Millisecond))
	}
	return int32(max(maxWait.Milliseconds(), 1))
}

// answered moves the session on after the leader answered req without
// error, with sessionID: a full fetch starts the session it names (0:
// none, the next fetch is full again), an incremental one moves the epoch.
func (f *fetcher) answered(req *kmsg.FetchRequest, sessionID int32) {
	if req.SessionEpoch > 0 {
		f.sess.epoch = nextEpoch(req.SessionEpoch)
		return
	}
	if sessionID != f.sess.id {
		f.log.Debug("fetch session started", "session_id", sessionID, "partitions", len(f.sess.parts))
	}
	f.sess.id, f.sess.epoch = sessionID, 0 // sessionless: full fetches
	if sessionID != 0 {
		f.sess.epoch = 1
	}
}

// nextEpoch is the session epoch after e (wrapping to 1, KIP-227).
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// idle waits for a partition change, the end of the earliest backoff
// (wakeAt; zero: none), or stop.
func (f *fetcher) idle(wakeAt time.Time) {
	var timer <-chan time.Time
	if !wakeAt.IsZero() {
		t := time.NewTimer(max(time.Until(wakeAt), 0))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-f.kick:
	case <-timer:
	case <-f.ctx.Done():
	}
}

// buildRequest makes one Fetch for the partitions, each from its log end
// with the epoch of its last batch (nil if no partition can be fetched),
// and updates f.sess to what the leader's session holds once it answers
// (a failed fetch resets the session). A full fetch (no session yet, or
// sessionless) names every partition; an incremental one names only the
// partitions new to the session or whose position moved (a new leader
// epoch is a new fetch state, so new to the session), and forgets those no
// longer fetched (left, or in backoff after a failure). An idle partition
// costs one look at its change count.
//
// Replication throttle (KIP-73, Config.Throttle): while the follower quota
// is exceeded, a throttled partition that is not caught up is left out
// (and so forgotten by the leader's session, as Kafka's fetcher does);
// heldUntil is then when the quota has room again (zero: nothing held, or
// never). When every partition is held back no request is made, and the
// session stays as it is.
func (f *fetcher) buildRequest(states []*fetchState) (req *kmsg.FetchRequest, heldUntil time.Time) {
	req = kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.cfg.NodeID
	req.ReplicaState.ID = f.cfg.NodeID
	req.ReplicaState.Epoch = -1
	if f.cfg.BrokerEpoch != nil {
		req.ReplicaState.Epoch = f.cfg.BrokerEpoch()
	}
	req.MaxWaitMillis = int32(f.cfg.MaxWait.Milliseconds())
	req.MinBytes = f.cfg.MinBytes
	req.MaxBytes = f.cfg.MaxBytes
	req.SessionID, req.SessionEpoch = f.sess.id, f.sess.epoch
	if f.cfg.NoFetchSessions {
		req.SessionID, req.SessionEpoch = 0, -1
	}
	full := req.SessionEpoch <= 0
	if full || f.sess.parts == nil {
		f.sess.parts = make(map[storage.TopicPartition]sessionPart, len(states))
		f.sess.names = map[[16]byte]string{}
		f.sessGen++
	}
	f.gen++
	topics := map[string]int{}
	fetched, held := 0, 0
	for _, st := range states {
		if err := f.position(st); err != nil {
			// Metadata moved on; the next Update replaces this state.
			f.retry(st, err)
			continue
		}
		if f.holdBack(st) {
			held++
			f.reshaped = true // it leaves the leader's session
			continue
		}
		fetched++
		st.gen = f.gen
		if !full && st.inSession == f.sessGen && st.sentOffset == st.fetchOffset && st.sentLastEpoch == st.lastEpoch && st.sentLogStart == st.logStart {
			continue // the leader's session has it as it is
		}
		st.inSession, st.sentOffset, st.sentLastEpoch, st.sentLogStart = f.sessGen, st.fetchOffset, st.lastEpoch, st.logStart
		f.sess.parts[st.tp] = sessionPart{st: st}
		f.sess.names[st.p.TopicID()] = st.tp.Topic
		i, ok := topics[st.tp.Topic]
		if !ok {
			i = len(req.Topics)
			topics[st.tp.Topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = st.tp.Topic, st.p.TopicID()
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = st.tp.Partition
		rp.CurrentLeaderEpoch = st.leaderEpoch
		rp.FetchOffset = st.fetchOffset
		rp.LastFetchedEpoch = st.lastEpoch
		rp.LogStartOffset = st.logStart
		rp.PartitionMaxBytes = f.cfg.PartitionMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if held > 0 {
		if at, ok := f.cfg.Throttle.ReadyAt(); ok {
			heldUntil = at
		}
	}
	if fetched == 0 {
		if held == 0 {
			f.sess.reset()
		}
		return nil, heldUntil
	}
	// Only a change of the partitions (Update, a backoff) can leave
	// partitions in the session that this fetch does not cover.
	if f.reshaped || full {
		f.reshaped = false
		forgotten := map[string]int{}
		for tp, sp := range f.sess.parts {
			if sp.st.gen == f.gen {
				continue
			}
			delete(f.sess.parts, tp)
			if sp.st.inSession == f.sessGen {
				sp.st.inSession = 0
			}
			if full {
				continue
			}
			i, ok := forgotten[tp.Topic]
			if !ok {
				i = len(req.ForgottenTopics)
				forgotten[tp.Topic] = i
				ft := kmsg.NewFetchRequestForgottenTopic()
				ft.Topic, ft.TopicID = tp.Topic, sp.st.p.TopicID()
				req.ForgottenTopics = append(req.ForgottenTopics, ft)
			}
			req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, tp.Partition)
		}
	}
	return req, heldUntil
}

// holdBack says whether the follower-side replication throttle holds st
// back from this fetch: throttled here, not caught up, quota exceeded.
func (f *fetcher) holdBack(st *fetchState) bool {
	q := f.cfg.Throttle
	return !st.caughtUp && q.Throttled(st.tp.Topic, st.tp.Partition) && q.Exceeded()
}

// position refreshes st's fetch position when the partition changed since
// it was last read (appends, truncations and role changes all count).
func (f *fetcher) position(st *fetchState) error {
	changes := st.p.Changes()
	if st.posKnown && changes == st.posChanges {
		return nil
	}
	offset, lastEpoch, err := st.p.FetchPosition(st.leaderEpoch)
	if err != nil {
		st.posKnown = false
		return err
	}
	st.posKnown, st.posChanges = true, changes
	st.fetchOffset, st.lastEpoch = offset, lastEpoch
	st.logStart = st.p.Log().LogStartOffset()
	return nil
}

// handleResponse applies each partition's answer; answers for partitions
// whose fetch state was replaced meanwhile are dropped. An incremental
// answer holds only the partitions that changed.
func (f *fetcher) handleResponse(resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		name := rt.Topic
		if resp.Version >= 13 {
			name = f.sess.names[rt.TopicID]
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp, ok := f.sess.parts[storage.TopicPartition{Topic: name, Partition: rp.Partition}]
			if !ok || !f.current(sp.st) {
				continue
			}
			f.handlePartition(sp.st, rp)
		}
	}
}

// handlePartition applies one partition's answer: truncation on a
// diverging epoch, or the batches and then the leader's high watermark.
//
// The leader's high watermark is applied only from an answer without a
// diverging epoch: the leader checked this fetch's offset and last epoch
// against its history, so the log matches the leader's up to the fetch
// offset, and the appended batches are the leader's own. After a
// truncation the log may still hold records the leader does not have
// (the follower did not know the diverging epoch and truncated to an
// intermediate point; the next fetch truncates further), so that answer's
// high watermark is not applied: the truncation has only capped the high
// watermark at the new log end, and the next answer that confirms the log
// raises it (defect 6 of issue 10).
func (f *fetcher) handlePartition(st *fetchState, rp *kmsg.FetchResponseTopicPartition) {
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		if err := f.handleOutOfRange(st, rp.LogStartOffset); err != nil {
			f.retry(st, err)
		}
		return
	default:
		f.retry(st, kerr.ErrorForCode(rp.ErrorCode))
		return
	}
	if d := rp.DivergingEpoch; d.Epoch >= 0 || d.EndOffset >= 0 {
		if _, err := st.p.TruncateAsFollower(st.leaderEpoch, partition.DivergingEpoch{Epoch: d.Epoch, EndOffset: d.EndOffset}); err != nil {
			f.retry(st, err)
			return
		}
	} else {
		if batches := wholeBatches(rp.RecordBatches, st.fetchOffset); len(batches) > 0 {
			if _, err := st.p.AppendAsFollowerFrom(st.leaderEpoch, batches, wire.LeaderSegmentBase(&rp.UnknownTags)); err != nil {
				f.retry(st, err)
				return
			}
			if q := f.cfg.Throttle; q.Throttled(st.tp.Topic, st.tp.Partition) {
				q.Record(int64(len(batches)))
			}
		}
		leo := st.p.Log().LogEndOffset()
		st.caughtUp = leo >= rp.HighWatermark
		st.lag.Store(max(rp.HighWatermark-leo, 0))
		if err := st.p.UpdateFollowerHighWatermark(st.leaderEpoch, rp.HighWatermark); err != nil {
			f.retry(st, err)
			return
		}
		// Records the leader deleted (DeleteRecords) go here too; the
		// next fetch reports the new start (DeleteRecords' low
		// watermark).
		if rp.LogStartOffset > st.logStart {
			if err := st.p.TakeLeaderLogStart(st.leaderEpoch, rp.LogStartOffset); err != nil {
				f.retry(st, err)
				return
			}
			st.logStart = st.p.Log().LogStartOffset()
		}
	}
	if st.failures > 0 {
		f.log.Info("partition fetch recovered", "topic", st.tp.Topic, "partition", st.tp.Partition)
	}
	st.failures, st.retryAt = 0, time.Time{}
}

// handleOutOfRange handles OFFSET_OUT_OF_RANGE: below the leader's log
// start (retention removed what this replica still needed) the log
// restarts empty at the leader's log start; above the leader's log end
// (possible only after an unclean election: the divergence check catches
// every other case) it truncates to the leader's log end.
func (f *fetcher) handleOutOfRange(st *fetchState, leaderLogStart int64) error {
	if leaderLogStart >= 0 && st.fetchOffset < leaderLogStart {
		return st.p.RestartAt(st.leaderEpoch, leaderLogStart)
	}
	end, err := f.leaderLogEnd(st)
	if err != nil {
		return err
	}
	if end < st.fetchOffset {
		_, err = st.p.TruncateAsFollower(st.leaderEpoch, partition.DivergingEpoch{Epoch: -1, EndOffset: end})
		return err
	}
	return nil
}

// leaderLogEnd asks the leader for its log end offset (ListOffsets latest
// with this broker's replica id).
func (f *fetcher) leaderLogEnd(st *fetchState) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = f.cfg.NodeID
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = st.tp.Topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.CurrentLeaderEpoch, p.Timestamp = st.tp.Partition, st.leaderEpoch, -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrListOffsetsResponse()
	if err := f.roundTrip(req, resp, false, requestTimeout); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("list offsets: malformed answer")
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return 0, fmt.Errorf("list offsets: %w", kerr.ErrorForCode(rp.ErrorCode))
	}
	return rp.Offset, nil
}

// leaderBehindBackoff is the first backoff of a partition whose leader
// answered that its metadata is behind this follower's (leaderBehind),
// when it is below BackoffInitial.
const leaderBehindBackoff = 5 * time.Millisecond

// leaderBehind says whether a partition's fetch error means the leader has
// not yet applied the metadata this follower has: it does not know the
// topic or partition, does not lead it yet, or leads it at an older
// epoch. Both learn metadata from the controllers at about the same time,
// so the leader usually catches up within ms (a new partition, a leader
// change).
func leaderBehind(err error) bool {
	return errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.UnknownLeaderEpoch)
}

// retry puts a partition in backoff after a failure, logging the first of
// a streak. The backoff starts at BackoffInitial, or leaderBehindBackoff
// when the leader's metadata is behind (the partition is fetched again as
// soon as it ends, see maxWaitMillis).
func (f *fetcher) retry(st *fetchState, err error) {
	st.posKnown = false
	f.reshaped = true
	st.failures++
	initial := f.cfg.BackoffInitial
	if leaderBehind(err) {
		initial = min(initial, leaderBehindBackoff)
	}
	d := initial << min(st.failures-1, 16)
	st.retryAt = time.Now().Add(min(d, f.cfg.BackoffMax))
	if st.failures == 1 {
		f.log.Info("partition fetch failed; retrying with backoff", "topic", st.tp.Topic, "partition", st.tp.Partition,
			"leader_epoch", st.leaderEpoch, "error", err)
	}
}

// wholeBatches returns the whole batches of b that end at or after from,
// dropping a trailing partial batch (a leader may cut the last one at the
// size limit).
func wholeBatches(b []byte, from int64) []byte {
	start, end := -1, 0
	for pos := 0; pos < len(b); {
		h, err := storage.ParseBatchHeader(b[pos:])
		if err != nil || h.Size() > int64(len(b)-pos) {
			break
		}
		if start < 0 && h.LastOffset() >= from {
			start = pos
		}
		pos += int(h.Size())
		end = pos
	}
	if start < 0 {
		return nil
	}
	return b[start:end]
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
