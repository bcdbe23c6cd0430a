package partition

import (
	"fmt"
	"slices"
	"time"

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

// LowWatermark is the lowest log start offset among the leader and its
// followers, as their fetches in this leader epoch reported it: every
// in-sync follower (-1 until each has reported), and every other replica
// that has fetched within replica.lag.time.max (Kafka takes every live
// replica; one that has not fetched for that long counts as down).
// DeleteRecords answers once it reaches the requested offset.
func (p *Partition) LowWatermark() (int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return 0, ErrNotLeaderOrFollower
	}
	low := p.log.LogStartOffset()
	now, lagMax := p.now(), defaultLowWatermarkLag
	if p.env != nil && p.env.lagMax > 0 {
		lagMax = p.env.lagMax
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.replicas {
		if r == p.nodeID {
			continue
		}
		ls, ok := p.mu.followerLogStart[r]
		if slices.Contains(p.isr, r) {
			if !ok {
				return -1, nil // not heard from since this epoch began
			}
			low = min(low, ls)
			continue
		}
		// An out-of-sync replica counts while it fetches (a session
		// reads it on every fetch until it is back in sync).
		if f := p.mu.isr.followers[r]; ok && f != nil && now.Sub(f.lastFetchTime) < lagMax {
			low = min(low, ls)
		}
	}
	return low, nil
}

// recordFollowerLogStartLocked keeps a follower's reported log start
// (Fetch's LogStartOffset, -1 when it sent none) and wakes the
// DeleteRecords waiting for it. Caller holds roleMu (leader) and mu.
// replica is one of p's replicas (UpdateFollowerFetchSession checked).
func (p *Partition) recordFollowerLogStartLocked(replica int32, logStart int64) {
	if logStart < 0 {
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

// defaultLowWatermarkLag stands in for replica.lag.time.max when a bare
// partition (tests) has none.
const defaultLowWatermarkLag = 30 * time.Second
