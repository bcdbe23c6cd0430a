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
			return answerMarkers(req, func(tp TopicPartition) int16 {
				if tp == (TopicPartition{"t", 1}) && broker == 1 {
					// Leadership moved to broker 3.
					leaders[tp] = 3
					return kerr.NotLeaderForPartition.Code
				}
				written[tp] = broker
				return 0
			}), nil
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

// TestSenderHungBrokerDelaysOnlyItself: while broker 2 holds a request
// without answering, the markers of a transaction on broker 1 alone are
// still written at once, and broker 2 gets no second request.
func TestSenderHungBrokerDelaysOnlyItself(t *testing.T) {
	var mu sync.Mutex
	inFlight := map[int32]int{}
	maxInFlight := map[int32]int{}
	hung := make(chan struct{}, 1)
	s := NewSender(SenderConfig{
		Leader: func(tp TopicPartition) (int32, bool) {
			if tp.Topic == "slow" {
				return 2, true
			}
			return 1, true
		},
		Send: func(ctx context.Context, broker int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
			mu.Lock()
			inFlight[broker]++
			maxInFlight[broker] = max(maxInFlight[broker], inFlight[broker])
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFlight[broker]--
				mu.Unlock()
			}()
			if broker == 2 {
				select {
				case hung <- struct{}{}:
				default:
				}
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return answerMarkers(req, func(TopicPartition) int16 { return 0 }), nil
		},
		Backoff: time.Millisecond,
		// Far beyond the wait below: broker 2's request never ends in it.
		RequestTimeout: time.Minute,
	})
	defer s.Close()
	enqueue := func(pid int64, tps ...TopicPartition) chan error {
		done := make(chan error, 1)
		s.Enqueue(&MarkerJob{TransactionalID: "x", ProducerID: pid, ProducerEpoch: 1, Commit: true,
			Partitions: tps, Ctx: context.Background()}, func(err error) { done <- err })
		return done
	}
	enqueue(1, TopicPartition{"t", 0}, TopicPartition{"slow", 0})
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("no request to broker 2")
	}
	enqueue(2, TopicPartition{"slow", 1})
	done := enqueue(3, TopicPartition{"t", 1}, TopicPartition{"t", 2})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("markers on broker 1 wait for the hung broker 2")
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight[2] != 1 {
		t.Errorf("requests in flight to broker 2 at once: %d, want 1", maxInFlight[2])
	}
}

// answerMarkers answers req with code(tp) for each of its partitions.
func answerMarkers(req *kmsg.WriteTxnMarkersRequest, code func(tp TopicPartition) int16) *kmsg.WriteTxnMarkersResponse {
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, rt := range m.Topics {
			t := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				rp.ErrorCode = code(TopicPartition{rt.Topic, p})
				t.Partitions = append(t.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, t)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp
}
