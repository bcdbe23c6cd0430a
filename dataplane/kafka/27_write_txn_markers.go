package kafka

// WriteTxnMarkers (API key 27), versions 0-1: a transaction coordinator
// asks the leaders of a transaction's partitions to end it.
//
//   - Per marker (producer id, producer epoch, commit or abort, coordinator
//     epoch) and partition, the leader appends a control batch at its
//     leader epoch (attributes control + transactional, one record: key
//     {version 0, type 0 abort / 1 commit}, value {version 0, coordinator
//     epoch}; storage.MakeMarkerBatch), replicated like any batch.
//   - Each partition is answered once its marker is committed (acks=all:
//     NOT_ENOUGH_REPLICAS before appending when the ISR is below
//     min.insync.replicas, NOT_ENOUGH_REPLICAS_AFTER_APPEND, or
//     REQUEST_TIMED_OUT after markerTimeout; every partition's wait shares
//     the one deadline).
//   - Errors per partition: UNKNOWN_TOPIC_OR_PARTITION,
//     NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH (an epoch older than
//     the producer's last on the partition), TRANSACTION_COORDINATOR_FENCED
//     (an older coordinator epoch than the producer's last marker), as
//     Kafka. A marker without an open transaction is still written (Kafka
//     does), so a retried marker is harmless.
//   - A committed marker on a __consumer_offsets partition resolves the
//     producer's pending TxnOffsetCommit offsets there (group.CompleteTxn).
//   - Needs CLUSTER_ACTION on the cluster (brokers call it; authorize.go).
//   - v2 (TransactionVersion, KIP-890 part 2) is not advertised.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
)

// markerTimeout bounds the wait for the markers of one request to commit
// (Kafka uses request.timeout.ms, 30 s).
const markerTimeout = 30 * time.Second

func (h *Handlers) handleWriteTxnMarkers(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type waiting struct {
		out *kmsg.WriteTxnMarkersResponseMarkerTopicPartition
		p   *partition.Partition
		res partition.AppendResult
		m   partition.Marker
	}
	var pending []waiting
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(r.Markers))
	for i := range r.Markers {
		rm := &r.Markers[i]
		om := &resp.Markers[i]
		*om = kmsg.NewWriteTxnMarkersResponseMarker()
		om.ProducerID = rm.ProducerID
		om.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(rm.Topics))
		m := partition.Marker{ProducerID: rm.ProducerID, ProducerEpoch: rm.ProducerEpoch, Commit: rm.Committed, CoordinatorEpoch: rm.CoordinatorEpoch}
		for j := range rm.Topics {
			rt := &rm.Topics[j]
			ot := &om.Topics[j]
			*ot = kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			ot.Topic = rt.Topic
			ot.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(rt.Partitions))
			for k, part := range rt.Partitions {
				op := &ot.Partitions[k]
				*op = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				op.Partition = part
				p, err := h.Partitions.Partition(rt.Topic, part)
				var res partition.AppendResult
				if err == nil {
					res, err = p.AppendMarker(m)
				}
				if err != nil {
					h.setMarkerError(rt.Topic, op, m, err)
					continue
				}
				pending = append(pending, waiting{out: op, p: p, res: res, m: m})
			}
		}
	}
	if len(pending) > 0 {
		h.waiting.produce.Add(1)
		defer h.waiting.produce.Add(-1)
		wctx, cancel := context.WithDeadline(ctx, req.Received.Add(markerTimeout))
		defer cancel()
		for _, w := range pending {
			if err := w.p.WaitCommitted(wctx, w.res); err != nil {
				h.setMarkerError(w.p.Topic(), w.out, partition.Marker{}, err)
				continue
			}
			if w.p.Topic() == group.OffsetsTopic && h.Groups != nil {
				// The group coordinator makes the transaction's offsets
				// visible (commit) or drops them (abort).
				h.Groups.CompleteTxn(w.p.Index(), w.m.ProducerID, w.m.Commit)
			}
		}
	}
	return resp, nil
}

func (h *Handlers) setMarkerError(topic string, op *kmsg.WriteTxnMarkersResponseMarkerTopicPartition, m partition.Marker, err error) {
	op.ErrorCode = errorCode(err)
	if !isKnownError(err) {
		h.dataLog().Error("write transaction marker failed", "topic", topic, "partition", op.Partition,
			"producer_id", m.ProducerID, "error", err)
	}
}
