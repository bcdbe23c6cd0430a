package partition

// ISR changes on the leader (design.md §3). The decisions themselves are
// pure functions in isrrule.go (shrinkISR, expandISR, followerState.fetched)
// and the high watermark rule is in hw.go; this file gathers their input
// under the partition's locks and talks to the controller.
//
// Per follower the leader keeps, from that follower's fetches, its log end
// offset (followerLEO), its broker epoch (Fetch v15+ ReplicaState) and
// lastCaughtUp: the time of the last fetch that reached the leader's log end
// as of that fetch, or of the previous fetch whose leader log end this fetch
// reached.
//
//   - Shrink (Manager's periodic check, every ReplicaLagTimeMax/2): an ISR
//     follower whose log end differs from the leader's and that has not been
//     caught up for ReplicaLagTimeMax leaves the ISR.
//   - Expand (on each follower fetch): a replica outside the ISR joins once
//     its log end >= the high watermark and >= the start offset of the
//     current leader epoch (KAFKA-7128), it is registered and unfenced in the
//     image, and the broker epoch of its fetches is its registration's.
//
// Either change goes to the active controller in an AlterPartition, one in
// flight per partition, carrying the leader epoch, the partition epoch and
// the members' broker epochs (-1 when unknown). The manager's one sender
// (isrsend.go) batches the changes of all partitions: one request at a time
// carries every change due. While it is pending the high
// watermark is computed over the maximal ISR: the committed one plus the
// proposed newcomer (an expansion counts at once; a shrink only once
// committed). min.insync.replicas is checked against the committed ISR.
// The answer's ISR and partition epoch are adopted when they belong to the
// current leader epoch and are newer than ours; an answer naming another
// leader or leader epoch keeps the change pending (adoptISR); a metadata image with a
// newer partition epoch (or another leader epoch) ends the pending change
// too; an image older than the state adopted is ignored for the ISR.
// Errors: FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, UNKNOWN_TOPIC_*,
// NOT_LEADER_OR_FOLLOWER keep the change pending until metadata moves on
// (no retry); INELIGIBLE_REPLICA and INVALID_REQUEST drop it (the next
// fetch or check proposes again, after isrRetryBackoff); anything else is
// retried with backoff.

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// DefaultReplicaLagTimeMax is Kafka's replica.lag.time.max.ms.
const DefaultReplicaLagTimeMax = 30 * time.Second

// AlterPartitionFunc sends an AlterPartition request to the active
// controller (the broker's controller client fills BrokerID and
// BrokerEpoch) and returns its answer.
type AlterPartitionFunc func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error)

const (
	// isrRequestTimeout bounds one AlterPartition attempt.
	isrRequestTimeout = 10 * time.Second
	// isrBackoffInitial/Max bound the retry backoff of a failed attempt.
	isrBackoffInitial = 100 * time.Millisecond
	isrBackoffMax     = 2 * time.Second
	// isrRetryBackoff is how long a dropped (refused) change waits before
	// it is proposed again.
	isrRetryBackoff = 500 * time.Millisecond
)

// isrEnv is what a partition needs from its manager to change its ISR.
type isrEnv struct {
	alter       AlterPartitionFunc // nil: the ISR is never changed here
	brokerEpoch func() int64
	image       func() *image.Image
	lagMax      time.Duration
	// sender batches the partitions' changes into AlterPartition requests;
	// nil exactly when alter is.
	sender *isrSender
	// shrinks and expands count the ISR changes of the replicas led here
	// (countISRChange), for metrics.
	shrinks, expands atomic.Int64
}

// followerState is the leader's view of one follower, under Partition.mu.
type followerState struct {
	brokerEpoch        int64
	lastCaughtUp       time.Time
	lastFetchTime      time.Time
	lastFetchLeaderLEO int64
	// session is the clock of the follower's fetch session when its last
	// read of this partition was caught up (nil otherwise): the session
	// skips the partition while nothing changes, and each of its later
	// fetches is a time the follower was still caught up (SessionClock).
	session *SessionClock
}

