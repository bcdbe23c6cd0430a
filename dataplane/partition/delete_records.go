package partition

import (
	"fmt"
	"slices"

	"github.com/skein-io/skein/storage"
)

// DeleteRecords (Kafka's DeleteRecords, API 21) moves the leader's log
// start offset up to offset (-1: the high watermark), as Kafka does: an
// offset past the high watermark is out of range, and a topic whose
// cleanup.policy has no delete refuses. So does a compacted one
// (compact,delete, which Kafka accepts): the cleaner works in whole
// segments from the first one's base. The followers take the new start
// from their next fetch answers (TakeLeaderLogStart). It returns the
// offset the log now starts at or above.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return 0, ErrNotLeaderOrFollower
	}
	if cfg := p.log.Config(); !cfg.Delete || cfg.Compact {
		return 0, ErrPolicyViolation
	}
	hw := p.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, fmt.Errorf("%w: delete before %d, high watermark %d", storage.ErrOffsetOutOfRange, offset, hw)
	}
	moved, err := p.log.IncrementLogStart(offset)
	if err != nil {
		return 0, err
	}
	if moved { // storage logs the move
		p.mu.Lock()
		p.notifyLocked(EventLogStart)
		p.mu.Unlock()
	}
	return max(offset, p.log.LogStartOffset()), nil
}

// LowWatermark is the lowest log start offset among the leader and the
// in-sync followers, as their last fetches reported it: what every replica
// that could lead next has deleted below (DeleteRecords answers once it
// reaches the requested offset). Kafka takes every live replica; an
// out-of-sync follower takes the start from its leader once it fetches
// again, and cannot lead before it is back in sync.
func (p *Partition) LowWatermark() (int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return 0, ErrNotLeaderOrFollower
	}
	low := p.log.LogStartOffset()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.isr {
		if r == p.nodeID {
			continue
		}
		ls, ok := p.mu.followerLogStart[r]
		if !ok {
			return -1, nil // not heard from since this epoch began
		}
		low = min(low, ls)
	}
	return low, nil
}

// recordFollowerLogStartLocked keeps a follower's reported log start
// (Fetch's LogStartOffset, -1 when it sent none) and wakes the
// DeleteRecords waiting for it. Caller holds roleMu (leader) and mu.
func (p *Partition) recordFollowerLogStartLocked(replica int32, logStart int64) {
	if logStart < 0 || !slices.Contains(p.replicas, replica) {
		return
	}
	if old, ok := p.mu.followerLogStart[replica]; ok && old == logStart {
		return
	}
	p.mu.followerLogStart[replica] = logStart
	p.notifyLocked(EventLogStart)
}

// TakeLeaderLogStart moves a follower's log start up to its leader's (from
// a fetch answer), capped at its own high watermark, as Kafka's followers
// do: records the leader deleted go here too, and a follower that becomes
// leader does not bring them back.
func (p *Partition) TakeLeaderLogStart(leaderEpoch int32, leaderLogStart int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return err
	}
	target := min(leaderLogStart, p.HighWatermark())
	if target <= p.log.LogStartOffset() {
		return nil
	}
	_, err := p.log.IncrementLogStart(target)
	return err
}
