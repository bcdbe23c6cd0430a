package kafka

// ListOffsets (API key 2), versions 1-8.
//
//   - Timestamp -1: the latest offset, i.e. the high watermark under
//     read_uncommitted, the last stable offset under read_committed
//     (IsolationLevel 1, v2+; no offset at or above it is answered either);
//     for a follower's request (ReplicaID >= 0) the log end.
//   - -2: the log start offset; -4 (EARLIEST_LOCAL, v8) the same (no tiered
//     storage). -3 (v7+, KIP-734): the record with the largest timestamp.
//   - Otherwise the first offset whose batch max timestamp is >= the
//     timestamp (batch granularity, like Kafka's time index); none, or one at
//     or above the high watermark, answers offset -1 and timestamp -1.
//   - Leader only; CurrentLeaderEpoch (v4+) older than ours is
//     FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. LeaderEpoch in the
//     answer is the epoch of the batch holding the offset (the current epoch
//     for -1).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleListOffsets(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			p, err := h.Partitions.Partition(rt.Topic, rp.Partition)
			if err == nil {
				off, lerr := p.ListOffsetIsolation(rp.Timestamp, rp.CurrentLeaderEpoch, r.ReplicaID, r.IsolationLevel == 1)
				err = lerr
				op.Offset, op.Timestamp, op.LeaderEpoch = off.Offset, off.Timestamp, off.LeaderEpoch
			}
			if err != nil {
				op.ErrorCode = errorCode(err)
				op.Offset, op.Timestamp, op.LeaderEpoch = -1, -1, -1
				if !isKnownError(err) {
					h.dataLog().Error("list offsets failed", "topic", rt.Topic, "partition", rp.Partition, "error", err)
				}
			}
		}
	}
	return resp, nil
}
