package replica

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// followerNode is a partition manager for node 1 whose follower changes
// feed a replica manager.
type followerNode struct {
	parts    *partition.Manager
	replicas *Manager
}

func newFollowerNode(t *testing.T) *followerNode {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	rcfg := DefaultConfig(1)
	rcfg.BrokerEpoch = func() int64 { return 1 }
	replicas, err := New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := partition.DefaultConfig(1)
	pcfg.OnFollowers = replicas.Update
	parts, err := partition.New(pcfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = replicas.Close()
		_ = parts.Close()
		_ = store.Close()
	})
	return &followerNode{parts: parts, replicas: replicas}
}

// describe renders the fetchers: leader, address, and each partition with
// the leader epoch of its fetch state.
func (n *followerNode) describe(t *testing.T) string {
	t.Helper()
	m := n.replicas
	m.mu.Lock()
	defer m.mu.Unlock()
	var lines []string
	for _, id := range slices.Sorted(maps.Keys(m.mu.fetchers)) {
		fe := m.mu.fetchers[id]
		lines = append(lines, fmt.Sprintf("fetcher %d %s", id, fe.addr))
		fe.mu.Lock()
		for tp, st := range fe.mu.parts {
			if n.parts.Get(tp.Topic, tp.Partition) != st.p {
				t.Fatalf("fetcher %d fetches %v for a replica that is not the hosted one", id, tp)
			}
			if m.mu.leaderOf[tp] != id {
				t.Fatalf("%v fetched by %d, leaderOf says %d", tp, id, m.mu.leaderOf[tp])
			}
			lines = append(lines, fmt.Sprintf("  %d %s-%d epoch %d", id, tp.Topic, tp.Partition, st.leaderEpoch))
		}
		fe.mu.Unlock()
		if len(fe.mu.parts) == 0 {
			t.Fatalf("fetcher %d runs with nothing to fetch", id)
		}
	}
	if len(m.mu.leaderOf) != len(lines)-len(m.mu.fetchers) {
		t.Fatalf("leaderOf has %d partitions, the fetchers %d", len(m.mu.leaderOf), len(lines)-len(m.mu.fetchers))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func (n *followerNode) state(tp storage.TopicPartition) *fetchState {
	n.replicas.mu.Lock()
	defer n.replicas.mu.Unlock()
	fe := n.replicas.mu.fetchers[n.replicas.mu.leaderOf[tp]]
	if fe == nil {
		return nil
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.mu.parts[tp]
}

// nextImage derives an image as the controller does (structurally
// shared): edit changes the copy's topics and brokers maps in place.
func nextImage(img *image.Image, edit func(next *image.Image)) *image.Image {
	next := *img
	next.Index++
	next.Topics = maps.Clone(img.Topics)
	next.Brokers = maps.Clone(img.Brokers)
	edit(&next)
	return &next
}

func withPartition(img *image.Image, topic string, idx int32, change func(*image.Partition)) {
	t := *img.Topics[topic]
	t.Partitions = slices.Clone(t.Partitions)
	p := t.Partitions[idx].Clone()
	change(p)
	t.Partitions[idx] = p
	img.Topics[topic] = &t
}

func followedTopic(name string, id byte, n int, leader int32) *image.Topic {
	t := &image.Topic{Name: name, ID: [16]byte{id}}
	for i := range n {
		t.Partitions = append(t.Partitions, &image.Partition{Partition: int32(i), Replicas: []int32{1, 2, 3},
			ISR: []int32{1, 2, 3}, Leader: leader, LeaderEpoch: 1, PartitionEpoch: 1})
	}
	return t
}

// TestUpdateIncrementalMatchesFresh applies images one after the other
// and checks after each that the fetchers are those a fresh broker gets
// from that image alone, and that a partition keeps its fetch state
// exactly while its leader and leader epoch stay.
func TestUpdateIncrementalMatchesFresh(t *testing.T) {
	n := newFollowerNode(t)
	img := image.New()
	img.Index = 1
	for _, id := range []int32{1, 2, 3} {
		// Nothing listens on port 9 (discard): the fetchers retry.
		img.Brokers[id] = &image.Broker{ID: id, Host: "127.0.0.1", Port: 9, Epoch: 1}
	}
	img.Brokers[3] = &image.Broker{ID: 3, Host: "127.0.0.2", Port: 9, Epoch: 1}
	for _, tp := range []*image.Topic{followedTopic("a", 1, 3, 2), followedTopic("b", 2, 2, 3), followedTopic("c", 3, 1, 1)} {
		img.Topics[tp.Name] = tp
	}
	a0, a1 := storage.TopicPartition{Topic: "a", Partition: 0}, storage.TopicPartition{Topic: "a", Partition: 1}
	steps := []struct {
		name  string
		edit  func(*image.Image)
		check func(before map[storage.TopicPartition]*fetchState)
	}{
		{"first image", func(*image.Image) {}, nil},
		{"leader epoch of a-0", func(img *image.Image) {
			withPartition(img, "a", 0, func(p *image.Partition) { p.LeaderEpoch++ })
		}, func(before map[storage.TopicPartition]*fetchState) {
			if n.state(a0) == before[a0] || n.state(a1) != before[a1] {
				t.Fatal("fetch state: a-0 kept across a new leader epoch, or a-1 restarted without one")
			}
		}},
		{"b led here", func(img *image.Image) {
			withPartition(img, "b", 0, func(p *image.Partition) { p.Leader = 1; p.LeaderEpoch++ })
			withPartition(img, "b", 1, func(p *image.Partition) { p.Leader = 1; p.LeaderEpoch++ })
		}, nil},
		{"c led by 3", func(img *image.Image) {
			withPartition(img, "c", 0, func(p *image.Partition) { p.Leader = 3; p.LeaderEpoch++ })
		}, nil},
		{"broker 2 moved", func(img *image.Image) {
			b := *img.Brokers[2]
			b.Host = "127.0.0.3"
			img.Brokers[2] = &b
		}, nil},
		{"a-2 offline", func(img *image.Image) {
			withPartition(img, "a", 2, func(p *image.Partition) { p.Leader = -1; p.LeaderEpoch++ })
		}, nil},
		{"a deleted", func(img *image.Image) { delete(img.Topics, "a") }, nil},
		{"a re-created", func(img *image.Image) { img.Topics["a"] = followedTopic("a", 9, 2, 3) }, nil},
	}
	for _, s := range steps {
		img = nextImage(img, s.edit)
		before := map[storage.TopicPartition]*fetchState{a0: n.state(a0), a1: n.state(a1)}
		n.parts.ApplyImage(img)
		fresh := newFollowerNode(t)
		fresh.parts.ApplyImage(img)
		if got, want := n.describe(t), fresh.describe(t); got != want {
			t.Fatalf("after %q:\n got:\n%s\nwant (fresh):\n%s", s.name, got, want)
		}
		if s.check != nil {
			s.check(before)
		}
	}
	if got := n.replicas.Leaders(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("fetching from %v, want only 3", got)
	}
}
