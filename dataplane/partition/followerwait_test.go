package partition

import (
	"sync"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// signaled says whether ch holds a signal, and takes it.
func signaled(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A follower fetch watching its follower (FollowerWatch) is told when an
// image makes this broker leader of a partition the follower replicates
// (a new partition, a leadership move), or gives a led partition that
// follower as a new replica; never by images that change nothing it must
// fetch from here.
func TestFollowerWatchTold(t *testing.T) {
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &testClock{t: time.UnixMilli(1_700_000_000_000)}
	cfg := DefaultConfig(testNode)
	cfg.Now = clock.now
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	type watch struct {
		ch chan struct{}
		w  *FollowerWatch
	}
	watchBoth := func() map[int32]watch {
		out := map[int32]watch{}
		for _, r := range []int32{2, 3} {
			ch := make(chan struct{}, 1)
			out[r] = watch{ch, m.WatchFollower(r, ch)}
		}
		return out
	}
	check := func(step string, ws map[int32]watch, want ...int32) {
		t.Helper()
		for r, w := range ws {
			told := false
			for _, x := range want {
				told = told || x == r
			}
			if got := signaled(w.ch); got != told {
				t.Errorf("%s: follower %d signaled %v, want %v", step, r, got, told)
			}
			if got := w.w.Due(); got != told {
				t.Errorf("%s: follower %d due %v, want %v", step, r, got, told)
			}
			w.w.Close()
			w.w.Close() // idempotent
		}
		for r := range ws {
			if n := m.FollowerFetchesWatching(r); n != 0 {
				t.Errorf("%s: %d watches of follower %d left after Close", step, n, r)
			}
		}
	}

	// "a" is led by 2 (followed here), "b" by this broker.
	a := testTopic("a", 1, 1, 2, 0, []int32{2, testNode, 3}, nil)
	b := testTopic("b", 2, 1, testNode, 0, []int32{testNode, 2}, nil)
	ws := watchBoth()
	m.ApplyImage(testImage(1, a, b))
	check("b created, led here with replicas 1, 2", ws, 2)

	// The same image again, as a deep copy: nothing to fetch anew.
	ws = watchBoth()
	m.ApplyImage(testImage(2, a.Clone(), b.Clone()))
	check("same image", ws)

	// Leadership of "a" moves here.
	a2 := testTopic("a", 1, 1, testNode, 1, []int32{testNode, 2, 3}, nil)
	ws = watchBoth()
	m.ApplyImage(testImage(3, a2, b))
	check("leadership of a moved here", ws, 2, 3)

	// "b" gains replica 3 under the same leader epoch (a reassignment).
	b2 := b.Clone()
	b2.Partitions[0].Replicas = []int32{testNode, 2, 3}
	b2.Partitions[0].PartitionEpoch++
	ws = watchBoth()
	m.ApplyImage(testImage(4, a2, b2))
	check("b gained replica 3", ws, 3)

	// An ISR change only.
	b3 := b2.Clone()
	b3.Partitions[0].ISR = []int32{testNode, 2, 3}
	b3.Partitions[0].PartitionEpoch++
	ws = watchBoth()
	m.ApplyImage(testImage(5, a2, b3))
	check("ISR change", ws)

	// Leadership of "a" moves away: nothing to fetch from here.
	ws = watchBoth()
	m.ApplyImage(testImage(6, testTopic("a", 1, 1, 2, 2, []int32{2, testNode, 3}, nil), b3))
	check("leadership of a moved away", ws)
}

// A follower's fetch parks no longer than the time since the last change
// it must follow (at least minFollowerPark), until that is longer than the
// fetch would wait anyway.
func TestFollowerWatchDeadline(t *testing.T) {
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	t0 := time.UnixMilli(1_700_000_000_000)
	clock := &testClock{t: t0}
	cfg := DefaultConfig(testNode)
	cfg.Now = clock.now
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.followers.wall = clock.now
	const maxWait = 500 * time.Millisecond
	deadline := func(replica int32, at time.Time) time.Duration {
		t.Helper()
		clock.set(at)
		w := m.WatchFollower(replica, make(chan struct{}, 1))
		defer w.Close()
		return w.Deadline(at.Add(maxWait)).Sub(at)
	}

	if d := deadline(2, t0); d != maxWait {
		t.Fatalf("no change yet: parks %v, want %v", d, maxWait)
	}
	// At t0 this broker becomes leader of b-0, replicas 1 and 2.
	m.ApplyImage(testImage(1, testTopic("b", 2, 1, testNode, 0, []int32{testNode, 2}, nil)))
	for _, c := range []struct {
		after, want time.Duration
	}{
		{0, minFollowerPark},
		{time.Millisecond, minFollowerPark},
		{10 * time.Millisecond, 10 * time.Millisecond},
		{200 * time.Millisecond, 200 * time.Millisecond},
		{maxWait, maxWait},
		{time.Minute, maxWait},
	} {
		if d := deadline(2, t0.Add(c.after)); d != c.want {
			t.Errorf("%v after the change: follower 2 parks %v, want %v", c.after, d, c.want)
		}
	}
	// Follower 3 has nothing to follow here.
	if d := deadline(3, t0.Add(time.Millisecond)); d != maxWait {
		t.Errorf("follower 3: parks %v, want %v", d, maxWait)
	}

	// Once follower 2 read b-0 under its epoch, nothing awaits it.
	if n := m.AwaitedBy(2); n != 1 {
		t.Fatalf("partitions awaiting follower 2: %d, want 1", n)
	}
	p := mustPartition(t, m, "b", 0)
	if _, err := p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: 0, ReplicaID: 2, LastFetchedEpoch: -1}); err != nil {
		t.Fatal(err)
	}
	if n := m.AwaitedBy(2); n != 0 {
		t.Fatalf("partitions awaiting follower 2 after its read: %d", n)
	}
	if d := deadline(2, t0.Add(time.Millisecond)); d != maxWait {
		t.Errorf("after follower 2 read b-0: parks %v, want %v", d, maxWait)
	}
}

