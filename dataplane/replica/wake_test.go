package replica_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
)

// manualClock is a node's partition clock, moved by the test.
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

// TestFollowerNotHeldByParkedFetch (issue 13): node 1 leads a-0 and node
// 2 leads b-0, both replicated on both, so each node's fetcher is parked
// at the other with a MaxWait of 20 s. A partition the follower must now
// fetch from a leader it is parked at (a new partition; a partition whose
// leadership moved to that leader) has its first acks=all append committed
// well before the parked fetch's MaxWait, whichever node applies the image
// first: the follower (its fetch is parked when the leader learns of the
// partition) or the leader (it may take the append before the follower
// knows the partition). With fetch sessions and without.
func TestFollowerNotHeldByParkedFetch(t *testing.T) {
	for _, sessions := range []bool{true, false} {
		t.Run(fmt.Sprintf("sessions=%v", sessions), func(t *testing.T) { testFollowerNotHeldByParkedFetch(t, sessions) })
	}
}

func testFollowerNotHeldByParkedFetch(t *testing.T, sessions bool) {
	const (
		maxWait = 20 * time.Second
		within  = maxWait / 4
	)
	c1 := &manualClock{t: time.UnixMilli(1_700_000_000_000)}
	c2 := &manualClock{t: time.UnixMilli(1_700_000_000_000)}
	n1 := startNodeOpts(t, 1, sessions, maxWait, c1.now)
	n2 := startNodeOpts(t, 2, sessions, maxWait, c2.now)
	nodes := map[int32]*node{1: n1, 2: n2}

	img := image.New()
	for _, n := range []*node{n1, n2} {
		img.Brokers[n.id] = &image.Broker{ID: n.id, Host: "127.0.0.1", Port: int32(n.addr.Port), Epoch: 7}
	}
	topicID := byte(0)
	setTopic := func(name string, leader, epoch int32) {
		id := [16]byte{topicID}
		if old := img.Topics[name]; old != nil {
			id = old.ID
		} else {
			topicID++
			id = [16]byte{topicID}
		}
		img.Topics[name] = &image.Topic{Name: name, ID: id, Partitions: []*image.Partition{{
			Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: leader, LeaderEpoch: epoch, PartitionEpoch: epoch,
		}}}
	}
	// appendTo appends one batch to topic-0 on its leader; committed waits
	// (acks=all) for at most limit for it to be committed.
	type appended struct {
		p   *partition.Partition
		res partition.AppendResult
	}
	appendTo := func(what, topic string, leader *node) appended {
		t.Helper()
		p := leader.partitions.Get(topic, 0)
		if p == nil {
			t.Fatalf("%s: node %d does not host %s-0", what, leader.id, topic)
		}
		res, err := p.AppendAsLeader(batch(2), -1)
		if err != nil {
			t.Fatalf("%s: append: %v", what, err)
		}
		return appended{p, res}
	}
	committed := func(what string, a appended, limit time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		start := time.Now()
		if err := a.p.WaitCommitted(ctx, a.res); err != nil {
			t.Fatalf("%s: first acks=all append to %s-%d not committed within %v: %v", what, a.p.Topic(), a.p.Index(), limit, err)
		}
		t.Logf("%s: committed after %v", what, time.Since(start).Round(time.Millisecond))
	}
	// parked makes every change old (fetches are no longer parked briefly
	// after it) and waits until each node's follower fetch is at the
	// other.
	parked := func() {
		t.Helper()
		c1.add(time.Hour)
		c2.add(time.Hour)
		waitFor(t, "the followers' fetches to park", func() bool {
			return n1.partitions.FollowerFetchesWatching(2) == 1 && n2.partitions.FollowerFetchesWatching(1) == 1
		})
	}
	// change applies the next image, in which topic-0 is led by leader at
	// epoch, to the nodes in order, with the first append to topic-0 on its
	// leader right after the leader applied it.
	change := func(what, topic string, leader, epoch int32, order ...int32) {
		t.Helper()
		img = img.Clone()
		img.Index++
		setTopic(topic, leader, epoch)
		var a appended
		for _, id := range order {
			nodes[id].partitions.ApplyImage(img)
			if id == leader {
				a = appendTo(what, topic, nodes[leader])
			}
		}
		committed(what, a, within)
	}

	img.Index = 1
	setTopic("a", 1, 0)
	setTopic("b", 2, 0)
	apply(img, n1, n2)
	committed("a", appendTo("a", "a", n1), maxWait)
	committed("b", appendTo("b", "b", n2), maxWait)

	// A new partition led by node 1, which node 2 learns of first.
	parked()
	change("new partition, follower first", "c", 1, 0, 2, 1)

	// A new partition led by node 1, which node 1 learns of first and
	// takes an append for before node 2 knows it.
	parked()
	change("new partition, leader first", "d", 1, 0, 1, 2)

	// Leadership of a-0 moves to node 2: node 1 must fetch it from there.
	parked()
	change("leader change, follower first", "a", 2, 1, 1, 2)

	// And back to node 1, which applies it first.
	parked()
	change("leader change, leader first", "a", 1, 2, 1, 2)
}
