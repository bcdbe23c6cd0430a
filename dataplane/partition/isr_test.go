package partition

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeController hands each AlterPartition to the test and answers with
// what the test sends back.
type fakeController struct {
	reqs  chan *kmsg.AlterPartitionRequest
	resps chan *kmsg.AlterPartitionResponse
}

func (f *fakeController) alter(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	select {
	case f.reqs <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-f.resps:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next returns the next request sent, failing after a deadline.
func (f *fakeController) next(t *testing.T) *kmsg.AlterPartitionRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no AlterPartition sent")
		return nil
	}
}

// none checks that no request is being sent.
func (f *fakeController) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-f.reqs:
		t.Fatalf("unexpected AlterPartition: %+v", r.Topics[0].Partitions[0])
	case <-time.After(20 * time.Millisecond):
	}
}

func (f *fakeController) answer(code int16, leaderEpoch, partitionEpoch int32, isr ...int32) {
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = 3
	rt := kmsg.NewAlterPartitionResponseTopic()
	rt.Topic, rt.TopidID = "t", [16]byte{1}
	rp := kmsg.NewAlterPartitionResponseTopicPartition()
	rp.ErrorCode, rp.LeaderID, rp.LeaderEpoch, rp.PartitionEpoch, rp.ISR = code, testNode, leaderEpoch, partitionEpoch, isr
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	f.resps <- resp
}

const testLag = 2 * time.Second

func newISRTestManager(t *testing.T) (*Manager, *fakeClock, *fakeController) {
	t.Helper()
	return newISRTestManagerLag(t, testLag)
}

// newISRTestManagerLag is newISRTestManager with replica.lag.time.max lag
// (the background shrink check runs every lag/2 of real time).
func newISRTestManagerLag(t *testing.T, lag time.Duration) (*Manager, *fakeClock, *fakeController) {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
	fc := &fakeController{reqs: make(chan *kmsg.AlterPartitionRequest), resps: make(chan *kmsg.AlterPartitionResponse)}
	cfg := DefaultConfig(testNode)
	cfg.Now = clock.now
	cfg.ReplicaLagTimeMax = lag
	cfg.AlterPartition = fc.alter
	cfg.BrokerEpoch = func() int64 { return 1 }
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, clock, fc
}

// isrImage is topic "t" (id 1), one partition, replicas 1,2,3, led by 1.
func isrImage(index uint64, leaderEpoch, partitionEpoch int32, isr []int32, minISR string) *image.Image {
	top := &image.Topic{Name: "t", ID: [16]byte{1}, Configs: map[string]string{"min.insync.replicas": minISR},
		Partitions: []*image.Partition{{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: isr, Leader: testNode,
			LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch}}}
	return testImage(index, top)
}

type sentISR struct {
	leaderEpoch, partitionEpoch int32
	members                     []int32
	epochs                      []int64
}

func decode(req *kmsg.AlterPartitionRequest) sentISR {
	rp := req.Topics[0].Partitions[0]
	out := sentISR{leaderEpoch: rp.LeaderEpoch, partitionEpoch: rp.PartitionEpoch}
	for _, m := range rp.NewEpochISR {
		out.members = append(out.members, m.BrokerID)
		out.epochs = append(out.epochs, m.BrokerEpoch)
	}
	return out
}

func TestISRShrinkTiming(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2, 3}, "2"))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(5, 10), 1); err != nil {
		t.Fatal(err)
	}
	// t0+1.9s: both fetch up to the log end (5): caught up.
	clock.advance(1900 * time.Millisecond)
	for _, f := range []int32{2, 3} {
		if err := p.UpdateFollowerFetchEpoch(f, 1, 5); err != nil {
			t.Fatal(err)
		}
	}
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d, want 5", hw)
	}
	if _, err := p.AppendAsLeader(batchOf(3, 10), 1); err != nil { // LEO 8
		t.Fatal(err)
	}
	// t0+3s: 2 fetches again from 5: it reached the log end of its previous
	// fetch, so it counts as caught up as of then (1.9s). 3 does not fetch.
	clock.advance(1100 * time.Millisecond)
	if err := p.UpdateFollowerFetchEpoch(2, 1, 5); err != nil {
		t.Fatal(err)
	}
	// t0+3.9s: neither has been behind for more than 2s.
	clock.advance(900 * time.Millisecond)
	m.checkISRs()
	fc.none(t)
	// t0+4.0s: both are past the limit (caught up last at 1.9s).
	clock.advance(110 * time.Millisecond)
	m.checkISRs()
	got := decode(fc.next(t))
	if got.leaderEpoch != 1 || got.partitionEpoch != 1 || !slices.Equal(got.members, []int32{1}) {
		t.Fatalf("shrink sent %+v, want ISR [1] at epochs 1/1", got)
	}
	// One change in flight: another check sends nothing.
	m.checkISRs()
	fc.none(t)
	// While the shrink is pending the larger ISR counts: 2 catching up to
	// 8 does not move the HW past 3's 5.
	if err := p.UpdateFollowerFetchEpoch(2, 1, 8); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d during a pending shrink, want 5", hw)
	}
	// The controller commits ISR [1]: below min.insync.replicas=2, so
	// acks=all is refused and the HW does not move.
	fc.answer(0, 1, 2, 1)
	waitUntil(t, "ISR adopted", func() bool { return p.State().PartitionEpoch == 2 })
	if st := p.State(); !slices.Equal(st.ISR, []int32{1}) {
		t.Fatalf("ISR %v, want [1]", st.ISR)
	}
	if _, err := p.AppendAsLeader(batchOf(1, 10), -1); err != ErrNotEnoughReplicas {
		t.Fatalf("acks=all with ISR [1]: %v", err)
	}
	// An older image (partition epoch 1) does not move the ISR back.
	m.ApplyImage(isrImage(2, 1, 1, []int32{1, 2, 3}, "2"))
	if st := p.State(); !slices.Equal(st.ISR, []int32{1}) || st.PartitionEpoch != 2 {
		t.Fatalf("stale image applied: %+v", st)
	}
}

