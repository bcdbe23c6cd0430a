package kafka

// DescribeProducers (API key 61), version 0 (KIP-664): per partition, the
// active producers of the leader's log (producer id, epoch, last
// sequence, last timestamp, coordinator epoch of the last marker, first
// offset of the open transaction, -1 when none), from the producer state
// in storage. Leader only (NOT_LEADER_OR_FOLLOWER otherwise); needs READ
// on the topic (TOPIC_AUTHORIZATION_FAILED, authorize.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeProducers(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		ot := kmsg.NewDescribeProducersResponseTopic()
		ot.Topic = rt.Topic
		for _, part := range rt.Partitions {
			op := kmsg.NewDescribeProducersResponseTopicPartition()
			op.Partition = part
			p, err := h.Partitions.Partition(rt.Topic, part)
			if err == nil {
				producers, perr := p.Producers()
				err = perr
				for _, pi := range producers {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch = pi.ProducerID, int32(pi.ProducerEpoch)
					ap.LastSequence, ap.LastTimestamp = pi.LastSequence, pi.LastTimestamp
					ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.TxnStartOffset
					op.ActiveProducers = append(op.ActiveProducers, ap)
				}
			}
			if err != nil {
				op.ErrorCode = errorCode(err)
				if !isKnownError(err) {
					h.dataLog().Error("describe producers failed", "topic", rt.Topic, "partition", part, "error", err)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
