package partition

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// batchImage is topic "t" (id 1) with one partition per ISR given, all
// with replicas 1,2,3, led by 1 at leader epoch 1 and partition epoch pe.
func batchImage(index uint64, pe int32, isrs ...[]int32) *image.Image {
	top := &image.Topic{Name: "t", ID: [16]byte{1}, Configs: map[string]string{"min.insync.replicas": "1"}}
	for i, isr := range isrs {
		top.Partitions = append(top.Partitions, &image.Partition{Partition: int32(i), Replicas: []int32{1, 2, 3},
			ISR: isr, Leader: testNode, LeaderEpoch: 1, PartitionEpoch: pe})
	}
	return testImage(index, top)
}

// sentPartitions lists the partitions a request carries, in order, as
// "partition:isr@partition-epoch".
func sentPartitions(t *testing.T, req *kmsg.AlterPartitionRequest) []string {
	t.Helper()
	var out []string
	for _, rt := range req.Topics {
		if rt.Topic != "t" || rt.TopicID != [16]byte{1} {
			t.Fatalf("request names topic %q %v", rt.Topic, rt.TopicID)
		}
		for _, rp := range rt.Partitions {
			var members []int32
			for _, m := range rp.NewEpochISR {
				members = append(members, m.BrokerID)
			}
			out = append(out, fmt.Sprintf("%d:%v@%d", rp.Partition, members, rp.PartitionEpoch))
		}
	}
	return out
}