// SessionClock is the start time of a fetch session's latest fetch. A
// follower's session re-reads only the partitions that changed (Changes)
// since it last read them: one it skipped had not moved since a read that
// found the follower at the leader's log end, so the follower was caught up
// at that fetch. The leader takes the clock as the caught-up time of the
// partitions whose last read was caught up instead of updating each of
// them on every fetch. Set it after the fetch's reads, before it parks.
type SessionClock struct{ nanos atomic.Int64 }

// Set records t as the session's latest fetch.
func (c *SessionClock) Set(t time.Time) { c.nanos.Store(t.UnixNano()) }

func (c *SessionClock) get() time.Time {
	n := c.nanos.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// caughtUp is the follower's last caught-up time, counting its session's
// latest fetch when the partition's last read was caught up.
func (f *followerState) caughtUp() time.Time {
	if f.session != nil {
		if t := f.session.get(); t.After(f.lastCaughtUp) {
			return t
		}
	}
	return f.lastCaughtUp
}

// fetched is the follower's state after a fetch at now from offset (its
// log end) while the leader's log ended at leaderLEO; brokerEpoch is the
// fetch's (-1 unknown: the last known one stays). The follower is caught
// up as of now when it reached the leader's log end, or as of its previous
// fetch when it reached the log end the leader had then.
func (f followerState) fetched(now time.Time, offset, leaderLEO, brokerEpoch int64) followerState {
	f.lastCaughtUp = f.caughtUp()
	switch {
	case offset >= leaderLEO:
		f.lastCaughtUp = now
	case !f.lastFetchTime.IsZero() && offset >= f.lastFetchLeaderLEO && f.lastFetchTime.After(f.lastCaughtUp):
		f.lastCaughtUp = f.lastFetchTime
	}
	f.lastFetchTime, f.lastFetchLeaderLEO = now, leaderLEO
	if brokerEpoch >= 0 {
		f.brokerEpoch = brokerEpoch
	}
	return f
}

// pendingISR is an ISR change sent (or being sent) to the controller.
type pendingISR struct {
	leaderEpoch    int32
	partitionEpoch int32 // the epoch the change is based on
	proposed       []int32
	epochs         []int64 // broker epochs of proposed, -1 unknown
	maximal        []int32 // the ISR the high watermark is computed over
	shrink         bool
}

// isrState is the partition's ISR-change state, under Partition.mu.
type isrState struct {
	followers  map[int32]*followerState
	pending    *pendingISR
	retryAfter time.Time
}

// maximalISRLocked is the ISR the high watermark counts. Caller holds roleMu
// and mu.
func (p *Partition) maximalISRLocked() []int32 {
	if pc := p.mu.isr.pending; pc != nil {
		return pc.maximal
	}
	return p.isr
}

// followerLocked returns the state of follower r, created (caught up now)
// if it has none. Caller holds mu.
func (p *Partition) followerLocked(r int32, now time.Time) *followerState {
	if p.mu.isr.followers == nil {
		p.mu.isr.followers = map[int32]*followerState{}
	}
	f := p.mu.isr.followers[r]
	if f == nil {
		f = &followerState{brokerEpoch: -1, lastCaughtUp: now}
		p.mu.isr.followers[r] = f
	}
	return f
}

// resetFollowersLocked starts a new leader epoch: no follower has reported,
// ISR members count as caught up now, no change is pending. Caller holds
// roleMu for writing and mu.
func (p *Partition) resetFollowersLocked(now time.Time) {
	clear(p.mu.isr.followers)
	p.mu.isr.pending = nil
	p.mu.isr.retryAfter = time.Time{}
	for _, r := range p.isr {
		if r != p.nodeID {
			p.followerLocked(r, now)
		}
	}
}

// reconcilePendingLocked drops a pending change that metadata has moved
// past. Caller holds roleMu for writing and mu.
func (p *Partition) reconcilePendingLocked() {
	pc := p.mu.isr.pending
	if pc == nil {
		return
	}
	if p.role != RoleLeader || p.leaderEpoch != pc.leaderEpoch || p.partitionEpoch > pc.partitionEpoch {
		p.mu.isr.pending = nil
	}
}

// UpdateFollowerFetchEpoch is UpdateFollowerFetch with the follower's broker
// epoch (Fetch v15+ ReplicaState.ReplicaEpoch; -1 unknown). It also updates
// the follower's caught-up time and may start an ISR expansion.
func (p *Partition) UpdateFollowerFetchEpoch(replica int32, brokerEpoch, offset int64) error {
	_, err := p.UpdateFollowerFetchSession(replica, brokerEpoch, offset, -1, nil)
	return err
}

// UpdateFollowerFetchSession is UpdateFollowerFetchEpoch for a fetch of a
// fetch session whose clock is session (nil: sessionless): when the fetch
// reaches the leader's log end, the session's later fetches count as
// caught-up times until the next read of this partition (SessionClock).
// inISR says whether the follower is in the committed ISR: a session must
// keep reading the partitions of a follower outside it on every fetch, as
// its expansion may need another try (the follower unfenced, a refused
// change's backoff over) without the partition changing.
func (p *Partition) UpdateFollowerFetchSession(replica int32, brokerEpoch, offset, logStart int64, session *SessionClock) (inISR bool, err error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return false, ErrNotLeaderOrFollower
	}
	if replica == p.nodeID || !slices.Contains(p.replicas, replica) {
		return true, nil
	}
	now := p.now()
	leo := p.log.LogEndOffset()
	p.mu.Lock()
	f := p.followerLocked(replica, now)
	*f = f.fetched(now, offset, leo, brokerEpoch)
	f.session = nil
	if offset >= leo {
		f.session = session
	}
	if p.mu.followerLEO[replica] != offset {
		p.mu.followerLEO[replica] = offset
		if p.advanceHighWatermarkLocked() {
			p.notifyLocked(EventHighWatermark)
		}
	}
	p.recordFollowerLogStartLocked(replica, logStart)
	pc := p.expansionLocked(replica, now)
	p.mu.Unlock()
	if pc != nil {
		p.startISRChange(pc)
	}
	return slices.Contains(p.isr, replica), nil
}

