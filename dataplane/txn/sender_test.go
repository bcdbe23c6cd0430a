package txn

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSenderRetriesWithNewLeader: a partition whose leader refuses the
// marker (NOT_LEADER_OR_FOLLOWER) gets it again from the leader the
// metadata names next; markers for one broker go in one request; a
// deleted topic's marker is dropped.
func TestSenderRetriesWithNewLeader(t *testing.T) {
	var mu sync.Mutex
	leaders := map[TopicPartition]int32{{"t", 0}: 1, {"t", 1}: 1, {"u", 0}: 2}
	requests := map[int32]int{}
	written := map[TopicPartition]int32{}
	s := NewSender(SenderConfig{
		Leader: func(tp TopicPartition) (int32, bool) {
			mu.Lock()
			defer mu.Unlock()
			if tp.Topic == "gone" {
				return -1, false
			}
			return leaders[tp], true
		},
		Send: func(ctx context.Context, broker int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			requests[broker]++
			resp := kmsg.NewPtrWriteTxnMarkersResponse()
			for _, m := range req.Markers {
				rm := kmsg.NewWriteTxnMarkersResponseMarker()
				rm.ProducerID = m.ProducerID
				for _, rt := range m.Topics {
					t := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
					t.Topic = rt.Topic
					for _, p := range rt.Partitions {
						tp := TopicPartition{rt.Topic, p}
						rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
						rp.Partition = p
						if tp == (TopicPartition{"t", 1}) && broker == 1 {
							// Leadership moved to broker 3.
							rp.ErrorCode = kerr.NotLeaderForPartition.Code
							leaders[tp] = 3
						} else {
							written[tp] = broker
						}
						t.Partitions = append(t.Partitions, rp)
					}
					rm.Topics = append(rm.Topics, t)
				}
				resp.Markers = append(resp.Markers, rm)
			}
			return resp, nil
		},
		Backoff: time.Millisecond,
	})
	defer s.Close()
	done := make(chan error, 1)
	s.Enqueue(&MarkerJob{TransactionalID: "x", ProducerID: 5, ProducerEpoch: 1, Commit: true, CoordinatorEpoch: 3,
		Partitions: []TopicPartition{{"t", 0}, {"t", 1}, {"u", 0}, {"gone", 0}}, Ctx: context.Background()},
		func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("markers not written")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[TopicPartition]int32{{"t", 0}: 1, {"t", 1}: 3, {"u", 0}: 2}
	for tp, b := range want {
		if written[tp] != b {
			t.Errorf("%v written by broker %d, want %d", tp, written[tp], b)
		}
	}
	if requests[1] != 1 || requests[2] != 1 || requests[3] != 1 {
		t.Errorf("requests per broker: %v", requests)
	}
	if s.MarkersWritten() != 3 {
		t.Errorf("markers written: %d", s.MarkersWritten())
	}
}
