package partition

import (
	"errors"
	"testing"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// TestDeleteRecordsLowWatermark: DeleteRecords moves the leader's log
// start (-1: to the HW; past the HW it is out of range; a compacted topic
// refuses); the low watermark waits for every in-sync follower's report
// and takes an out-of-sync follower's while it fetches.
func TestDeleteRecordsLowWatermark(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1,
		testTopic("t", 1, 1, testNode, 1, []int32{testNode, 2}, nil),
		testTopic("c", 2, 1, testNode, 1, []int32{testNode}, map[string]string{"cleanup.policy": "compact,delete"}),
	))
	p := mustPartition(t, m, "t", 0)
	// Replica 3 is assigned but out of sync.
	img := *m.Image()
	img.Index++
	tt := *img.Topics["t"]
	pp := *tt.Partitions[0]
	pp.Replicas = []int32{testNode, 2, 3}
	tt.Partitions = []*image.Partition{&pp}
	img.Topics = map[string]*image.Topic{"t": &tt, "c": img.Topics["c"]}
	m.ApplyImage(&img)
	for range 10 {
		if _, err := p.AppendAsLeader(batchOf(1, 50), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpdateFollowerFetchSession(2, -1, 10, 0, nil); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("hw %d, want 10", hw)
	}
	if _, err := p.DeleteRecords(11); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("past the HW: %v", err)
	}
	if _, err := mustPartition(t, m, "c", 0).DeleteRecords(0); !errors.Is(err, ErrPolicyViolation) {
		t.Fatalf("compact,delete: %v", err)
	}
	got, err := p.DeleteRecords(4)
	if err != nil || got != 4 || p.Log().LogStartOffset() != 4 {
		t.Fatalf("delete before 4: %d %v, log start %d", got, err, p.Log().LogStartOffset())
	}
	low := func() int64 {
		t.Helper()
		l, err := p.LowWatermark()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := low(); l != 0 {
		t.Fatalf("low watermark %d before the in-sync follower took the start, want 0", l)
	}
	// The out-of-sync replica 3 fetches, still at 0: it counts.
	if _, err := p.UpdateFollowerFetchSession(3, -1, 2, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpdateFollowerFetchSession(2, -1, 10, 4, nil); err != nil {
		t.Fatal(err)
	}
	if l := low(); l != 0 {
		t.Fatalf("low watermark %d with replica 3 fetching from 0, want 0", l)
	}
	if _, err := p.UpdateFollowerFetchSession(3, -1, 2, 4, nil); err != nil {
		t.Fatal(err)
	}
	if l := low(); l != 4 {
		t.Fatalf("low watermark %d, want 4", l)
	}
	got, err = p.DeleteRecords(-1)
	if err != nil || got != 10 || p.Log().LogStartOffset() != 10 {
		t.Fatalf("delete before the HW: %d %v, log start %d", got, err, p.Log().LogStartOffset())
	}
}