// isrViewLocked is the leader's view for the ISR decisions (isrrule.go).
// Caller holds roleMu and mu.
func (p *Partition) isrViewLocked(now time.Time, leo int64) isrView {
	return isrView{
		Now: now, LocalID: p.nodeID, Replicas: p.replicas, ISR: p.isr,
		Followers: p.mu.isr.followers, FollowerLEO: p.mu.followerLEO,
		LeaderLEO: leo, HighWatermark: p.mu.highWatermark, LeaderEpochStartOffset: p.leaderEpochStartOffset,
		LagMax: p.env.lagMax, Pending: p.mu.isr.pending != nil, RetryAfter: p.mu.isr.retryAfter,
	}
}

// pendingLocked records proposal as the pending change and returns it.
// Caller holds roleMu and mu.
func (p *Partition) pendingLocked(pr *isrProposal) *pendingISR {
	pc := &pendingISR{leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, shrink: pr.Shrink,
		proposed: pr.Proposed, maximal: pr.Maximal, epochs: p.memberEpochsLocked(pr.Proposed)}
	p.mu.isr.pending = pc
	return pc
}

// expansionLocked returns the change adding replica to the ISR when it may
// join now (expandISR), and records it as pending. Caller holds roleMu and
// mu.
func (p *Partition) expansionLocked(replica int32, now time.Time) *pendingISR {
	env := p.env
	if env == nil || env.alter == nil || p.mu.isr.pending != nil || slices.Contains(p.isr, replica) {
		return nil // the cheap refusals, before the image is looked up
	}
	v := p.isrViewLocked(now, p.log.LogEndOffset())
	v.Brokers = env.image().Brokers
	pr := expandISR(v, replica)
	if pr == nil {
		return nil
	}
	pc := p.pendingLocked(pr)
	p.logger.Info("ISR expansion proposed", "follower", replica, "follower_leo", p.mu.followerLEO[replica],
		"hw", p.mu.highWatermark, "leader_epoch_start_offset", p.leaderEpochStartOffset, "isr", p.isr,
		"proposed_isr", pr.Proposed, "leader_epoch", p.leaderEpoch, "partition_epoch", p.partitionEpoch)
	return pc
}

