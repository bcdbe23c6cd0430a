package partition

import (
	"slices"

	"github.com/skein-io/skein/storage"
)

// Epoch history answers (KIP-101, KIP-279, KIP-320). The leader epoch cache
// of a log maps each epoch to the offset where its leader appended its
// first record; an epoch ends where the next one starts, the latest at the
// log end. These functions are pure so that the rules can be tested as
// tables.

// epochEndOffset answers "where does epoch requested end in this log" as
// Kafka's OffsetForLeaderEpoch does: the largest epoch <= requested that
// the history knows, and the start of the next epoch (the log end for the
// latest). currentLeaderEpoch >= 0 says this replica leads at that epoch:
// asking for it answers the log end even before the leader appended
// anything in it (the cache learns an epoch at its first append). When
// every known epoch is larger than requested (older epochs were removed
// with their data), the answer is requested and the start of the first
// known epoch. Unknown (empty history, or requested < 0): (-1, -1).
func epochEndOffset(history []storage.EpochEntry, logEnd int64, requested, currentLeaderEpoch int32) (int32, int64) {
	if requested < 0 {
		return -1, -1
	}
	if currentLeaderEpoch >= 0 && requested == currentLeaderEpoch {
		return requested, logEnd
	}
	// higher is the first entry with an epoch above requested.
	higher := len(history)
	for i, e := range history {
		if e.Epoch > requested {
			higher = i
			break
		}
	}
	switch {
	case higher == 0 && len(history) == 0:
		return -1, -1
	case higher == 0:
		return requested, history[0].StartOffset
	case higher == len(history):
		return history[higher-1].Epoch, logEnd
	default:
		return history[higher-1].Epoch, history[higher].StartOffset
	}
}

// divergingEpoch is the leader's check of a follower fetch: the follower's
// log ends at fetchOffset with a batch of lastFetchedEpoch. Its history
// agrees with the leader's when the leader knows that epoch and the epoch
// does not end before fetchOffset in the leader's log; otherwise the
// answer tells the follower where to truncate. lastFetchedEpoch < 0 (an
// empty follower log) is never diverging.
func divergingEpoch(history []storage.EpochEntry, logEnd int64, currentLeaderEpoch, lastFetchedEpoch int32, fetchOffset int64) *DivergingEpoch {
	if lastFetchedEpoch < 0 {
		return nil
	}
	epoch, end := epochEndOffset(history, logEnd, lastFetchedEpoch, currentLeaderEpoch)
	if epoch < 0 {
		// The leader's log holds no epoch at all: it is empty, and the
		// follower keeps nothing beyond its end.
		return &DivergingEpoch{Epoch: -1, EndOffset: logEnd}
	}
	if epoch < lastFetchedEpoch || end < fetchOffset {
		return &DivergingEpoch{Epoch: epoch, EndOffset: end}
	}
	return nil
}

// truncationOffset is where a follower truncates when the leader answered
// d (Kafka's rules, KIP-279): followerEpoch and followerEnd are the
// follower log's own answer for d.Epoch (epochEndOffset on its history),
// followerLEO its log end.
//   - The follower knows no epoch <= d.Epoch: keep what is below the
//     leader's end offset.
//   - It knows a smaller epoch but not d.Epoch: truncate to where that one
//     ends here, then fetch again so the leader checks once more.
//   - Both know d.Epoch: keep the shorter of the two ranges.
//
// Never the high watermark: that loses acknowledged records when leaders
// change twice in a row (KIP-101).
func truncationOffset(d DivergingEpoch, followerEpoch int32, followerEnd, followerLEO int64) int64 {
	var off int64
	switch {
	case followerEpoch < 0:
		off = d.EndOffset
	case followerEpoch != d.Epoch:
		off = followerEnd
	default:
		off = min(followerEnd, d.EndOffset)
	}
	return max(min(off, followerLEO), 0)
}

// divergence is divergingEpoch over this replica's log. Caller holds
// roleMu.
func (p *Partition) divergence(lastFetchedEpoch int32, fetchOffset int64) *DivergingEpoch {
	if lastFetchedEpoch < 0 {
		return nil
	}
	// A follower caught up in the current epoch (every fetch but the
	// first after an election) needs no history: epochEndOffset answers
	// the log end for the leader's own epoch. Copying it per fetch was a
	// large share of a follower fetch's allocations.
	var history []storage.EpochEntry
	if lastFetchedEpoch != p.leaderEpoch {
		history = p.log.EpochHistory()
	}
	return divergingEpoch(history, p.log.LogEndOffset(), p.leaderEpoch, lastFetchedEpoch, fetchOffset)
}

// checkReplicaLocked refuses a follower fetch from a broker that is not a
// replica of the partition: UNKNOWN_LEADER_EPOCH when the request names the
// current epoch (the leader's metadata may be behind a reassignment, the
// follower retries), else NOT_LEADER_OR_FOLLOWER, as Kafka answers. Caller
// holds roleMu.
func (p *Partition) checkReplicaLocked(replica, currentLeaderEpoch int32) error {
	if replica != p.nodeID && slices.Contains(p.replicas, replica) {
		return nil
	}
	if currentLeaderEpoch >= 0 {
		return ErrUnknownLeaderEpoch
	}
	return ErrNotLeaderOrFollower
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for one partition on its
// leader: the largest epoch <= epoch in this log and the offset where it
// ends (-1, -1 when unknown). currentLeaderEpoch is the requester's view
// (-1: not given), fenced like a fetch's.
func (p *Partition) EndOffsetForEpoch(currentLeaderEpoch, epoch int32) (int32, int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkLeaderLocked(currentLeaderEpoch); err != nil {
		return -1, -1, err
	}
	e, end := epochEndOffset(p.log.EpochHistory(), p.log.LogEndOffset(), epoch, p.leaderEpoch)
	return e, end, nil
}
