package partition

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// Role is a replica's role, set by metadata.
type Role int8

// Roles.
const (
	// RoleNone: not (or no longer) assigned here; every request is refused.
	RoleNone Role = iota
	RoleLeader
	RoleFollower
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	default:
		return "none"
	}
}

// Partition is one replica hosted on this broker.
type Partition struct {
	tp      storage.TopicPartition
	topicID [16]byte
	nodeID  int32
	log     *storage.Log
	logger  hclog.Logger
	now     func() time.Time

	// roleMu guards the role fields below. Appends hold it for reading
	// across the storage append; role changes hold it for writing.
	roleMu         sync.RWMutex
	role           Role
	leaderID       int32 // -1: offline
	leaderEpoch    int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32
	settings       TopicSettings
	logConfig      storage.LogConfig
	// leaderEpochStartOffset is the log end offset when this replica became
	// leader at leaderEpoch (followers joining the ISR must reach it).
	leaderEpochStartOffset int64
	// env is the manager's ISR-change plumbing (isr.go); set at creation.
	env *isrEnv
	// changes counts notifyLocked calls (Changes).
	changes atomic.Uint64
	// followers is the manager's follower state (followerwait.go); set at
	// creation. awaited: mu.awaiting is not empty.
	followers *followerWaits
	awaited   atomic.Bool
	// traffic counts the bytes and records through this replica, shared
	// by the topic's replicas (stats.go); set at creation.
	traffic *Traffic
	// txnVerifier is the manager's KIP-890 hook cell (txn.go); set at
	// creation, nil in tests that build a bare partition.
	txnVerifier *txnVerifierRef

	// mu is taken after roleMu when both are needed.
	mu struct {
		sync.Mutex
		// highWatermark: LogStartOffset <= highWatermark <= LogEndOffset;
		// only moves forward.
		highWatermark int64
		// followerLEO holds each follower's log end offset as reported by
		// its fetches; reset on every new leader epoch.
		followerLEO map[int32]int64
		// followerLogStart holds each follower's log start offset as
		// reported by its fetches (for DeleteRecords' low watermark);
		// reset on every new leader epoch.
		followerLogStart map[int32]int64
		waiters          map[chan struct{}]Event
		// isr: follower caught-up times, the pending ISR change (isr.go).
		isr isrState
		// awaiting are the followers that must start fetching the
		// partition from here and have not read it yet (followerwait.go).
		// Replaced, never changed in place.
		awaiting []int32
	}
}

func newPartition(tp storage.TopicPartition, topicID [16]byte, log *storage.Log, cfg Config) *Partition {
	p := &Partition{
		tp:       tp,
		topicID:  topicID,
		nodeID:   cfg.NodeID,
		log:      log,
		logger:   cfg.Logger.With("topic", tp.Topic, "partition", tp.Partition),
		now:      cfg.Now,
		leaderID: -1,
		traffic:  &Traffic{},
	}
	p.mu.highWatermark = log.LogStartOffset()
	p.mu.followerLEO = map[int32]int64{}
	p.mu.followerLogStart = map[int32]int64{}
	p.mu.waiters = map[chan struct{}]Event{}
	return p
}

// Topic is the partition's topic name.
func (p *Partition) Topic() string { return p.tp.Topic }

// Index is the partition number.
func (p *Partition) Index() int32 { return p.tp.Partition }

// TopicID is the topic's id.
func (p *Partition) TopicID() [16]byte { return p.topicID }

// Log is the partition's storage log.
func (p *Partition) Log() *storage.Log { return p.log }

// HighWatermark is the current high watermark.
func (p *Partition) HighWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.highWatermark
}

// LeaderState is a snapshot of the replica's role.
type LeaderState struct {
	Role                   Role
	LeaderID               int32
	LeaderEpoch            int32
	PartitionEpoch         int32
	ISR                    []int32
	LeaderEpochStartOffset int64
}

// State returns a snapshot of the role and epochs.
func (p *Partition) State() LeaderState {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	return LeaderState{
		Role: p.role, LeaderID: p.leaderID, LeaderEpoch: p.leaderEpoch,
		PartitionEpoch: p.partitionEpoch, ISR: slices.Clone(p.isr),
		LeaderEpochStartOffset: p.leaderEpochStartOffset,
	}
}

