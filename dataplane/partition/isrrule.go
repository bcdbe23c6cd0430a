package partition

import (
	"slices"
	"time"

	"github.com/skein-io/skein/controller/image"
)

// The ISR shrink and expand decisions (design.md §3, summarized at the top
// of isr.go) as pure functions of the leader's view: no lock, no clock, no
// I/O. The Partition methods in isr.go gather an isrView under mu, call
// them, and turn a proposal into an AlterPartition.

// isrView is what the ISR decisions look at.
type isrView struct {
	// Now is the time of the decision.
	Now time.Time
	// LocalID is the leader itself.
	LocalID int32
	// Replicas and ISR are the partition's assignment and committed ISR.
	Replicas, ISR []int32
	// Followers is the leader's view of each follower (caught-up times,
	// broker epoch); a follower without one counts as caught up at Now.
	Followers map[int32]*followerState
	// FollowerLEO is each follower's reported log end offset (absent: 0).
	FollowerLEO map[int32]int64
	// LeaderLEO, HighWatermark and LeaderEpochStartOffset are the leader's
	// log end, high watermark and the log end when its epoch began.
	LeaderLEO, HighWatermark, LeaderEpochStartOffset int64
	// LagMax is replica.lag.time.max.ms.
	LagMax time.Duration
	// Brokers is the image's broker registrations (liveness, epochs).
	Brokers map[int32]*image.Broker
	// Pending says an ISR change is in flight; RetryAfter is when a
	// refused one may be proposed again. Either blocks a new proposal.
	Pending    bool
	RetryAfter time.Time
}

// isrProposal is a proposed ISR change.
type isrProposal struct {
	// Proposed is the new ISR.
	Proposed []int32
	// Maximal is the ISR the high watermark counts while it is pending.
	Maximal []int32
	// Shrink: followers leave (OutOfSync); otherwise Added joins.
	Shrink    bool
	OutOfSync []int32
	Added     int32
}

// canPropose: no change in flight, and no refused one in its backoff.
func (v *isrView) canPropose() bool {
	return !v.Pending && !v.Now.Before(v.RetryAfter)
}

// lastCaughtUp is follower r's last caught-up time (Now if unknown).
func (v *isrView) lastCaughtUp(r int32) time.Time {
	if f := v.Followers[r]; f != nil {
		return f.caughtUp()
	}
	return v.Now
}

// outOfSync says whether ISR follower r is out of sync: its log end is not
// the leader's and it has not been caught up for more than the lag limit.
func (v *isrView) outOfSync(r int32) bool {
	return v.FollowerLEO[r] != v.LeaderLEO && v.Now.Sub(v.lastCaughtUp(r)) > v.LagMax
}

// shrinkISR is the shrink decision (the periodic check): every ISR
// follower that is out of sync leaves. It returns nil when no change is
// due or one may not be proposed now. The committed (larger) ISR stays the
// maximal one until the shrink commits.
func shrinkISR(v isrView) *isrProposal {
	if !v.canPropose() {
		return nil
	}
	var out []int32
	for _, r := range v.ISR {
		if r != v.LocalID && v.outOfSync(r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	proposed := slices.DeleteFunc(slices.Clone(v.ISR), func(r int32) bool { return slices.Contains(out, r) })
	return &isrProposal{Proposed: proposed, Maximal: v.ISR, Shrink: true, OutOfSync: out}
}

// expandISR is the expand decision on a fetch of replica: it joins the ISR
// when it is an assigned replica outside the ISR, its log end has reached
// the high watermark and the start of the current leader epoch
// (KAFKA-7128), it is registered and unfenced, and the broker epoch of its
// fetches (when known) is its registration's. The newcomer counts for the
// high watermark at once.
func expandISR(v isrView, replica int32) *isrProposal {
	if !v.canPropose() || replica == v.LocalID || !slices.Contains(v.Replicas, replica) ||
		slices.Contains(v.ISR, replica) {
		return nil
	}
	leo := v.FollowerLEO[replica]
	if leo < v.HighWatermark || leo < v.LeaderEpochStartOffset {
		return nil
	}
	b := v.Brokers[replica]
	if b == nil || b.Fenced {
		return nil
	}
	if f := v.Followers[replica]; f != nil && f.brokerEpoch >= 0 && f.brokerEpoch != b.Epoch {
		return nil
	}
	proposed := append(slices.Clone(v.ISR), replica)
	return &isrProposal{Proposed: proposed, Maximal: proposed, Added: replica}
}
