package replica_test

import (
	"bytes"
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/kafka"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/replica"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// node is one broker's data plane in process: storage, partitions, replica
// fetchers and a Kafka listener on loopback.
type node struct {
	id         int32
	addr       *net.TCPAddr
	partitions *partition.Manager
	replicas   *replica.Manager
	sessions   *kafka.FetchSessionCache
}

// startNode starts a node whose leader side keeps fetch sessions.
func startNode(t *testing.T, id int32) *node { return startNodeWith(t, id, true) }

// startNodeWith starts a node; without sessions its fetchers send
// sessionless full fetches and its leader side keeps none.
func startNodeWith(t *testing.T, id int32, sessions bool) *node {
	return startNodeOpts(t, id, sessions, 100*time.Millisecond, nil)
}

// startNodeOpts is startNodeWith with the fetchers' MaxWait and the
// partitions' clock (nil: time.Now).
func startNodeOpts(t *testing.T, id int32, sessions bool, maxWait time.Duration, now func() time.Time) *node {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	rcfg := replica.DefaultConfig(id)
	rcfg.BrokerEpoch = func() int64 { return 7 }
	rcfg.MaxWait = maxWait
	rcfg.NoFetchSessions = !sessions
	replicas, err := replica.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := partition.DefaultConfig(id)
	pcfg.OnFollowers = replicas.Update
	if now != nil {
		pcfg.Now = now
	}
	parts, err := partition.New(pcfg, store)
	if err != nil {
		t.Fatal(err)
	}
	h := &kafka.Handlers{Config: kafka.Config{NodeID: id, FetchMaxBytes: 50 << 20}, Partitions: parts}
	if sessions {
		h.FetchSessions = kafka.NewFetchSessionCache(kafka.DefaultFetchSessionSlots, kafka.DefaultFetchSessionEvictAfter, nil)
	}
	reg := wire.NewRegistry()
	h.Register(reg)
	srv, err := wire.NewServer(wire.DefaultConfig(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ln)
	t.Cleanup(func() {
		_ = srv.Close()
		_ = replicas.Close()
		_ = parts.Close()
		_ = store.Close()
	})
	return &node{id: id, addr: ln.Addr().(*net.TCPAddr), partitions: parts, replicas: replicas, sessions: h.FetchSessions}
}

// imageOf is an image with the nodes registered and one partition of
// topic "t" on both, led by leader at epoch.
func imageOf(index uint64, nodes []*node, leader, epoch int32) *image.Image {
	img := image.New()
	img.Index = index
	var ids []int32
	for _, n := range nodes {
		img.Brokers[n.id] = &image.Broker{ID: n.id, Host: "127.0.0.1", Port: int32(n.addr.Port), Epoch: 7}
		ids = append(ids, n.id)
	}
	img.Topics["t"] = &image.Topic{Name: "t", ID: [16]byte{9}, Partitions: []*image.Partition{{
		Partition: 0, Replicas: ids, ISR: ids, Leader: leader, LeaderEpoch: epoch, PartitionEpoch: epoch,
	}}}
	return img
}

func apply(img *image.Image, nodes ...*node) {
	for _, n := range nodes {
		n.partitions.ApplyImage(img)
	}
}

func part(t *testing.T, n *node) *partition.Partition {
	t.Helper()
	p := n.partitions.Get("t", 0)
	if p == nil {
		t.Fatalf("node %d does not host t-0", n.id)
	}
	return p
}

func batch(n int) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = bytes.Repeat([]byte{byte(i)}, 40)
	}
	return storagetest.MakeBatch(recs, -1, -1, -1)
}

func logBytes(t *testing.T, l *storage.Log) []byte {
	t.Helper()
	rr, err := l.Read(l.LogStartOffset(), math.MaxInt32, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rr.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicationAndLeaderChange: node 1 leads; acks=all appends commit
// only once node 2's fetcher has copied them. Node 2 is then cut off (its
// image says the partition is offline) while node 1 appends a tail nobody
// else has; node 2 becomes leader in epoch 1 and appends; node 1 follows,
// truncates its unreplicated tail where the epochs part, and catches up.
// Both logs end byte-identical, with the follower's high watermark the
// leader's. It runs with fetch sessions (KIP-227) and without.
func TestReplicationAndLeaderChange(t *testing.T) {
	for _, sessions := range []bool{true, false} {
		name := "sessionless"
		if sessions {
			name = "sessions"
		}
		t.Run(name, func(t *testing.T) { testReplicationAndLeaderChange(t, sessions) })
	}
}

func testReplicationAndLeaderChange(t *testing.T, sessions bool) {
	n1, n2 := startNodeWith(t, 1, sessions), startNodeWith(t, 2, sessions)
	nodes := []*node{n1, n2}
	apply(imageOf(1, nodes, 1, 0), n1, n2)
	p1, p2 := part(t, n1), part(t, n2)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		res, err := p1.AppendAsLeader(batch(3+i), -1)
		if err != nil {
			t.Fatal(err)
		}
		if err := p1.WaitCommitted(ctx, res); err != nil {
			t.Fatalf("acks=all append %d: %v", i, err)
		}
	}
	waitFor(t, "follower high watermark", func() bool { return p2.HighWatermark() == p1.HighWatermark() })
	if got := n2.replicas.Leaders(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("node 2 fetches from %v, want [1]", got)
	}
	if sessions && n1.sessions.Len() != 1 {
		t.Fatalf("leader holds %d fetch sessions, want node 2's", n1.sessions.Len())
	}
	committed := p1.Log().LogEndOffset()

	// Cut node 2 off, then append a tail only node 1 has.
	apply(imageOf(2, nodes, -1, 0), n2)
	waitFor(t, "node 2's fetcher to stop", func() bool { return len(n2.replicas.Leaders()) == 0 })
	if _, err := p1.AppendAsLeader(batch(4), 1); err != nil {
		t.Fatal(err)
	}
	if p1.Log().LogEndOffset() == p2.Log().LogEndOffset() {
		t.Fatal("the tail was replicated")
	}

	// Node 2 leads epoch 1 and appends; node 1 follows.
	apply(imageOf(3, nodes, 2, 1), n1, n2)
	if _, err := p2.AppendAsLeader(batch(6), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 1 to converge", func() bool {
		return p1.Log().LogEndOffset() == p2.Log().LogEndOffset() && p1.Log().LatestEpoch() == 1
	})
	if !bytes.Equal(logBytes(t, p1.Log()), logBytes(t, p2.Log())) {
		t.Fatal("replicas differ after the leader change")
	}
	res, err := p2.AppendAsLeader(batch(2), -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.WaitCommitted(ctx, res); err != nil {
		t.Fatalf("acks=all on the new leader: %v", err)
	}
	waitFor(t, "node 1's high watermark", func() bool { return p1.HighWatermark() == p2.HighWatermark() })
	if hw := p2.HighWatermark(); hw <= committed {
		t.Fatalf("hw %d did not pass %d", hw, committed)
	}
	if !bytes.Equal(logBytes(t, p1.Log()), logBytes(t, p2.Log())) {
		t.Fatal("replicas differ")
	}
}