// memberEpochsLocked is the broker epochs of an ISR: this broker's current
// registration, the followers' from their fetches (-1 unknown).
func (p *Partition) memberEpochsLocked(isr []int32) []int64 {
	out := make([]int64, len(isr))
	for i, r := range isr {
		out[i] = -1
		switch {
		case r == p.nodeID:
			if p.env.brokerEpoch != nil {
				out[i] = p.env.brokerEpoch()
			}
		case p.mu.isr.followers[r] != nil:
			out[i] = p.mu.isr.followers[r].brokerEpoch
		}
	}
	return out
}

// shrinkProposal records and returns the change dropping the ISR
// followers that are out of sync (log end not the leader's and not caught
// up for the lag limit), nil when none is due. Nothing is allocated when
// no change is due.
func (p *Partition) shrinkProposal() *pendingISR {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	env := p.env
	if p.role != RoleLeader || env == nil || env.alter == nil {
		return nil
	}
	now := p.now()
	leo := p.log.LogEndOffset()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.isr.pending != nil || now.Before(p.mu.isr.retryAfter) {
		return nil
	}
	// Every ISR follower has a caught-up time from here on: one that had
	// none counts from this check.
	for _, r := range p.isr {
		if r != p.nodeID {
			p.followerLocked(r, now)
		}
	}
	pr := shrinkISR(p.isrViewLocked(now, leo))
	if pr == nil {
		return nil
	}
	pc := p.pendingLocked(pr)
	lags := make([]string, len(pr.OutOfSync))
	for i, r := range pr.OutOfSync {
		lags[i] = now.Sub(p.mu.isr.followers[r].caughtUp()).Round(time.Millisecond).String()
	}
	p.logger.Info("ISR shrink proposed: followers out of sync", "out_of_sync", pr.OutOfSync, "not_caught_up_for", lags,
		"leader_leo", leo, "isr", p.isr, "proposed_isr", pr.Proposed, "replica_lag_time_max", env.lagMax,
		"leader_epoch", p.leaderEpoch, "partition_epoch", p.partitionEpoch)
	return pc
}

// PendingISR returns the ISR change in flight (nil when none).
func (p *Partition) PendingISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc := p.mu.isr.pending; pc != nil {
		return slices.Clone(pc.proposed)
	}
	return nil
}

// startISRChange hands pc to the manager's AlterPartition sender
// (isrsend.go), which sends it in its next request.
func (p *Partition) startISRChange(pc *pendingISR) {
	p.env.sender.enqueue(isrChange{p, pc})
}

// stillPending says whether pc is the partition's pending change.
func (p *Partition) stillPending(pc *pendingISR) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.isr.pending == pc
}