// answerEach answers req partition by partition: code (0: accepted, the
// proposed ISR at partition epoch + 1) from codeOf; a partition codeOf
// marks skip is left out of the answer.
func (f *fakeController) answerEach(req *kmsg.AlterPartitionRequest, codeOf func(partition int32) (code int16, skip bool)) {
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = 3
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterPartitionResponseTopic()
		ot.TopidID = rt.TopicID
		for _, rp := range rt.Partitions {
			code, skip := codeOf(rp.Partition)
			if skip {
				continue
			}
			op := kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition, op.ErrorCode, op.LeaderID = rp.Partition, code, -1
			if code == 0 {
				op.LeaderID, op.LeaderEpoch, op.PartitionEpoch = testNode, rp.LeaderEpoch, rp.PartitionEpoch+1
				for _, m := range rp.NewEpochISR {
					op.ISR = append(op.ISR, m.BrokerID)
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	f.resps <- resp
}

// TestISRBatchOneRequest: many partitions whose followers fall out of sync
// at once are shrunk by ONE AlterPartition, and each adopts its answer.
func TestISRBatchOneRequest(t *testing.T) {
	const n = 200
	m, clock, fc := newISRTestManager(t)
	isrs := make([][]int32, n)
	for i := range isrs {
		isrs[i] = []int32{1, 2, 3}
	}
	m.ApplyImage(batchImage(1, 1, isrs...))
	for i := range n {
		if _, err := mustPartition(t, m, "t", int32(i)).AppendAsLeader(batchOf(1, 10), 1); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	req := fc.next(t)
	got := sentPartitions(t, req)
	if len(got) != n || len(req.Topics) != 1 {
		t.Fatalf("one request carries %d partitions in %d topics, want %d in 1", len(got), len(req.Topics), n)
	}
	for i, s := range got {
		if want := fmt.Sprintf("%d:[1]@1", i); s != want {
			t.Fatalf("partition %d sent %s, want %s", i, s, want)
		}
	}
	fc.answerEach(req, func(int32) (int16, bool) { return 0, false })
	for i := range n {
		p := mustPartition(t, m, "t", int32(i))
		waitUntil(t, "ISR adopted", func() bool { return p.State().PartitionEpoch == 2 })
		if st := p.State(); !slices.Equal(st.ISR, []int32{1}) || p.PendingISR() != nil {
			t.Fatalf("partition %d: %+v pending %v", i, st, p.PendingISR())
		}
	}
	fc.none(t)
	if sent := m.isr.sender.requests.Load(); sent != 1 {
		t.Fatalf("%d requests sent, want 1", sent)
	}
}

// TestISRBatchPerPartitionErrors: each partition of a batched request
// follows the single-partition rules for its own answer.
func TestISRBatchPerPartitionErrors(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	all := []int32{1, 2, 3}
	m.ApplyImage(batchImage(1, 1, all, all, all, all, all))
	parts := make([]*Partition, 5)
	for i := range parts {
		parts[i] = mustPartition(t, m, "t", int32(i))
		if _, err := parts[i].AppendAsLeader(batchOf(1, 10), 1); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	req := fc.next(t)
	if got := sentPartitions(t, req); len(got) != 5 {
		t.Fatalf("sent %v, want all 5", got)
	}
	// 0 accepted; 1 FENCED_LEADER_EPOCH (pending until metadata, no
	// retry); 2 INELIGIBLE_REPLICA (dropped, proposed again after the
	// backoff); 3 NOT_CONTROLLER (retried); 4 not named (retried).
	fc.answerEach(req, func(p int32) (int16, bool) {
		return []int16{0, kerr.FencedLeaderEpoch.Code, kerr.IneligibleReplica.Code, kerr.NotController.Code, 0}[p], p == 4
	})
	retry := fc.next(t)
	if got, want := sentPartitions(t, retry), []string{"3:[1]@1", "4:[1]@1"}; !slices.Equal(got, want) {
		t.Fatalf("retry carries %v, want %v", got, want)
	}
	if st := parts[0].State(); !slices.Equal(st.ISR, []int32{1}) || st.PartitionEpoch != 2 || parts[0].PendingISR() != nil {
		t.Fatalf("accepted partition: %+v pending %v", st, parts[0].PendingISR())
	}
	if parts[1].PendingISR() == nil || parts[1].State().PartitionEpoch != 1 {
		t.Fatal("FENCED_LEADER_EPOCH ended the pending change")
	}
	if parts[2].PendingISR() != nil || parts[2].State().PartitionEpoch != 1 {
		t.Fatal("INELIGIBLE_REPLICA kept the pending change")
	}
	// A whole-request failure is every carried change's: retried together.
	failed := kmsg.NewPtrAlterPartitionResponse()
	failed.ErrorCode = kerr.NotController.Code
	fc.resps <- failed
	retry = fc.next(t)
	if got, want := sentPartitions(t, retry), []string{"3:[1]@1", "4:[1]@1"}; !slices.Equal(got, want) {
		t.Fatalf("retry after a top-level error carries %v, want %v", got, want)
	}
	fc.answerEach(retry, func(int32) (int16, bool) { return 0, false })
	for _, i := range []int{3, 4} {
		waitUntil(t, "retried change adopted", func() bool { return parts[i].State().PartitionEpoch == 2 })
	}
	// Partition 1 sends nothing until metadata moves on; partition 2 is
	// proposed again only after its backoff.
	m.checkISRs()
	fc.none(t)
	clock.advance(time.Second)
	m.checkISRs()
	if got, want := sentPartitions(t, fc.next(t)), []string{"2:[1]@1"}; !slices.Equal(got, want) {
		t.Fatalf("after the backoff: %v, want %v", got, want)
	}
}

// TestISRBatchNextRequest: a change proposed while a request is in flight
// goes in the next request; a newer change of a partition in flight waits
// for it and replaces the old one.
func TestISRBatchNextRequest(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(batchImage(1, 1, []int32{1, 2, 3}, []int32{1, 2}))
	p0, p1 := mustPartition(t, m, "t", 0), mustPartition(t, m, "t", 1)
	if _, err := p0.AppendAsLeader(batchOf(1, 10), 1); err != nil {
		t.Fatal(err)
	}
	// Partition 0's followers are out of sync; partition 1 has no data,
	// so its follower 2 is not.
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	first := fc.next(t)
	if got, want := sentPartitions(t, first), []string{"0:[1]@1"}; !slices.Equal(got, want) {
		t.Fatalf("first request %v, want %v", got, want)
	}
	// In flight: replica 3 of partition 1 catches up (an expansion is
	// queued); then metadata ends both changes (partition epoch 2, ISR 1,2
	// for partition 0), and both propose again on it.
	if err := p1.UpdateFollowerFetchEpoch(3, 1, 0); err != nil {
		t.Fatal(err)
	}
	m.ApplyImage(batchImage(2, 2, []int32{1, 2}, []int32{1, 2}))
	if p0.PendingISR() != nil || p1.PendingISR() != nil {
		t.Fatal("metadata did not end the pending changes")
	}
	if err := p1.UpdateFollowerFetchEpoch(3, 1, 0); err != nil {
		t.Fatal(err)
	}
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	if p0.PendingISR() == nil || p1.PendingISR() == nil {
		t.Fatalf("pending: %v %v", p0.PendingISR(), p1.PendingISR())
	}
	// Nothing is sent while the first request is in flight.
	fc.none(t)
	// The old change of partition 0 asks for a retry: it is not sent again,
	// its newer change is.
	fc.answerEach(first, func(int32) (int16, bool) { return kerr.NotController.Code, false })
	second := fc.next(t)
	if got, want := sentPartitions(t, second), []string{"0:[1]@2", "1:[1 2 3]@2"}; !slices.Equal(got, want) {
		t.Fatalf("second request %v, want %v", got, want)
	}
	fc.answerEach(second, func(int32) (int16, bool) { return 0, false })
	waitUntil(t, "both adopted", func() bool {
		return p0.State().PartitionEpoch == 3 && p1.State().PartitionEpoch == 3
	})
	fc.none(t)
}

// TestISRSenderStopsOnClose: Close ends the sender whether it waits for
// work or for an answer; nothing is sent afterwards.
func TestISRSenderStopsOnClose(t *testing.T) {
	for _, inFlight := range []bool{false, true} {
		t.Run(fmt.Sprint("in flight ", inFlight), func(t *testing.T) {
			m, clock, fc := newISRTestManager(t)
			m.ApplyImage(batchImage(1, 1, []int32{1, 2, 3}))
			p := mustPartition(t, m, "t", 0)
			if _, err := p.AppendAsLeader(batchOf(1, 10), 1); err != nil {
				t.Fatal(err)
			}
			if inFlight {
				clock.advance(testLag + time.Millisecond)
				m.checkISRs()
				fc.next(t)
			}
			closed := make(chan error, 1)
			go func() { closed <- m.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not stop the AlterPartition sender")
			}
			m.isr.sender.enqueue(isrChange{p, &pendingISR{proposed: []int32{1}, epochs: []int64{1}}})
			fc.none(t)
		})
	}
}

// TestCheckISRsIdleAllocs: the shrink check over idle partitions (nothing
// to change) allocates nothing. testing.AllocsPerRun counts every
// goroutine's allocations, so the background check is kept from running
// (a long lag) and the least of a few measures is taken; an allocation per
// partition would show in each.
func TestCheckISRsIdleAllocs(t *testing.T) {
	const n = 200
	m, _, fc := newISRTestManagerLag(t, time.Hour)
	isrs := make([][]int32, n)
	for i := range isrs {
		isrs[i] = []int32{1, 2, 3}
	}
	m.ApplyImage(batchImage(1, 1, isrs...))
	m.checkISRs() // the first check gives every follower its state
	least := float64(n)
	for range 3 {
		least = min(least, testing.AllocsPerRun(10, m.checkISRs))
	}
	if least != 0 {
		t.Fatalf("checkISRs over %d idle partitions: %.0f allocations, want 0", n, least)
	}
	fc.none(t)
}
