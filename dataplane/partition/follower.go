package partition

import (
	"fmt"

	"github.com/skein-io/skein/storage"
)

// Follower-side operations, called by the replica fetcher (dataplane/replica)
// of the leader this replica follows. Each names the leader epoch the fetcher
// was started for and is refused (ErrFencedLeaderEpoch, or
// ErrNotLeaderOrFollower when the replica is no longer a follower) once
// metadata moved on: a fetcher of an old epoch can never write into the log.
// Each holds roleMu for reading across its storage operation, so a role
// change waits for it.

// Follower is one partition this broker follows, as the last image says.
type Follower struct {
	Partition   *Partition
	LeaderID    int32
	LeaderEpoch int32
	// LeaderAddr is the leader's Kafka listener, host:port; "" when the
	// image does not list the leader's broker.
	LeaderAddr string
}

// checkFollowerLocked: this replica follows at leaderEpoch. Caller holds
// roleMu.
func (p *Partition) checkFollowerLocked(leaderEpoch int32) error {
	if p.role != RoleFollower {
		return ErrNotLeaderOrFollower
	}
	if p.leaderEpoch != leaderEpoch {
		return ErrFencedLeaderEpoch
	}
	return nil
}

// FetchPosition is where the follower's next fetch starts: its log end
// offset and the epoch of its last batch (-1 for an empty log).
func (p *Partition) FetchPosition(leaderEpoch int32) (offset int64, lastFetchedEpoch int32, err error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return 0, -1, err
	}
	return p.log.LogEndOffset(), p.log.LatestEpoch(), nil
}

// AppendAsFollower appends batches fetched from the leader, byte for byte
// (their offsets and epochs are the leader's); the first must start at the
// log end. It wakes the partition's waiters.
func (p *Partition) AppendAsFollower(leaderEpoch int32, batches []byte) (storage.AppendInfo, error) {
	return p.AppendAsFollowerFrom(leaderEpoch, batches, -1)
}

// AppendAsFollowerFrom is AppendAsFollower for batches the leader read from
// its segment based at leaderSegment (-1: not known; see
// storage.Log.AppendAsFollowerFrom).
func (p *Partition) AppendAsFollowerFrom(leaderEpoch int32, batches []byte, leaderSegment int64) (storage.AppendInfo, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return storage.AppendInfo{}, err
	}
	// An empty log restarted at the leader's log start (RestartAt),
	// which DeleteRecords put inside a batch: the leader's answer begins
	// with that whole batch, below the log end. The log then starts at
	// the batch's base, as Kafka's followers do; the answer's log start
	// raises the start again (TakeLeaderLogStart).
	if leo := p.log.LogEndOffset(); p.log.LogStartOffset() == leo {
		if h, err := storage.ParseBatchHeader(batches); err == nil && h.BaseOffset < leo && h.LastOffset() >= leo {
			if err := p.log.Truncate(h.BaseOffset); err != nil {
				return storage.AppendInfo{}, err
			}
			p.logger.Info("log restarted at the base of the batch holding the leader's log start", "leader_epoch", leaderEpoch,
				"base_offset", h.BaseOffset, "leader_log_start", leo)
		}
	}
	info, err := p.log.AppendAsFollowerFrom(batches, leaderSegment)
	if err != nil {
		return info, err
	}
	p.traffic.ReplicationBytesIn.Add(int64(len(batches)))
	p.mu.Lock()
	p.notifyLocked(EventAppend)
	p.mu.Unlock()
	return info, nil
}

// TruncateAsFollower truncates the log where the leader's DivergingEpoch
// answer says the histories part (truncationOffset), caps the high
// watermark at the new log end and returns the new log end offset.
func (p *Partition) TruncateAsFollower(leaderEpoch int32, d DivergingEpoch) (int64, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return 0, err
	}
	leo := p.log.LogEndOffset()
	fe, fend := epochEndOffset(p.log.EpochHistory(), leo, d.Epoch, -1)
	to := truncationOffset(d, fe, fend, leo)
	if to < leo {
		if err := p.log.Truncate(to); err != nil {
			return 0, fmt.Errorf("truncate to %d: %w", to, err)
		}
		p.logger.Info("truncated diverging log", "leader_epoch", leaderEpoch, "diverging_epoch", d.Epoch,
			"diverging_end_offset", d.EndOffset, "from", leo, "log_end_offset", p.log.LogEndOffset())
	}
	p.capHighWatermark()
	return p.log.LogEndOffset(), nil
}

// RestartAt empties the log and starts it at offset, for a follower whose
// log ends below the leader's log start offset (nothing it holds is still
// on the leader).
func (p *Partition) RestartAt(leaderEpoch int32, offset int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return err
	}
	if err := p.log.TruncateFullyAndStartAt(offset); err != nil {
		return err
	}
	p.logger.Info("log restarted at the leader's log start offset", "leader_epoch", leaderEpoch, "log_start_offset", offset)
	p.capHighWatermark()
	return nil
}

// capHighWatermark keeps LogStartOffset <= HW <= LogEndOffset after a
// truncation. Caller holds roleMu.
func (p *Partition) capHighWatermark() {
	p.mu.Lock()
	p.setHighWatermarkLocked(max(min(p.mu.highWatermark, p.log.LogEndOffset()), p.log.LogStartOffset()))
	p.notifyLocked(EventOther)
	p.mu.Unlock()
}

// UpdateFollowerHighWatermark sets the follower's high watermark from the
// leader's, capped at the local log end (design: the follower's HW is the
// leader's capped at its own LEO). Call it only with the high watermark of
// a fetch answer that carried no diverging epoch: after a truncation the
// log may still hold records that differ from the leader's below that high
// watermark, until a later fetch is answered without divergence.
func (p *Partition) UpdateFollowerHighWatermark(leaderEpoch int32, leaderHighWatermark int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkFollowerLocked(leaderEpoch); err != nil {
		return err
	}
	hw := max(min(leaderHighWatermark, p.log.LogEndOffset()), p.log.LogStartOffset())
	p.mu.Lock()
	if hw != p.mu.highWatermark {
		p.setHighWatermarkLocked(hw)
		p.notifyLocked(EventHighWatermark)
	}
	p.mu.Unlock()
	return nil
}
