package kafka

// DeleteRecords (API key 21), versions 0-2: each partition's leader moves
// its log start offset up to the requested offset (-1: the high
// watermark), so the records below it can no longer be read and their
// segments go (partition.DeleteRecords). The answer for a partition comes
// once its low watermark, the lowest log start among the leader and its
// fetching followers (partition.LowWatermark; they take the leader's from
// their next fetch), has
// reached the offset, or at the request's timeout with REQUEST_TIMED_OUT.
// As in Kafka: OFFSET_OUT_OF_RANGE past the high watermark,
// POLICY_VIOLATION on a topic without cleanup.policy delete (and, unlike
// Kafka, on compact,delete),
// INVALID_TOPIC_EXCEPTION on an internal topic, NOT_LEADER_OR_FOLLOWER
// elsewhere than the leader; DELETE on the topic is needed.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDeleteRecords(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	type waiting struct {
		out    *kmsg.DeleteRecordsResponseTopicPartition
		p      *partition.Partition
		target int64
	}
	var waits []waiting
	for _, rt := range r.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition, op.LowWatermark = rp.Partition, -1
			if rt.Topic == group.OffsetsTopic || rt.Topic == txn.StateTopic {
				op.ErrorCode = kerr.InvalidTopicException.Code
				continue
			}
			p, err := h.Partitions.Partition(rt.Topic, rp.Partition)
			target := int64(0)
			if err == nil {
				target, err = p.DeleteRecords(rp.Offset)
			}
			if err != nil {
				op.ErrorCode = errorCode(err)
				if !isKnownError(err) {
					h.dataLog().Error("delete records failed", "topic", rt.Topic, "partition", rp.Partition, "error", err)
				}
				continue
			}
			waits = append(waits, waiting{out: op, p: p, target: target})
		}
		resp.Topics = append(resp.Topics, ot)
	}
	if len(waits) == 0 {
		return resp, nil
	}

	// Wait for the low watermarks, woken by the followers' reports.
	w := partition.NewWaiter(partition.WakeDeleteRecords)
	defer w.Close()
	for _, wt := range waits {
		w.Watch(wt.p)
	}
	deadline := req.Received.Add(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
	for {
		done := true
		for _, wt := range waits {
			if wt.out.ErrorCode != 0 || wt.out.LowWatermark >= wt.target {
				continue
			}
			low, err := wt.p.LowWatermark()
			if err != nil {
				wt.out.ErrorCode = errorCode(err)
				continue
			}
			if low >= wt.target {
				wt.out.LowWatermark = low
				continue
			}
			done = false
		}
		if done {
			return resp, nil
		}
		if !w.Wait(ctx, deadline) {
			break
		}
	}
	for _, wt := range waits {
		if wt.out.ErrorCode == 0 && wt.out.LowWatermark < wt.target {
			wt.out.ErrorCode = kerr.RequestTimedOut.Code
			if low, err := wt.p.LowWatermark(); err == nil {
				wt.out.LowWatermark = low
			}
		}
	}
	return resp, nil
}
