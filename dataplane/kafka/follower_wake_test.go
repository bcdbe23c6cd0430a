package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// manualClock is the partition manager's clock, moved by the test.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newFollowerWakeHandlers returns handlers whose broker (node 1) leads
// w-0 (replicas and ISR {1, 2}) under a manual clock.
func newFollowerWakeHandlers(t *testing.T) (*Handlers, *manualClock) {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &manualClock{t: time.UnixMilli(1_700_000_000_000)}
	cfg := partition.DefaultConfig(node)
	cfg.Now = clock.now
	m, err := partition.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	img := image.New()
	img.Index = 1
	for _, b := range []int32{1, 2} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "10.0.0." + fmt.Sprint(b), Port: 9092, Epoch: 1}
	}
	img.Topics["w"] = &image.Topic{Name: "w", ID: [16]byte{3}, Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 3},
	}}
	m.ApplyImage(img)
	return &Handlers{Config: Config{NodeID: node, FetchMaxBytes: 50 << 20}, Partitions: m}, clock
}

// leadNewTopic applies an image in which this broker leads a new topic n
// with replicas {1, 2}.
func leadNewTopic(h *Handlers) {
	img := h.Partitions.Image().Clone()
	img.Index++
	img.Topics["n"] = &image.Topic{Name: "n", ID: [16]byte{4}, Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 0},
	}}
	h.Partitions.ApplyImage(img)
}

// replicaFetch sends follower 2's fetch with the session id and epoch,
// waiting up to maxWaitMs, and returns the answer.
func replicaFetch(t *testing.T, h *Handlers, id, epoch, maxWaitMs int32, parts ...fetchPart) *kmsg.FetchResponse {
	t.Helper()
	wr := fetchRequest(h, 13, maxWaitMs, 1, 1<<20, parts...)
	req := wr.Body.(*kmsg.FetchRequest)
	req.ReplicaID, req.SessionID, req.SessionEpoch = 2, id, epoch
	r, err := h.handleFetch(context.Background(), wr)
	if err != nil {
		t.Error(err)
		return nil
	}
	return resolveFetch(t, r)
}

// A follower's fetch parked at this leader on other partitions is answered
// as soon as an image makes this broker leader of a partition the follower
// replicates (issue 13), with and without a fetch session: the follower's
// next fetch then adds it, instead of waiting out MaxWait. Right after
// such a change, a follower fetch that does not name the partition yet
// (the follower's metadata is behind this broker's) parks only briefly.
func TestFollowerFetchAnsweredForNewPartition(t *testing.T) {
	const (
		maxWaitMs = 20_000
		within    = 5 * time.Second // well before MaxWait
	)
	for _, sessions := range []bool{true, false} {
		t.Run(fmt.Sprintf("sessions=%v", sessions), func(t *testing.T) {
			h, clock := newFollowerWakeHandlers(t)
			w0 := fetchPart{"w", 0, 0, 1 << 20, 3}
			id, epoch := int32(0), int32(-1)
			if sessions {
				h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
				resp := replicaFetch(t, h, 0, 0, 0, w0)
				if resp.ErrorCode != 0 || resp.SessionID == 0 {
					t.Fatalf("follower session: error %d id %d", resp.ErrorCode, resp.SessionID)
				}
				id, epoch = resp.SessionID, 1
			}
			fetchIdle := func() <-chan *kmsg.FetchResponse {
				done := make(chan *kmsg.FetchResponse, 1)
				var parts []fetchPart
				if !sessions {
					parts = []fetchPart{w0}
				}
				e := epoch
				go func() { done <- replicaFetch(t, h, id, e, maxWaitMs, parts...) }()
				if sessions {
					epoch++
				}
				return done
			}
			answered := func(what string, done <-chan *kmsg.FetchResponse) {
				t.Helper()
				select {
				case resp := <-done:
					if resp == nil || resp.ErrorCode != 0 {
						t.Fatalf("%s: %+v", what, resp)
					}
				case <-time.After(within):
					t.Fatalf("%s: not answered within %v (MaxWait %d ms)", what, within, maxWaitMs)
				}
			}

			// Long after the last change: the fetch parks for MaxWait.
			clock.add(time.Hour)
			done := fetchIdle()
			deadline := time.Now().Add(within)
			for h.Partitions.FollowerFetchesWatching(2) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the follower's fetch never started")
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case resp := <-done:
				t.Fatalf("idle fetch answered before any change: %+v", resp)
			default:
			}

			// This broker becomes leader of n-0, replicas {1, 2}.
			leadNewTopic(h)
			answered("parked fetch after the change", done)

			// The follower has not learned of n-0 yet: its next fetch
			// parks briefly.
			answered("fetch right after the change", fetchIdle())
			if n := h.Partitions.FollowerFetchesWatching(2); n != 0 {
				t.Fatalf("%d follower fetches still watching", n)
			}
		})
	}
}

