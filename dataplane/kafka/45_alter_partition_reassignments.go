package kafka

// AlterPartitionReassignments (API key 45), versions 0-1 (KIP-455).
//
//   - Forwarded to the active controller, which validates and records the
//     reassignments (or cancellations: null replicas) in the metadata log
//     and answers per partition with Kafka's codes
//     (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT,
//     NO_REASSIGNMENT_IN_PROGRESS, INVALID_REPLICATION_FACTOR, ...).
//   - Then, unless TimeoutMillis <= 0, the broker waits (bounded by
//     TimeoutMillis) until its own image shows each accepted partition
//     moving to its target (or already there), or, for a cancellation, no
//     longer moving, so the client's next Metadata request here sees it.
//   - Controller unreachable within the timeout: REQUEST_TIMED_OUT (or
//     NOT_CONTROLLER) per partition and at the top.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleAlterPartitionReassignments(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AlterPartitionAssignmentsRequest)
	version := r.Version
	fctx, cancel, wait := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	resp, err := h.forward(fctx, r)
	var ar *kmsg.AlterPartitionAssignmentsResponse
	if err == nil {
		var ok bool
		if ar, ok = resp.(*kmsg.AlterPartitionAssignmentsResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("alter partition reassignments: forwarding to the controller failed", "error", err)
		return alterReassignmentsError(r, forwardErrorCode(err), err.Error()), nil
	}
	ar.SetVersion(version)
	if !wait {
		return ar, nil
	}
	// What each accepted partition should show: its target, or nil for a
	// cancellation.
	type tp struct {
		topic     string
		partition int32
	}
	asked := map[tp][]int32{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			asked[tp{rt.Topic, rp.Partition}] = rp.Replicas
		}
	}
	want := map[tp][]int32{}
	for _, t := range ar.Topics {
		for _, p := range t.Partitions {
			if target, ok := asked[tp{t.Topic, p.Partition}]; ok && p.ErrorCode == 0 {
				want[tp{t.Topic, p.Partition}] = target
			}
		}
	}
	if len(want) == 0 {
		return ar, nil
	}
	if _, ok := h.waitImage(fctx, func(img *image.Image) bool {
		for k, target := range want {
			if !reassignmentVisible(img, k.topic, k.partition, target) {
				return false
			}
		}
		return true
	}); !ok {
		h.dataLog().Warn("alter partition reassignments: recorded, but not yet in this broker's metadata", "partitions", len(want))
	}
	return ar, nil
}

// reassignmentVisible says img shows the partition moving to target (its
// replicas other than the removing ones are target: moving, or done), or,
// for a nil target (a cancellation), not moving. A partition deleted
// meanwhile counts as visible.
func reassignmentVisible(img *image.Image, topic string, partition int32, target []int32) bool {
	p := img.Partition(topic, partition)
	if p == nil {
		return img.Topics[topic] == nil
	}
	if target == nil {
		return len(p.Adding) == 0 && len(p.Removing) == 0
	}
	var moving []int32
	for _, r := range p.Replicas {
		if !slices.Contains(p.Removing, r) {
			moving = append(moving, r)
		}
	}
	return slices.Equal(moving, target)
}

// alterReassignmentsError answers every partition of r with code, and the
// top level too.
func alterReassignmentsError(r *kmsg.AlterPartitionAssignmentsRequest, code int16, msg string) *kmsg.AlterPartitionAssignmentsResponse {
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	resp.ErrorCode, resp.ErrorMessage = code, stringPtr(msg)
	for _, rt := range r.Topics {
		t := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			p.Partition = rp.Partition
			p.ErrorCode, p.ErrorMessage = code, stringPtr(msg)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
