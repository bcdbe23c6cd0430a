package kafka

// AddOffsetsToTxn (API key 25), versions 0-4: adds the group's
// __consumer_offsets partition (group.PartitionFor) to the transaction, so
// the transaction's commit or abort marker reaches the offsets committed
// with TxnOffsetCommit. __consumer_offsets is created here if it does not
// exist yet. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleAddOffsetsToTxn(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if h.Txns == nil || h.Groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	img := h.image()
	if needsOffsetsTopic(img) {
		img = h.ensureOffsetsTopic(ctx)
	}
	t := img.Topics[group.OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	tp := txn.TopicPartition{Topic: group.OffsetsTopic, Partition: group.PartitionFor(r.Group, int32(len(t.Partitions)))}
	code := h.Txns.AddPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, []txn.TopicPartition{tp}, false)[0]
	if code == kerr.ProducerFenced.Code && r.Version < 2 {
		code = kerr.InvalidProducerEpoch.Code
	}
	resp.ErrorCode = code
	return resp, nil
}