// applyMetadata sets role, epochs, ISR and settings from the image, and
// returns the followers that must now start fetching the partition from
// here (newFollowers). Called by the manager's single apply goroutine.
func (p *Partition) applyMetadata(ip *image.Partition, settings TopicSettings) (newFollowers []int32) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	oldRole, oldEpoch, oldPartitionEpoch, oldReplicas := p.role, p.leaderEpoch, p.partitionEpoch, p.replicas
	newRole := RoleFollower
	if ip.Leader == p.nodeID {
		newRole = RoleLeader
	}
	// An image older than the ISR this leader adopted from an
	// AlterPartition answer (same leader epoch, lower partition epoch) does
	// not move the ISR back.
	staleISR := newRole == RoleLeader && oldRole == RoleLeader && oldEpoch == ip.LeaderEpoch &&
		ip.PartitionEpoch < p.partitionEpoch
	p.role = newRole
	p.leaderID = ip.Leader
	p.leaderEpoch = ip.LeaderEpoch
	if !staleISR {
		if newRole == RoleLeader && oldRole == RoleLeader && oldEpoch == ip.LeaderEpoch {
			p.countISRChange(p.isr, ip.ISR)
		}
		p.partitionEpoch = ip.PartitionEpoch
		p.isr = slices.Clone(ip.ISR)
	}
	p.replicas = slices.Clone(ip.Replicas)
	p.settings = settings
	if invariantsEnabled {
		assertInvariant(checkAppliedImage(ip, oldEpoch, oldPartitionEpoch, p.leaderEpoch, p.partitionEpoch))
	}

	if newRole == RoleLeader && (oldRole != RoleLeader || oldEpoch != ip.LeaderEpoch) {
		p.leaderEpochStartOffset = p.log.LogEndOffset()
		p.mu.Lock()
		clear(p.mu.followerLEO)
		clear(p.mu.followerLogStart)
		p.resetFollowersLocked(p.now())
		p.mu.Unlock()
		p.logger.Info("became leader", "leader_epoch", ip.LeaderEpoch, "isr", ip.ISR,
			"leader_epoch_start_offset", p.leaderEpochStartOffset, "hw", p.HighWatermark())
	} else if newRole == RoleFollower && (oldRole != RoleFollower || oldEpoch != ip.LeaderEpoch) {
		p.logger.Info("became follower", "leader", ip.Leader, "leader_epoch", ip.LeaderEpoch)
	}
	// An ISR change can move the high watermark; every change may matter
	// to a waiter (lost leadership, ISR below the minimum).
	p.mu.Lock()
	p.reconcilePendingLocked()
	if p.role == RoleLeader {
		p.advanceHighWatermarkLocked()
	}
	p.notifyLocked(EventOther)
	p.mu.Unlock()
	due, fresh := p.newFollowers(oldRole, oldEpoch, oldReplicas)
	p.awaitFollowers(fresh, due)
	return due
}

// close makes the replica refuse everything and wakes its waiters.
func (p *Partition) close() {
	p.roleMu.Lock()
	p.role = RoleNone
	p.awaitFollowers(true, nil)
	p.roleMu.Unlock()
	p.mu.Lock()
	p.mu.isr.pending = nil
	p.notifyLocked(EventOther)
	p.mu.Unlock()
}

// advanceHighWatermarkLocked recomputes the high watermark from the ISR's log
// end offsets and moves it forward if it grew. Caller holds roleMu (read or
// write) and p.mu. It reports whether the high watermark moved.
func (p *Partition) advanceHighWatermarkLocked() bool {
	hw, advanced := highWatermark(hwInput{
		Current: p.mu.highWatermark, LocalID: p.nodeID, LocalLEO: p.log.LogEndOffset(),
		CommittedISR: p.isr, MaximalISR: p.maximalISRLocked(), FollowerLEO: p.mu.followerLEO,
		MinInsyncReplicas: p.settings.MinInsyncReplicas,
	})
	if !advanced {
		return false
	}
	p.setHighWatermarkLocked(hw)
	return true
}

// UpdateFollowerFetch records that follower replica fetched from offset
// (so its log end offset is offset) and advances the high watermark if that
// allows. Replicas not assigned to the partition are ignored. It returns
// ErrNotLeaderOrFollower when this replica is not the leader. The
// follower's broker epoch is unknown here; see UpdateFollowerFetchEpoch.
func (p *Partition) UpdateFollowerFetch(replica int32, offset int64) error {
	return p.UpdateFollowerFetchEpoch(replica, -1, offset)
}

// checkLeaderLocked returns nil if this replica leads the partition at the
// epoch the client believes in (-1: not given). Caller holds roleMu.
func (p *Partition) checkLeaderLocked(currentLeaderEpoch int32) error {
	if p.role != RoleLeader {
		return ErrNotLeaderOrFollower
	}
	return checkEpoch(currentLeaderEpoch, p.leaderEpoch)
}

func checkEpoch(requested, ours int32) error {
	switch {
	case requested < 0 || requested == ours:
		return nil
	case requested < ours:
		return ErrFencedLeaderEpoch
	default:
		return ErrUnknownLeaderEpoch
	}
}
