package kafka

// TxnOffsetCommit (API key 28), versions 0-4: served by the group
// coordinator (dataplane/group/txn_offsets.go). The offsets are written in
// the producer's transactional batch and become the group's committed
// offsets when the transaction's commit marker reaches the group's
// __consumer_offsets partition (dropped on abort). v3+ carries the
// member's generation and id, checked as OffsetCommit's (KIP-447).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleTxnOffsetCommit(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.TxnOffsetCommitRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.CoordinatorNotAvailable.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return h.Groups.TxnCommitOffsets(ctx, r), nil
}