// handleISRAnswer applies the controller's answer rp to pc (nil: the
// response did not name the partition) and reports whether it is final
// (false: retry after the backoff).
func (p *Partition) handleISRAnswer(pc *pendingISR, rp *kmsg.AlterPartitionResponseTopicPartition) bool {
	if rp == nil {
		p.logger.Warn("ISR change answer does not name the partition; retrying")
		return false
	}
	switch err := kerr.ErrorForCode(rp.ErrorCode); err {
	case nil:
		p.adoptISR(pc, rp)
		return true
	case kerr.FencedLeaderEpoch, kerr.InvalidUpdateVersion, kerr.UnknownTopicID, kerr.UnknownTopicOrPartition,
		kerr.NotLeaderForPartition:
		// Our metadata is behind: the next image ends the change.
		p.logger.Info("ISR change refused: waiting for metadata", "proposed_isr", pc.proposed, "error", err,
			"leader_epoch", pc.leaderEpoch, "partition_epoch", pc.partitionEpoch)
		return true
	case kerr.IneligibleReplica, kerr.InvalidRequest:
		p.logger.Info("ISR change refused: keeping the committed ISR", "proposed_isr", pc.proposed, "error", err)
		p.mu.Lock()
		if p.mu.isr.pending == pc {
			p.mu.isr.pending = nil
			p.mu.isr.retryAfter = p.now().Add(isrRetryBackoff)
		}
		p.notifyLocked(EventOther)
		p.mu.Unlock()
		return true
	default:
		p.logger.Debug("ISR change failed; retrying", "proposed_isr", pc.proposed, "error", err)
		return false
	}
}

// adoptISR takes the controller's answer as the committed state, unless
// it is stale (not newer than ours). An answer that moves leadership (another
// leader or leader epoch: the controller completed a reassignment in the
// same change) is not adopted and leaves the change pending: until metadata
// tells this broker it no longer leads, it may still take writes, and the
// high watermark must keep counting the maximal ISR, or it would commit
// records the new leader (the newcomer of the expansion) does not have.
func (p *Partition) adoptISR(pc *pendingISR, rp *kmsg.AlterPartitionResponseTopicPartition) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if rp.LeaderID != p.nodeID || rp.LeaderEpoch != pc.leaderEpoch {
		p.logger.Info("ISR change committed with a new leader: waiting for metadata", "proposed_isr", pc.proposed,
			"isr", rp.ISR, "leader", rp.LeaderID, "leader_epoch", rp.LeaderEpoch, "partition_epoch", rp.PartitionEpoch)
		return
	}
	if p.mu.isr.pending == pc {
		p.mu.isr.pending = nil
	}
	if p.role == RoleLeader && rp.LeaderID == p.nodeID && rp.LeaderEpoch == p.leaderEpoch && rp.PartitionEpoch > p.partitionEpoch {
		old := p.isr
		p.isr = slices.Clone(rp.ISR)
		p.countISRChange(old, p.isr)
		p.partitionEpoch = rp.PartitionEpoch
		if invariantsEnabled {
			assertInvariant(checkISR(p.nodeID, p.isr, p.replicas))
		}
		now := p.now()
		for _, r := range p.isr {
			if r != p.nodeID {
				p.followerLocked(r, now)
			}
		}
		p.logger.Info("ISR changed", "previous_isr", old, "isr", p.isr, "leader_epoch", p.leaderEpoch,
			"partition_epoch", p.partitionEpoch)
	}
	p.advanceHighWatermarkLocked()
	p.notifyLocked(EventOther)
}

// runISRChecks runs the periodic shrink check over every replica until ctx
// ends, every lagMax/2 as Kafka does.
func (m *Manager) runISRChecks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.checkISRs()
		}
	}
}

// checkISRs proposes ISR shrinks where followers are out of sync, in one
// pass over every hosted replica; the shrinks it finds go to the sender
// together, so one AlterPartition carries them all. An idle pass (nothing
// to shrink) allocates nothing.
func (m *Manager) checkISRs() {
	var due []isrChange
	m.current.Load().each(func(p *Partition) {
		if pc := p.shrinkProposal(); pc != nil {
			due = append(due, isrChange{p, pc})
		}
	})
	if len(due) > 0 {
		m.isr.sender.enqueue(due...)
	}
}
