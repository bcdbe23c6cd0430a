package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/skein-io/skein/storage"
)

// AppendResult describes an accepted produce batch.
type AppendResult struct {
	// BaseOffset is the offset of the batch's first record (the original
	// append's for a duplicate).
	BaseOffset int64
	// LastOffset is the offset of its last record; acks=all waits for the
	// high watermark to pass it.
	LastOffset int64
	// LogAppendTime is the broker time stamped on the batch, -1 under
	// CreateTime.
	LogAppendTime  int64
	LogStartOffset int64
	// Duplicate says the batch had been appended before (idempotent retry)
	// and was not written again.
	Duplicate bool
	// LeaderEpoch is the epoch the batch was appended under.
	LeaderEpoch int32
}

// AppendAsLeader validates one produce batch and appends it to the log.
// requiredAcks is the request's acks (-1, 0 or 1): with -1 the append is
// refused with ErrNotEnoughReplicas when the ISR is smaller than
// min.insync.replicas. An idempotent retry of a batch already in the log is
// a success carrying the original offsets. The batch is modified in place
// (base offset, leader epoch, and the LogAppendTime fields when the topic
// uses it). For acks=-1 follow with WaitCommitted.
func (p *Partition) AppendAsLeader(batch []byte, requiredAcks int16) (AppendResult, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader {
		return AppendResult{}, ErrNotLeaderOrFollower
	}
	if err := checkProduceBatch(batch, p.settings.MaxMessageBytes); err != nil {
		return AppendResult{}, err
	}
	if p.settings.Compact {
		if err := storage.CheckKeys(batch); err != nil {
			return AppendResult{}, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
		}
	}
	if requiredAcks == -1 && len(p.isr) < p.settings.MinInsyncReplicas {
		return AppendResult{}, ErrNotEnoughReplicas
	}
	appendTime := int64(-1)
	if p.settings.LogAppendTime {
		appendTime = p.now().UnixMilli()
		stampLogAppendTime(batch, appendTime)
	}
	info, err := p.log.AppendAsLeader(batch, p.leaderEpoch)
	dup := errors.Is(err, storage.ErrDuplicateSequence)
	if err != nil && !dup {
		return AppendResult{}, err
	}
	res := AppendResult{
		BaseOffset:     info.FirstOffset,
		LastOffset:     info.LastOffset,
		LogAppendTime:  appendTime,
		LogStartOffset: info.LogStartOffset,
		Duplicate:      dup,
		LeaderEpoch:    p.leaderEpoch,
	}
	if dup {
		// The original append's time: under LogAppendTime its max timestamp.
		res.LogAppendTime = -1
		if p.settings.LogAppendTime {
			res.LogAppendTime = info.MaxTimestamp
		}
	} else {
		p.traffic.BytesIn.Add(int64(len(batch)))
		p.traffic.RecordsIn.Add(info.LastOffset - info.FirstOffset + 1)
	}
	p.mu.Lock()
	ev := EventAppend // wakes follower fetches
	if p.advanceHighWatermarkLocked() {
		ev |= EventHighWatermark // a leader alone in its ISR commits at once
	}
	p.notifyLocked(ev)
	p.mu.Unlock()
	return res, nil
}

// Committed reports whether an append is committed (the high watermark is
// past its last offset), or the error that ends an acks=all wait: lost
// leadership (or a new leader epoch), or the ISR below min.insync.replicas.
func (p *Partition) committed(res AppendResult) (bool, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader || p.leaderEpoch != res.LeaderEpoch {
		return false, ErrNotLeaderOrFollower
	}
	p.mu.Lock()
	hw := p.mu.highWatermark
	p.mu.Unlock()
	if hw > res.LastOffset {
		return true, nil
	}
	if len(p.isr) < p.settings.MinInsyncReplicas {
		return false, ErrNotEnoughReplicasAfterAppend
	}
	return false, nil
}

// WaitCommitted blocks an acks=all produce until the high watermark passes
// res.LastOffset. It returns ErrRequestTimedOut when ctx ends first,
// ErrNotLeaderOrFollower when leadership is lost meanwhile and
// ErrNotEnoughReplicasAfterAppend when the ISR shrank below the minimum.
func (p *Partition) WaitCommitted(ctx context.Context, res AppendResult) error {
	return p.WaitCommittedUntil(ctx, time.Time{}, res)
}

// WaitCommittedUntil is WaitCommitted that also gives up at deadline (zero:
// none) with ErrRequestTimedOut. It costs no timer unless it has to wait,
// where a context with the deadline costs one per call (an acks=all
// Produce).
func (p *Partition) WaitCommittedUntil(ctx context.Context, deadline time.Time, res AppendResult) error {
	if ok, err := p.committed(res); ok || err != nil {
		return err
	}
	w := NewWaiter(WakeProduce)
	defer w.Close()
	w.Watch(p)
	for {
		// Re-check after watching: a change between the first check and
		// Watch would otherwise be missed.
		if ok, err := p.committed(res); ok || err != nil {
			return err
		}
		if !w.Wait(ctx, deadline) {
			return ErrRequestTimedOut
		}
	}
}

// InSyncReplicas returns a copy of the ISR.
func (p *Partition) InSyncReplicas() []int32 {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	return slices.Clone(p.isr)
}
