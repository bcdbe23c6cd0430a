package kafka

// AddPartitionsToTxn (API key 24), versions 0-4.
//
//   - v0-v3 (producers): adds the partitions to the transaction of
//     TransactionalID (dataplane/txn); a partition of a topic that does not
//     exist gets UNKNOWN_TOPIC_OR_PARTITION and the others
//     OPERATION_NOT_ATTEMPTED, as Kafka answers. PRODUCER_FENCED is
//     INVALID_PRODUCER_EPOCH before v2 (KIP-588).
//   - v4 (brokers, KIP-890): a batch of transactions; VerifyOnly asks
//     whether the partitions are in the ongoing transaction (each one not
//     in it: INVALID_TXN_STATE) and writes nothing. Partition leaders send
//     it before appending a transactional batch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleAddPartitionsToTxn(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version >= 4 {
		for _, t := range r.Transactions {
			var tps []txn.TopicPartition
			for _, rt := range t.Topics {
				for _, p := range rt.Partitions {
					tps = append(tps, txn.TopicPartition{Topic: rt.Topic, Partition: p})
				}
			}
			codes := h.addPartitions(ctx, t.TransactionalID, t.ProducerID, t.ProducerEpoch, tps, t.VerifyOnly, r.Version)
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = t.TransactionalID
			i := 0
			for _, topic := range t.Topics {
				tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				tt.Topic = topic.Topic
				for _, p := range topic.Partitions {
					tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					tp.Partition, tp.ErrorCode = p, codes[i]
					i++
					tt.Partitions = append(tt.Partitions, tp)
				}
				rt.Topics = append(rt.Topics, tt)
			}
			resp.Transactions = append(resp.Transactions, rt)
		}
		return resp, nil
	}
	var tps []txn.TopicPartition
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			tps = append(tps, txn.TopicPartition{Topic: rt.Topic, Partition: p})
		}
	}
	codes := h.addPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, tps, false, r.Version)
	i := 0
	for _, topic := range r.Topics {
		tt := kmsg.NewAddPartitionsToTxnResponseTopic()
		tt.Topic = topic.Topic
		for _, p := range topic.Partitions {
			tp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			tp.Partition, tp.ErrorCode = p, codes[i]
			i++
			tt.Partitions = append(tt.Partitions, tp)
		}
		resp.Topics = append(resp.Topics, tt)
	}
	return resp, nil
}

// addPartitions checks the partitions exist, then asks the coordinator;
// the codes are per partition, in order.
func (h *Handlers) addPartitions(ctx context.Context, id string, producerID int64, epoch int16,
	tps []txn.TopicPartition, verifyOnly bool, version int16) []int16 {
	codes := make([]int16, len(tps))
	if h.Txns == nil {
		for i := range codes {
			codes[i] = kerr.CoordinatorNotAvailable.Code
		}
		return codes
	}
	if !verifyOnly {
		img := h.image()
		unknown := false
		for i, tp := range tps {
			t := img.Topics[tp.Topic]
			if t == nil || t.Partitions[tp.Partition] == nil {
				codes[i] = kerr.UnknownTopicOrPartition.Code
				unknown = true
			}
		}
		if unknown {
			for i := range codes {
				if codes[i] == 0 {
					codes[i] = kerr.OperationNotAttempted.Code
				}
			}
			return codes
		}
	}
	codes = h.Txns.AddPartitions(ctx, id, producerID, epoch, tps, verifyOnly)
	if version < 2 {
		for i, c := range codes {
			if c == kerr.ProducerFenced.Code {
				codes[i] = kerr.InvalidProducerEpoch.Code
			}
		}
	}
	return codes
}