// A follower's fetch that parked and is woken by new records at a steady
// rate is held for Config.ReplicaFetchLinger, so its answer carries the
// records that arrive meanwhile; one that parked long (records arrive
// seldom) is answered at once. Both with and without a fetch session.
func TestFollowerFetchLinger(t *testing.T) {
	const (
		linger    = 300 * time.Millisecond
		maxWaitMs = 20_000
	)
	for _, sessions := range []bool{true, false} {
		t.Run(fmt.Sprintf("sessions=%v", sessions), func(t *testing.T) {
			h, clock := newFollowerWakeHandlers(t)
			h.Config.ReplicaFetchLinger = linger
			clock.add(time.Hour) // long after the last change of leaders
			next := int64(0)     // the follower's fetch offset
			id, epoch := int32(0), int32(-1)
			if sessions {
				h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
				resp := replicaFetch(t, h, 0, 0, 0, fetchPart{"w", 0, 0, 1 << 20, 3})
				if resp.ErrorCode != 0 || resp.SessionID == 0 {
					t.Fatalf("follower session: error %d id %d", resp.ErrorCode, resp.SessionID)
				}
				id, epoch = resp.SessionID, 1
			}
			// parked sends the follower's fetch from next and returns once
			// it is parked.
			parked := func() <-chan *kmsg.FetchResponse {
				t.Helper()
				done := make(chan *kmsg.FetchResponse, 1)
				part := fetchPart{"w", 0, next, 1 << 20, 3}
				e := epoch
				go func() { done <- replicaFetch(t, h, id, e, maxWaitMs, part) }()
				if sessions {
					epoch++
				}
				deadline := time.Now().Add(5 * time.Second)
				for _, fetches := h.Purgatory(); fetches == 0; _, fetches = h.Purgatory() {
					if time.Now().After(deadline) {
						t.Fatal("the follower's fetch never parked")
					}
					time.Sleep(time.Millisecond)
				}
				return done
			}
			batches := func(resp *kmsg.FetchResponse) []int64 {
				t.Helper()
				if resp == nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
					t.Fatalf("answer: %+v", resp)
				}
				offsets := batchOffsets(t, resp.Topics[0].Partitions[0].RecordBatches)
				next += int64(len(offsets))
				return offsets
			}

			// Records arrive right after the fetch parked, and more a
			// tenth of the linger later: one answer carries both.
			done := parked()
			produce(t, h, 9, 1, 1000, "w", 0, batch(1, 10))
			time.Sleep(linger / 10) // the second request's arrival, not a wait for a condition
			select {
			case resp := <-done:
				t.Fatalf("answered before the linger ended, with batches %v", batches(resp))
			default:
			}
			produce(t, h, 9, 1, 1000, "w", 0, batch(1, 10))
			select {
			case resp := <-done:
				if got := batches(resp); len(got) != 2 {
					t.Fatalf("lingered answer has batches %v, want both", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("lingering fetch not answered")
			}

			// Records after a long park (longer than lingerBusyFactor
			// lingers): answered at once.
			done = parked()
			time.Sleep(lingerBusyFactor*linger + linger/10) // an idle spell, not a wait for a condition
			start := time.Now()
			produce(t, h, 9, 1, 1000, "w", 0, batch(1, 10))
			select {
			case resp := <-done:
				if got := batches(resp); len(got) != 1 {
					t.Fatalf("answer after an idle spell has batches %v", got)
				}
				if d := time.Since(start); d >= linger {
					t.Fatalf("answered %v after the records of an idle spell, not at once", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("fetch after an idle spell not answered")
			}
		})
	}
}
