package controller

// ListPartitionReassignments (key 46), v0 (KIP-455): the partitions being
// reassigned, each with its replicas (the target followed by the original
// replicas not in it), adding and removing replicas, answered from the
// active controller's image. Null topics: every partition being moved;
// otherwise the named partitions that are moving (unknown topics and
// partitions, and partitions not moving, are left out, as in Kafka). A
// topic is in the answer only with at least one such partition.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleListPartitionReassignments(_ context.Context, _ *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListPartitionReassignmentsRequest)
	return listReassignments(c.fsm.current(), r)
}

// listReassignments answers r from img. It is a pure function.
func listReassignments(img *image.Image, r *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	add := func(t *image.Topic, parts []int32) {
		ot := kmsg.NewListPartitionReassignmentsResponseTopic()
		ot.Topic = t.Name
		for _, part := range parts {
			if part < 0 || int(part) >= len(t.Partitions) {
				continue
			}
			p := t.Partitions[part]
			if !reassigning(p) || slices.ContainsFunc(ot.Partitions, func(o kmsg.ListPartitionReassignmentsResponseTopicPartition) bool {
				return o.Partition == part
			}) {
				continue
			}
			op := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			op.Partition = part
			op.Replicas = slices.Clone(p.Replicas)
			op.AddingReplicas = append([]int32{}, p.Adding...)
			op.RemovingReplicas = append([]int32{}, p.Removing...)
			ot.Partitions = append(ot.Partitions, op)
		}
		if len(ot.Partitions) > 0 {
			resp.Topics = append(resp.Topics, ot)
		}
	}
	if r.Topics == nil {
		for _, name := range img.TopicNames() {
			t := img.Topics[name]
			parts := make([]int32, len(t.Partitions))
			for i := range parts {
				parts[i] = int32(i)
			}
			add(t, parts)
		}
		return resp
	}
	for _, rt := range r.Topics {
		if t := img.Topics[rt.Topic]; t != nil {
			add(t, rt.Partitions)
		}
	}
	return resp
}
