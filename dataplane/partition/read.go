package partition

import (
	"encoding/binary"
	"math"

	"github.com/skein-io/skein/storage"
)

// ReadParams is one partition of a fetch.
type ReadParams struct {
	FetchOffset int64
	MaxBytes    int32
	// CurrentLeaderEpoch is the client's view, -1 if not given.
	CurrentLeaderEpoch int32
	// ReplicaID >= 0 marks a follower's fetch: it reads up to the log end
	// (not the high watermark) and reports the follower's log end offset.
	// DebugReplicaID marks a debug consumer's fetch (readAnyReplica).
	ReplicaID int32
	// ReadCommitted (isolation_level=1) reads a consumer's fetch up to the
	// last stable offset instead of the high watermark, and returns the
	// aborted transactions overlapping the range read.
	ReadCommitted bool
	// LastFetchedEpoch is the epoch of the last batch in the follower's log
	// (-1: none, or not a follower). A follower's fetch whose epoch and
	// offset do not match this log's epoch history is answered with
	// ReadResult.Diverging instead of data (KIP-279, KIP-320).
	LastFetchedEpoch int32
}

// ReadResult is what a fetch of one partition returns. The offsets are
// filled even when the read fails (OFFSET_OUT_OF_RANGE answers carry them).
type ReadResult struct {
	storage.ReadResult
	HighWatermark  int64
	LogStartOffset int64
	LeaderEpoch    int32
	// LastStableOffset is min(high watermark, first offset of any open or
	// uncommitted transaction).
	LastStableOffset int64
	// AbortedTxns (ReadCommitted only) are the aborted transactions that
	// overlap the batches read: the consumer drops their records.
	AbortedTxns []storage.AbortedTxn
	// Diverging is set when a follower's log diverged from this one: it
	// must truncate (see DivergingEpoch) before fetching again. The read
	// then carries no data, and the fetch does not count as the follower's
	// log end offset.
	Diverging *DivergingEpoch
}

// DivergingEpoch is the leader's answer to a follower whose history
// diverged: the largest epoch <= the follower's last fetched epoch that the
// leader knows, and where that epoch ends in the leader's log.
type DivergingEpoch struct {
	Epoch     int32
	EndOffset int64
}

// DebugReplicaID is Kafka's replica id of the "debug consumer" (-2): a
// fetch that any replica, leader or follower, serves from its own log up to
// its own high watermark. `skein replicas verify` uses it to compare the
// replicas of a partition.
const DebugReplicaID = -2

// Read returns whole batches from params.FetchOffset: for a consumer only
// batches entirely below the high watermark, for a follower up to the log
// end. At most MaxBytes except that the first batch is always whole
// (KIP-74); the caller drops it when it is not the first partition with
// data. Only the leader serves reads.
func (p *Partition) Read(params ReadParams) (ReadResult, error) {
	if params.ReplicaID == DebugReplicaID {
		return p.readAnyReplica(params)
	}
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkLeaderLocked(params.CurrentLeaderEpoch); err != nil {
		return ReadResult{HighWatermark: -1, LogStartOffset: -1, LastStableOffset: -1}, err
	}
	p.mu.Lock()
	hw := p.mu.highWatermark
	p.mu.Unlock()
	lso := p.log.LastStableOffset(hw)
	out := ReadResult{HighWatermark: hw, LogStartOffset: p.log.LogStartOffset(), LeaderEpoch: p.leaderEpoch, LastStableOffset: lso}
	maxOffset := hw
	if params.ReadCommitted {
		maxOffset = lso
	}
	if params.ReplicaID >= 0 {
		if err := p.checkReplicaLocked(params.ReplicaID, params.CurrentLeaderEpoch); err != nil {
			return out, err
		}
		p.followerRead(params.ReplicaID)
		if d := p.divergence(params.LastFetchedEpoch, params.FetchOffset); d != nil {
			out.Diverging = d
			out.ReadResult.LogStartOffset = out.LogStartOffset
			out.ReadResult.LogEndOffset = p.log.LogEndOffset()
			return out, nil
		}
		maxOffset = math.MaxInt64
	}
	rr, aborted, err := p.read(params.FetchOffset, params.MaxBytes, maxOffset, params.ReadCommitted && params.ReplicaID < 0)
	if err != nil {
		return out, err
	}
	out.ReadResult, out.AbortedTxns = rr, aborted
	return out, nil
}