func TestISRExpansion(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2}, "1"))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(5, 10), 1); err != nil {
		t.Fatal(err)
	}
	_ = p.UpdateFollowerFetchEpoch(2, 1, 3)
	// A new leader epoch starts at offset 5 while the HW is 3.
	m.ApplyImage(isrImage(2, 2, 2, []int32{1, 2}, "1"))
	if st := p.State(); st.LeaderEpochStartOffset != 5 || p.HighWatermark() != 3 {
		t.Fatalf("state %+v hw %d", st, p.HighWatermark())
	}
	_ = p.UpdateFollowerFetchEpoch(2, 1, 3)
	// 3 at 4: past the HW but not the leader epoch's start (KAFKA-7128).
	_ = p.UpdateFollowerFetchEpoch(3, 1, 4)
	fc.none(t)
	// At 5 but with another broker epoch than its registration's: no.
	_ = p.UpdateFollowerFetchEpoch(3, 7, 5)
	fc.none(t)
	// Fenced in the image: no.
	img := isrImage(3, 2, 2, []int32{1, 2}, "1")
	img.Brokers[3].Fenced = true
	m.ApplyImage(img)
	_ = p.UpdateFollowerFetchEpoch(3, 1, 5)
	fc.none(t)
	m.ApplyImage(isrImage(4, 2, 2, []int32{1, 2}, "1"))

	// Eligible: the expansion goes out with every member's broker epoch.
	_ = p.UpdateFollowerFetchEpoch(3, 1, 5)
	got := decode(fc.next(t))
	if got.leaderEpoch != 2 || got.partitionEpoch != 2 || !slices.Equal(got.members, []int32{1, 2, 3}) ||
		!slices.Equal(got.epochs, []int64{1, 1, 1}) {
		t.Fatalf("expansion sent %+v", got)
	}
	// The newcomer counts at once: with 2 at 5 too, the HW is 5; an append
	// is not committed until 3 has it as well.
	_ = p.UpdateFollowerFetchEpoch(2, 1, 5)
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d, want 5", hw)
	}
	if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil { // LEO 7
		t.Fatal(err)
	}
	_ = p.UpdateFollowerFetchEpoch(2, 1, 7)
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d with the pending newcomer at 5, want 5", hw)
	}
	// Refused as ineligible: back to the committed ISR; proposed again
	// only after the retry backoff.
	fc.answer(kerr.IneligibleReplica.Code, 2, 2)
	waitUntil(t, "pending dropped", func() bool { return p.PendingISR() == nil })
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d", hw)
	}
	_ = p.UpdateFollowerFetchEpoch(3, 1, 7)
	fc.none(t)
	clock.advance(time.Second)
	_ = p.UpdateFollowerFetchEpoch(3, 1, 7)
	fc.next(t)
	// A transient error is retried (same change), then it commits.
	fc.answer(kerr.NotController.Code, 2, 2)
	fc.next(t)
	fc.answer(0, 2, 3, 1, 2, 3)
	waitUntil(t, "ISR adopted", func() bool { return p.State().PartitionEpoch == 3 })
	if st := p.State(); !slices.Equal(st.ISR, []int32{1, 2, 3}) || p.PendingISR() != nil {
		t.Fatalf("after expansion: %+v pending %v", st, p.PendingISR())
	}
	if hw := p.HighWatermark(); hw != 7 {
		t.Fatalf("hw %d, want 7", hw)
	}
}

func TestISRChangeEndedByMetadata(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2, 3}, "1"))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil {
		t.Fatal(err)
	}
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	if got := decode(fc.next(t)); !slices.Equal(got.members, []int32{1}) {
		t.Fatalf("shrink %+v", got)
	}
	// Fenced leader epoch: no retry; the change stays pending (the HW keeps
	// the larger ISR) until metadata moves on.
	fc.answer(kerr.FencedLeaderEpoch.Code, 1, 1)
	fc.none(t)
	if p.PendingISR() == nil {
		t.Fatal("pending change dropped on FENCED_LEADER_EPOCH")
	}
	m.ApplyImage(isrImage(2, 1, 2, []int32{1, 2}, "1"))
	if p.PendingISR() != nil {
		t.Fatal("newer partition epoch did not end the pending change")
	}
	if st := p.State(); !slices.Equal(st.ISR, []int32{1, 2}) || st.PartitionEpoch != 2 {
		t.Fatalf("state %+v", st)
	}
	// A stale answer (not newer than our partition epoch) is ignored.
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	fc.next(t)
	fc.answer(0, 1, 2, 1, 3)
	waitUntil(t, "pending dropped", func() bool { return p.PendingISR() == nil })
	if st := p.State(); !slices.Equal(st.ISR, []int32{1, 2}) || st.PartitionEpoch != 2 {
		t.Fatalf("stale answer adopted: %+v", st)
	}
}

