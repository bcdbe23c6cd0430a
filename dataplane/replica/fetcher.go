package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
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

	mu struct {
		sync.Mutex
		// parts is changed by update; a *fetchState stays the same
		// while its partition keeps its leader epoch.
		parts map[storage.TopicPartition]*fetchState
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
		cn, err := dial(f.ctx, f.addr, f.clientID)
		if err != nil {
			return err
		}
		f.cn = cn
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
		var req *kmsg.FetchRequest
		if len(states) > 0 {
			req, states = f.buildRequest(states)
		}
		if req == nil {
			f.idle(wakeAt)
			continue
		}
		// The leader may hold the fetch for MaxWait before answering.
		resp := kmsg.NewPtrFetchResponse()
		err := f.roundTrip(req, resp, true, f.cfg.MaxWait+requestTimeout)
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
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
		// Appending copies the batches into the log, so the read buffer
		// they alias is free again once this returns.
		f.handleResponse(resp, states)
	}
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
// with the epoch of its last batch; it returns the request (nil if no
// partition can be fetched) and the partitions in it.
func (f *fetcher) buildRequest(states []*fetchState) (*kmsg.FetchRequest, []*fetchState) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.cfg.NodeID
	req.ReplicaState.ID = f.cfg.NodeID
	req.ReplicaState.Epoch = -1
	if f.cfg.BrokerEpoch != nil {
		req.ReplicaState.Epoch = f.cfg.BrokerEpoch()
	}
	req.MaxWaitMillis = int32(f.cfg.MaxWait.Milliseconds())
	req.MinBytes = f.cfg.MinBytes
	req.MaxBytes = f.cfg.MaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // full fetches, no session

	topics := map[string]int{}
	sent := states[:0]
	for _, st := range states {
		offset, lastEpoch, err := st.p.FetchPosition(st.leaderEpoch)
		if err != nil {
			// Metadata moved on; the next Update replaces this state.
			f.retry(st, err)
			continue
		}
		st.fetchOffset = offset
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
		rp.FetchOffset = offset
		rp.LastFetchedEpoch = lastEpoch
		rp.LogStartOffset = st.p.Log().LogStartOffset()
		rp.PartitionMaxBytes = f.cfg.PartitionMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent = append(sent, st)
	}
	if len(sent) == 0 {
		return nil, nil
	}
	return req, sent
}

// handleResponse applies each partition's answer; answers for partitions
// whose fetch state was replaced meanwhile are dropped.
func (f *fetcher) handleResponse(resp *kmsg.FetchResponse, sent []*fetchState) {
	byName := make(map[storage.TopicPartition]*fetchState, len(sent))
	names := map[[16]byte]string{}
	for _, st := range sent {
		byName[st.tp] = st
		names[st.p.TopicID()] = st.tp.Topic
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		name := rt.Topic
		if resp.Version >= 13 {
			name = names[rt.TopicID]
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			st := byName[storage.TopicPartition{Topic: name, Partition: rp.Partition}]
			if st == nil || !f.current(st) {
				continue
			}
			f.handlePartition(st, rp)
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
			if _, err := st.p.AppendAsFollower(st.leaderEpoch, batches); err != nil {
				f.retry(st, err)
				return
			}
		}
		if err := st.p.UpdateFollowerHighWatermark(st.leaderEpoch, rp.HighWatermark); err != nil {
			f.retry(st, err)
			return
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

// retry puts a partition in backoff after a failure, logging the first of
// a streak.
func (f *fetcher) retry(st *fetchState, err error) {
	st.failures++
	d := f.cfg.BackoffInitial << min(st.failures-1, 16)
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
