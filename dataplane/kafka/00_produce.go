package kafka

// Produce (API key 0), versions 3-12.
//
//   - v3+ carries only v2 record batches; each partition's data must be
//     exactly one batch (INVALID_RECORD otherwise), validated by header and
//     CRC only: records are never decoded.
//   - acks=0: appended, no response at all (the wire sends nothing for a nil
//     response). acks=1: answered after the local append. acks=-1: refused
//     with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas,
//     else answered once the high watermark passes the batch, or at the
//     request timeout with REQUEST_TIMED_OUT (the data may still commit).
//     The wait is a wire.Deferred: the connection reads and appends the
//     producer's next requests meanwhile, and answers in request order.
//     Any other acks value: INVALID_REQUIRED_ACKS.
//   - Partitions are appended independently, each with its own error; the
//     acks=-1 waits share the one request deadline.
//   - An idempotent retry of a batch already in the log succeeds with the
//     original base offset.
//   - Transactional batches (with a producer id) open or continue the
//     producer's transaction on the partition (storage/txn.go); the
//     idempotence checks apply as to any idempotent batch, and a
//     non-transactional batch while the producer's transaction is open is
//     INVALID_TXN_STATE. Before a batch opens a transaction the
//     partition manager's TxnVerifier (KIP-890; nil accepts) is asked.
//     Control batches are refused (INVALID_RECORD): markers come from
//     WriteTxnMarkers only.
//   - v10+: a NOT_LEADER_OR_FOLLOWER answer carries CurrentLeader and the
//     leader's NodeEndpoints when the image knows them (KIP-951), on the
//     listener the request came in on.
//   - Topics are not auto-created here (clients ask Metadata first, which
//     auto-creates).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleProduce(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))

	type waiting struct {
		out *kmsg.ProduceResponseTopicPartition
		p   *partition.Partition
		res partition.AppendResult
	}
	var pending []waiting
	validAcks := r.Acks == -1 || r.Acks == 0 || r.Acks == 1

	for i := range r.Topics {
		rt := &r.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := &ot.Partitions[j]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			if !validAcks {
				op.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			}
			p, err := h.Partitions.Partition(rt.Topic, rp.Partition)
			var res partition.AppendResult
			if err == nil {
				txnID := ""
				if r.TransactionID != nil {
					txnID = *r.TransactionID
				}
				err = p.VerifyTxn(ctx, txnID, rp.Records)
			}
			if err == nil {
				res, err = p.AppendAsLeader(rp.Records, r.Acks)
			}
			if err != nil {
				h.setProduceError(resp, req.Listener, rt.Topic, op, err)
				continue
			}
			op.BaseOffset = res.BaseOffset
			op.LogAppendTime = res.LogAppendTime
			op.LogStartOffset = res.LogStartOffset
			if r.Acks == -1 {
				pending = append(pending, waiting{out: op, p: p, res: res})
			}
		}
	}
	if r.Acks == 0 {
		return nil, nil
	}
	if len(pending) == 0 {
		return resp, nil
	}
	// The records are in the log; what is left is waiting for the ISR,
	// which the connection does on its writer while it reads and appends
	// the producer's next requests (wire.Defer). Nothing here refers to the
	// request's body: topic names are copies, the records were written.
	h.waiting.produce.Add(1)
	deadline := req.Received.Add(time.Duration(r.TimeoutMillis) * time.Millisecond)
	listener := req.Listener
	return wire.Defer(resp, func() {
		defer h.waiting.produce.Add(-1)
		for _, w := range pending {
			if err := w.p.WaitCommittedUntil(ctx, deadline, w.res); err != nil {
				h.setProduceError(resp, listener, w.p.Topic(), w.out, err)
			}
		}
	}), nil
}

// setProduceError fills a failed partition's answer.
func (h *Handlers) setProduceError(resp *kmsg.ProduceResponse, listener, topic string, op *kmsg.ProduceResponseTopicPartition, err error) {
	op.ErrorCode = errorCode(err)
	op.BaseOffset = -1
	op.LogAppendTime = -1
	op.LogStartOffset = -1
	if !isKnownError(err) {
		h.dataLog().Error("produce failed", "topic", topic, "partition", op.Partition, "error", err)
	}
	if op.ErrorCode == kerr.NotLeaderForPartition.Code && resp.Version >= 10 {
		if leader, epoch, ok := h.leaderHint(topic, op.Partition); ok {
			op.CurrentLeader.LeaderID, op.CurrentLeader.LeaderEpoch = leader, epoch
			if b, host, port, ok := h.leaderEndpoint(leader, listener); ok && !hasProduceBroker(resp.Brokers, leader) {
				rb := kmsg.NewProduceResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = b.ID, host, port, b.rack()
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
}

func hasProduceBroker(bs []kmsg.ProduceResponseBroker, id int32) bool {
	for _, b := range bs {
		if b.NodeID == id {
			return true
		}
	}
	return false
}
