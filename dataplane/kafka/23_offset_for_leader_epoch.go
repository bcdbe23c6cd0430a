package kafka

// OffsetForLeaderEpoch (API key 23), versions 2-4 (v4 flexible).
//
//   - For each partition, the largest leader epoch <= LeaderEpoch that the
//     leader's log knows and its end offset: the start offset of the next
//     epoch, or the log end for the latest (and for the leader's current
//     epoch even before it appended anything). Followers use it to find
//     where their log diverges (KIP-101, KIP-279); consumers to detect
//     truncation (KIP-320). Unknown: epoch -1, end offset -1. When the
//     requested epoch is older than every epoch still in the log, the
//     answer is that epoch and the start of the first known one (Kafka's
//     rule).
//   - Leader only (NOT_LEADER_OR_FOLLOWER otherwise); CurrentLeaderEpoch
//     older than ours is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
//     ReplicaID (v3+) does not change the answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleOffsetForLeaderEpoch(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Topics = make([]kmsg.OffsetForLeaderEpochResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		ot := &resp.Topics[i]
		*ot = kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p, err := h.Partitions.Partition(rt.Topic, rp.Partition)
			if err == nil {
				op.LeaderEpoch, op.EndOffset, err = p.EndOffsetForEpoch(rp.CurrentLeaderEpoch, rp.LeaderEpoch)
			}
			if err != nil {
				op.ErrorCode = errorCode(err)
				op.LeaderEpoch, op.EndOffset = -1, -1
				if !isKnownError(err) {
					h.dataLog().Error("offset for leader epoch failed", "topic", rt.Topic, "partition", rp.Partition, "error", err)
				}
			}
		}
	}
	return resp, nil
}
