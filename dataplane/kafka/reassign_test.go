package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// TestReassignmentsWithoutController: API 45 answers every partition and
// the top level NOT_CONTROLLER, API 46 the top level, at every version.
func TestReassignmentsWithoutController(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.TimeoutMillis = 1000
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = "t"
		for _, replicas := range [][]int32{{1, 2}, nil} {
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Replicas = replicas
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := h.handleAlterPartitionReassignments(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		ar := resp.(*kmsg.AlterPartitionAssignmentsResponse)
		if ar.ErrorCode != kerr.NotController.Code || len(ar.Topics) != 1 || len(ar.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, ar)
		}
		for _, p := range ar.Topics[0].Partitions {
			if p.ErrorCode != kerr.NotController.Code {
				t.Fatalf("v%d: partition code %d", v, p.ErrorCode)
			}
		}
	}
	lreq := kmsg.NewPtrListPartitionReassignmentsRequest()
	lreq.TimeoutMillis = 1000
	resp, err := h.handleListPartitionReassignments(context.Background(), request(lreq, 0))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, resp, 0)
	if lr := resp.(*kmsg.ListPartitionReassignmentsResponse); lr.ErrorCode != kerr.NotController.Code {
		t.Fatalf("list: %+v", lr)
	}
}

func TestReassignmentVisible(t *testing.T) {
	img := image.New()
	img.Topics["t"] = &image.Topic{Name: "t", Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{2, 3, 4, 1}, ISR: []int32{1, 2, 3}, Leader: 1, Adding: []int32{4}, Removing: []int32{1}},
		{Partition: 1, Replicas: []int32{2, 3, 4}, ISR: []int32{2, 3, 4}, Leader: 2},
	}}
	for _, tc := range []struct {
		topic     string
		partition int32
		target    []int32
		want      bool
	}{
		{"t", 0, []int32{2, 3, 4}, true}, // moving to it
		{"t", 1, []int32{2, 3, 4}, true}, // there
		{"t", 0, []int32{2, 3}, false},   // another move
		{"t", 0, nil, false},             // a cancel not applied yet
		{"t", 1, nil, true},              // cancelled (or done)
		{"gone", 0, []int32{1}, true},    // deleted meanwhile
		{"t", 9, []int32{1}, false},      // not there yet
	} {
		if got := reassignmentVisible(img, tc.topic, tc.partition, tc.target); got != tc.want {
			t.Errorf("%s-%d %v: %v, want %v", tc.topic, tc.partition, tc.target, got, tc.want)
		}
	}

	list := func(parts ...int32) *kmsg.ListPartitionReassignmentsResponse {
		r := kmsg.NewPtrListPartitionReassignmentsResponse()
		if len(parts) > 0 {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = "t"
			for _, p := range parts {
				rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
				rp.Partition = p
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	all := kmsg.NewPtrListPartitionReassignmentsRequest()
	named := kmsg.NewPtrListPartitionReassignmentsRequest()
	rt := kmsg.NewListPartitionReassignmentsRequestTopic()
	rt.Topic, rt.Partitions = "t", []int32{1}
	named.Topics = append(named.Topics, rt)
	if !movesAgree(img, all, list(0)) || !movesAgree(img, all, list(0, 1)) {
		t.Error("a listed move must agree, whatever the image shows of it")
	}
	if movesAgree(img, all, list()) {
		t.Error("a move the answer leaves out must wait for the image")
	}
	if !movesAgree(img, named, list()) {
		t.Error("partitions not asked about do not matter")
	}
}
