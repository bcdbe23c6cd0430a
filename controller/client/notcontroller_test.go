package client

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNotControllerReassignments: the broker's controller client retries
// the reassignment APIs answered NOT_CONTROLLER (at the top, or for a
// partition) elsewhere instead of handing the answer back.
func TestNotControllerReassignments(t *testing.T) {
	nc := kerr.NotController.Code
	ar := kmsg.NewPtrAlterPartitionAssignmentsResponse()
	if notController(ar) {
		t.Error("a successful AlterPartitionReassignments answer is not NOT_CONTROLLER")
	}
	ar.ErrorCode = nc
	if !notController(ar) {
		t.Error("AlterPartitionReassignments top-level NOT_CONTROLLER")
	}
	ar.ErrorCode = 0
	rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
	rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
	rp.ErrorCode = nc
	rt.Partitions = append(rt.Partitions, rp)
	ar.Topics = append(ar.Topics, rt)
	if !notController(ar) {
		t.Error("AlterPartitionReassignments partition NOT_CONTROLLER")
	}
	lr := kmsg.NewPtrListPartitionReassignmentsResponse()
	if notController(lr) {
		t.Error("an empty ListPartitionReassignments answer is not NOT_CONTROLLER")
	}
	lr.ErrorCode = nc
	if !notController(lr) {
		t.Error("ListPartitionReassignments NOT_CONTROLLER")
	}
}