// A follower's fetch session skips unchanged partitions: each of its fetches
// counts as a caught-up time for a partition whose last read by the session
// reached the log end, and no longer once a read finds the follower behind.
func TestISRSessionClock(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2, 3}, "1"))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(5, 10), 1); err != nil {
		t.Fatal(err)
	}
	t0 := clock.now()
	var s2, s3 SessionClock
	// t0+0.1s: both read up to the log end in their sessions.
	clock.advance(100 * time.Millisecond)
	for f, s := range map[int32]*SessionClock{2: &s2, 3: &s3} {
		if _, err := p.UpdateFollowerFetchSession(f, 1, 5, -1, s); err != nil {
			t.Fatal(err)
		}
	}
	// 2's session goes on fetching (skipping the idle partition) until
	// t0+3s; 3's stops.
	s2.Set(t0.Add(3 * time.Second))
	clock.advance(3400 * time.Millisecond)
	if _, err := p.AppendAsLeader(batchOf(3, 10), 1); err != nil { // LEO 8
		t.Fatal(err)
	}
	// t0+4s: 3 was last caught up at 0.1s, 2 at 3s (its session's fetch).
	clock.advance(500 * time.Millisecond)
	m.checkISRs()
	if got := decode(fc.next(t)); !slices.Equal(got.members, []int32{1, 2}) {
		t.Fatalf("shrink sent %+v, want ISR [1 2]", got)
	}
	fc.answer(0, 1, 2, 1, 2)
	waitUntil(t, "ISR adopted", func() bool { return p.State().PartitionEpoch == 2 })
	// t0+4.1s: 2's session reads the changed partition from 5: behind.
	clock.advance(100 * time.Millisecond)
	if _, err := p.UpdateFollowerFetchSession(2, 1, 5, -1, &s2); err != nil {
		t.Fatal(err)
	}
	s2.Set(t0.Add(5 * time.Second))
	// t0+5.2s: caught up last at 3s; the session's later fetches do not
	// count while it is behind.
	clock.advance(1100 * time.Millisecond)
	m.checkISRs()
	if got := decode(fc.next(t)); !slices.Equal(got.members, []int32{1}) {
		t.Fatalf("shrink sent %+v, want ISR [1]", got)
	}
}

// An AlterPartition answer that moves leadership away (the controller
// completed a reassignment in the same change: the newcomer leads in a new
// leader epoch) must not end the pending expansion before metadata does:
// until this broker learns it no longer leads, the high watermark keeps
// counting the newcomer, or it would acknowledge records the new leader
// does not have (TestReassignBrokerRestart lost 235 acknowledged records).
func TestISRAnswerMovingLeadershipKeepsMaximalISR(t *testing.T) {
	m, _, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2}, "1"))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(5, 10), 1); err != nil {
		t.Fatal(err)
	}
	_ = p.UpdateFollowerFetchEpoch(2, 1, 5)
	_ = p.UpdateFollowerFetchEpoch(3, 1, 5) // caught up: expansion
	if got := decode(fc.next(t)); !slices.Equal(got.members, []int32{1, 2, 3}) {
		t.Fatalf("expansion %+v", got)
	}
	// The controller commits ISR [2 3] with 3 leading in leader epoch 2.
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = 3
	rt := kmsg.NewAlterPartitionResponseTopic()
	rt.Topic, rt.TopidID = "t", [16]byte{1}
	rp := kmsg.NewAlterPartitionResponseTopicPartition()
	rp.LeaderID, rp.LeaderEpoch, rp.PartitionEpoch, rp.ISR = 3, 2, 2, []int32{2, 3}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	fc.resps <- resp
	// Metadata has not arrived: this broker still takes writes as leader.
	waitUntil(t, "answer handled", func() bool { return m.isr.sender.answered.Load() == 1 })
	if _, err := p.AppendAsLeader(batchOf(3, 10), 1); err != nil { // LEO 8
		t.Fatal(err)
	}
	_ = p.UpdateFollowerFetchEpoch(2, 1, 8)
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw %d after the answer electing 3 (which has 5), want 5", hw)
	}
	// Metadata moves on: this broker follows; nothing past 5 was committed.
	img := isrImage(2, 2, 2, []int32{2, 3}, "1")
	img.Topics["t"].Partitions[0].Leader = 3
	m.ApplyImage(img)
	if p.PendingISR() != nil {
		t.Fatal("pending change kept after the new leader epoch")
	}
}