// readAnyReplica serves a debug consumer's fetch on a leader or a
// follower: whole batches below this replica's own high watermark, with
// this replica's offsets. CurrentLeaderEpoch, when given, is checked
// against the epoch this replica knows. It never counts as a follower's
// fetch and never looks at divergence.
func (p *Partition) readAnyReplica(params ReadParams) (ReadResult, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if p.role != RoleLeader && p.role != RoleFollower {
		return ReadResult{HighWatermark: -1, LogStartOffset: -1}, ErrNotLeaderOrFollower
	}
	if err := checkEpoch(params.CurrentLeaderEpoch, p.leaderEpoch); err != nil {
		return ReadResult{HighWatermark: -1, LogStartOffset: -1}, err
	}
	p.mu.Lock()
	hw := p.mu.highWatermark
	p.mu.Unlock()
	lso := p.log.LastStableOffset(hw)
	out := ReadResult{HighWatermark: hw, LogStartOffset: p.log.LogStartOffset(), LeaderEpoch: p.leaderEpoch, LastStableOffset: lso}
	maxOffset := hw
	if params.ReadCommitted {
		maxOffset = lso
	}
	rr, aborted, err := p.read(params.FetchOffset, params.MaxBytes, maxOffset, params.ReadCommitted)
	if err != nil {
		return out, err
	}
	out.ReadResult, out.AbortedTxns = rr, aborted
	return out, nil
}

// read reads the log; a read_committed read also gets the aborted
// transactions overlapping what it returns, from the same view of the log.
func (p *Partition) read(offset int64, maxBytes int32, maxOffset int64, readCommitted bool) (storage.ReadResult, []storage.AbortedTxn, error) {
	if readCommitted {
		return p.log.ReadCommitted(offset, maxBytes, maxOffset)
	}
	rr, err := p.log.Read(offset, maxBytes, maxOffset)
	return rr, nil, err
}

// Offset is one ListOffsets answer.
type Offset struct {
	Offset      int64
	Timestamp   int64
	LeaderEpoch int32
}

// ListOffsets timestamps with a special meaning (KIP-734 adds -3).
const (
	LatestTimestamp        = -1
	EarliestTimestamp      = -2
	MaxTimestamp           = -3
	EarliestLocalTimestamp = -4
)

// ListOffset answers ListOffsets for one partition: -1 the high watermark
// (the log end for a follower's request, replicaID >= 0), -2 and -4 the log
// start, -3 the record with the largest timestamp, otherwise the first
// offset whose timestamp is >= ts. Offsets at or above the high watermark
// are not returned to consumers: then the answer is offset -1, timestamp -1.
func (p *Partition) ListOffset(ts int64, currentLeaderEpoch, replicaID int32) (Offset, error) {
	return p.ListOffsetIsolation(ts, currentLeaderEpoch, replicaID, false)
}

// ListOffsetIsolation is ListOffset for an isolation level: under
// readCommitted the last stable offset takes the high watermark's place
// (latest is the LSO; nothing at or above it is returned).
func (p *Partition) ListOffsetIsolation(ts int64, currentLeaderEpoch, replicaID int32, readCommitted bool) (Offset, error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if err := p.checkLeaderLocked(currentLeaderEpoch); err != nil {
		return Offset{Offset: -1, Timestamp: -1, LeaderEpoch: -1}, err
	}
	p.mu.Lock()
	fetchable := p.mu.highWatermark
	p.mu.Unlock()
	if readCommitted {
		fetchable = p.log.LastStableOffset(fetchable)
	}
	if replicaID >= 0 {
		fetchable = p.log.LogEndOffset()
	}
	none := Offset{Offset: -1, Timestamp: -1, LeaderEpoch: -1}
	switch ts {
	case LatestTimestamp:
		return Offset{Offset: fetchable, Timestamp: -1, LeaderEpoch: p.leaderEpoch}, nil
	case EarliestTimestamp, EarliestLocalTimestamp:
		start := p.log.LogStartOffset()
		return Offset{Offset: start, Timestamp: -1, LeaderEpoch: p.batchEpoch(start, fetchable)}, nil
	case MaxTimestamp:
		mts, off := p.log.MaxTimestamp()
		if off < 0 || off >= fetchable {
			return none, nil
		}
		return Offset{Offset: off, Timestamp: mts, LeaderEpoch: p.batchEpoch(off, fetchable)}, nil
	}
	if ts < 0 {
		return none, nil
	}
	off, bts, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return none, err
	}
	if !ok || off >= fetchable {
		return none, nil
	}
	return Offset{Offset: off, Timestamp: bts, LeaderEpoch: p.batchEpoch(off, fetchable)}, nil
}

// batchEpoch is the partition leader epoch stamped on the batch holding
// offset, -1 when it cannot be read (empty log, offset at the end).
func (p *Partition) batchEpoch(offset, limit int64) int32 {
	if offset >= limit {
		return -1
	}
	rr, err := p.log.Read(offset, 1, math.MaxInt64)
	if err != nil || len(rr.Ranges) == 0 {
		return -1
	}
	var hdr [batchOffsetMagic]byte
	f := rr.Ranges[0]
	if f.Size < int64(len(hdr)) {
		return -1
	}
	if _, err := f.File.ReadAt(hdr[:], f.Pos); err != nil {
		return -1
	}
	return int32(binary.BigEndian.Uint32(hdr[12:16]))
}
