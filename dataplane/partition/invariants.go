package partition

import (
	"errors"
	"fmt"
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// Invariant checks on the real path. Each check is a function returning
// the first broken invariant (nil when they hold), compiled in every build
// and tested in every build; the call sites run them only under
// `if invariantsEnabled`, so without the `invariants` build tag they cost
// nothing. With the tag (make test) a violation panics (invariants_on.go).
//
// Which invariants hold for which role:
//   - Every role, after every change of the high watermark:
//     LogStartOffset <= HighWatermark <= LogEndOffset.
//   - Leader: the high watermark only moves forward within one leader
//     epoch (it is changed only by advanceHighWatermarkLocked, and no
//     follower path runs on a leader). A replica that becomes leader keeps
//     the high watermark it had as a follower.
//   - Follower: the high watermark may move backwards: a truncation caps
//     it at the new log end, and a new leader's high watermark may be
//     below the one this replica took from the previous leader.
//   - Every role, when an image is applied: the leader (when not -1) is in
//     the ISR, the ISR is within the replicas, and neither the leader epoch
//     nor the partition epoch goes backwards (equal is fine; a leader that
//     adopted a newer ISR from an AlterPartition answer ignores an older
//     image's ISR and partition epoch, so its partition epoch does not go
//     back either). An ISR adopted from an AlterPartition answer holds the
//     leader and stays within the replicas too.

// errInvariant marks a broken invariant.
var errInvariant = errors.New("partition invariant violated")

// checkHighWatermark checks a high watermark change from prev to hw on a
// replica in role whose log spans [logStart, logEnd).
func checkHighWatermark(role Role, prev, hw, logStart, logEnd int64) error {
	switch {
	case hw < logStart || hw > logEnd:
		return fmt.Errorf("%w: high watermark %d outside [log start %d, log end %d] on a %s",
			errInvariant, hw, logStart, logEnd, role)
	case role == RoleLeader && hw < prev:
		return fmt.Errorf("%w: leader high watermark moved back from %d to %d", errInvariant, prev, hw)
	}
	return nil
}

// checkISR checks that an ISR holds the leader (unless -1) and is within
// the replicas.
func checkISR(leader int32, isr, replicas []int32) error {
	if leader >= 0 && !slices.Contains(isr, leader) {
		return fmt.Errorf("%w: leader %d not in the ISR %v", errInvariant, leader, isr)
	}
	for _, r := range isr {
		if !slices.Contains(replicas, r) {
			return fmt.Errorf("%w: ISR %v not within the replicas %v", errInvariant, isr, replicas)
		}
	}
	return nil
}

// checkAppliedImage checks the partition's state as applied from image
// partition ip, given the epochs it had before.
func checkAppliedImage(ip *image.Partition, prevLeaderEpoch, prevPartitionEpoch, leaderEpoch, partitionEpoch int32) error {
	if err := checkISR(ip.Leader, ip.ISR, ip.Replicas); err != nil {
		return err
	}
	if leaderEpoch < prevLeaderEpoch {
		return fmt.Errorf("%w: leader epoch went back from %d to %d", errInvariant, prevLeaderEpoch, leaderEpoch)
	}
	if partitionEpoch < prevPartitionEpoch {
		return fmt.Errorf("%w: partition epoch went back from %d to %d", errInvariant, prevPartitionEpoch, partitionEpoch)
	}
	return nil
}

// setHighWatermarkLocked sets the high watermark, checking the invariants
// of the role. Caller holds roleMu and mu.
func (p *Partition) setHighWatermarkLocked(hw int64) {
	if invariantsEnabled {
		assertInvariant(checkHighWatermark(p.role, p.mu.highWatermark, hw, p.log.LogStartOffset(), p.log.LogEndOffset()))
	}
	p.mu.highWatermark = hw
}
