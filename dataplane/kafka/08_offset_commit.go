package kafka

// OffsetCommit (API key 8), versions 0-8: served by the group coordinator.
// Commits are records in the group's __consumer_offsets partition and are
// acknowledged once the ISR has them. A member commits with its generation;
// generation -1 without a member id is a simple (admin) commit, allowed
// while the group is Empty or unknown. Metadata longer than
// offset.metadata.max.bytes: OFFSET_METADATA_TOO_LARGE for that partition.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleOffsetCommit(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetCommitRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Version = r.Version
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.CoordinatorNotAvailable.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return h.Groups.CommitOffsets(ctx, r), nil
}