// The partitions awaiting a follower: those it must start fetching from
// here (a new partition led here, a leadership move here, a replica
// added), until it reads them under the current leader epoch, or the
// partition stops awaiting it (no longer led here, the follower no longer
// a replica, the partition deleted).
func TestAwaitedBy(t *testing.T) {
	m, _ := newTestManager(t)
	awaited := func(step string, want2, want3 int) {
		t.Helper()
		if got := m.AwaitedBy(2); got != want2 {
			t.Errorf("%s: %d partitions await follower 2, want %d", step, got, want2)
		}
		if got := m.AwaitedBy(3); got != want3 {
			t.Errorf("%s: %d partitions await follower 3, want %d", step, got, want3)
		}
	}
	read := func(topic string, replica, epoch int32) {
		t.Helper()
		_, err := mustPartition(t, m, topic, 0).Read(ReadParams{MaxBytes: 1 << 20, CurrentLeaderEpoch: epoch, ReplicaID: replica, LastFetchedEpoch: -1})
		if err != nil {
			t.Fatal(err)
		}
	}
	a := testTopic("a", 1, 2, testNode, 0, []int32{testNode, 2, 3}, nil)
	b := testTopic("b", 2, 1, 2, 0, []int32{2, testNode}, nil)
	m.ApplyImage(testImage(1, a, b))
	awaited("a led here on 1, 2, 3; b led by 2", 2, 2)
	read("a", 2, 0)
	awaited("follower 2 read a-0", 1, 2)
	if _, err := mustPartition(t, m, "a", 0).Read(ReadParams{MaxBytes: 1 << 20, CurrentLeaderEpoch: 7, ReplicaID: 3, LastFetchedEpoch: -1}); err == nil {
		t.Fatal("a read under a newer epoch succeeded")
	}
	awaited("follower 3 read a-0 under another epoch", 1, 2)

	// a-1 loses replica 3 (same epoch); b moves here, epoch 1.
	a2 := a.Clone()
	a2.Partitions[1].Replicas = []int32{testNode, 2}
	a2.Partitions[1].ISR = []int32{testNode, 2}
	a2.Partitions[1].PartitionEpoch++
	b2 := testTopic("b", 2, 1, testNode, 1, []int32{testNode, 2}, nil)
	m.ApplyImage(testImage(2, a2, b2))
	awaited("a-1 without 3, b led here", 2, 1)

	// a's leadership moves away; b is deleted.
	m.ApplyImage(testImage(3, testTopic("a", 1, 2, 2, 1, []int32{2, testNode, 3}, nil)))
	awaited("a led by 2, b deleted", 0, 0)
}
