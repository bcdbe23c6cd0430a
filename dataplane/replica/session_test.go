package replica

import (
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/throttle"
	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// followersOn opens node 2's partitions of topic "t" (n partitions led by
// node 1 at epoch 0) and returns them as the fetcher gets them.
func followersOn(t *testing.T, n int) map[storage.TopicPartition]partition.Follower {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := partition.New(partition.DefaultConfig(2), store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		_ = store.Close()
	})
	img := image.New()
	img.Index = 1
	for _, b := range []int32{1, 2} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "127.0.0.1", Port: 9090 + b, Epoch: 1}
	}
	top := &image.Topic{Name: "t", ID: [16]byte{3}}
	for i := range n {
		top.Partitions = append(top.Partitions, &image.Partition{Partition: int32(i), Replicas: []int32{1, 2},
			ISR: []int32{1, 2}, Leader: 1})
	}
	img.Topics["t"] = top
	m.ApplyImage(img)
	out := map[storage.TopicPartition]partition.Follower{}
	for i := range n {
		p := m.Get("t", int32(i))
		out[storage.TopicPartition{Topic: "t", Partition: int32(i)}] = partition.Follower{Partition: p, LeaderID: 1}
	}
	return out
}

// named lists the partitions a request names, and those it forgets.
func named(req *kmsg.FetchRequest) (parts, forgotten []int32) {
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, p.Partition)
		}
	}
	for _, t := range req.ForgottenTopics {
		forgotten = append(forgotten, t.Partitions...)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	sort.Slice(forgotten, func(i, j int) bool { return forgotten[i] < forgotten[j] })
	return parts, forgotten
}

func TestFetcherSessionRequests(t *testing.T) {
	cfg := DefaultConfig(2)
	cfg.Logger = hclog.NewNullLogger()
	f, err := newFetcher(cfg, 1, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	followers := followersOn(t, 3)
	f.update(followers, nil)
	next := func() *kmsg.FetchRequest {
		t.Helper()
		states, _ := f.ready(time.Now())
		req, _ := f.buildRequest(states)
		if req == nil {
			t.Fatal("no request")
		}
		return req
	}

	// The first fetch is full and asks for a session.
	req := next()
	if parts, _ := named(req); req.SessionID != 0 || req.SessionEpoch != 0 || len(parts) != 3 {
		t.Fatalf("first fetch: session %d/%d, partitions %v", req.SessionID, req.SessionEpoch, parts)
	}
	f.answered(req, 77)

	// Nothing moved: an empty incremental fetch of session 77, epoch 1.
	req = next()
	if parts, gone := named(req); req.SessionID != 77 || req.SessionEpoch != 1 || len(parts) != 0 || len(gone) != 0 {
		t.Fatalf("idle fetch: session %d/%d, partitions %v, forgotten %v", req.SessionID, req.SessionEpoch, parts, gone)
	}
	f.answered(req, 77)

	// Records appended to t-1: only t-1 is named, from its new log end.
	p1 := followers[storage.TopicPartition{Topic: "t", Partition: 1}].Partition
	if _, err := p1.AppendAsFollower(0, storagetest.MakeBatch([][]byte{{1}, {2}}, -1, -1, -1)); err != nil {
		t.Fatal(err)
	}
	req = next()
	parts, _ := named(req)
	if req.SessionEpoch != 2 || len(parts) != 1 || parts[0] != 1 || req.Topics[0].Partitions[0].FetchOffset != 2 {
		t.Fatalf("after an append to t-1: epoch %d, partitions %v", req.SessionEpoch, parts)
	}
	f.answered(req, 77)

	// t-2 is no longer followed: forgotten.
	delete(followers, storage.TopicPartition{Topic: "t", Partition: 2})
	f.update(nil, []storage.TopicPartition{{Topic: "t", Partition: 2}})
	req = next()
	if parts, gone := named(req); req.SessionEpoch != 3 || len(parts) != 0 || len(gone) != 1 || gone[0] != 2 {
		t.Fatalf("after t-2 left: epoch %d, partitions %v, forgotten %v", req.SessionEpoch, parts, gone)
	}
	f.answered(req, 77)

	// A lost session (error or reconnect): a full fetch again.
	f.sess.reset()
	req = next()
	if parts, _ := named(req); req.SessionID != 0 || req.SessionEpoch != 0 || len(parts) != 2 {
		t.Fatalf("after a reset: session %d/%d, partitions %v", req.SessionID, req.SessionEpoch, parts)
	}
	// A leader without sessions (id 0): every fetch stays full.
	f.answered(req, 0)
	req = next()
	if parts, _ := named(req); req.SessionID != 0 || req.SessionEpoch != 0 || len(parts) != 2 {
		t.Fatalf("sessionless: session %d/%d, partitions %v", req.SessionID, req.SessionEpoch, parts)
	}
}

// TestFetcherThrottle: with the follower quota exceeded, the partitions of
// follower.replication.throttled.replicas listed for this broker that are
// not caught up leave the fetch (forgotten by the session); a caught-up
// one and unlisted ones stay. When every partition is held back there is
// no request until the quota has room, and the session is kept.
func TestFetcherThrottle(t *testing.T) {
	clk := time.Unix(5000, 0)
	th := throttle.New(2, nil, func() time.Time { return clk })
	img := image.New()
	img.Topics["t"] = &image.Topic{Name: "t", Configs: map[string]string{
		image.FollowerThrottledReplicasConfig: "0:2,1:2,2:3",
		image.LeaderThrottledReplicasConfig:   "*", // the leader side: not the fetcher's business
	}}
	img.BrokerOverrides = map[int32]map[string]string{2: {image.FollowerThrottledRateConfig: "1000"}}
	th.ApplyImage(img)

	cfg := DefaultConfig(2)
	cfg.Logger = hclog.NewNullLogger()
	cfg.Throttle = th.Follower()
	f, err := newFetcher(cfg, 1, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	followers := followersOn(t, 3)
	f.update(followers, nil)
	build := func() (*kmsg.FetchRequest, time.Time) {
		t.Helper()
		states, _ := f.ready(time.Now())
		return f.buildRequest(states)
	}

	// Quota not exceeded: every partition is fetched.
	req, held := build()
	if parts, _ := named(req); len(parts) != 3 || !held.IsZero() {
		t.Fatalf("quota free: partitions %v, held until %v", parts, held)
	}
	f.answered(req, 9)

	// Exceeded: t-0 and t-1 (listed for broker 2, not caught up) leave
	// the session; t-2 (listed for broker 3 only) stays.
	th.Follower().Record(1 << 21)
	req, held = build()
	if parts, gone := named(req); len(parts) != 0 || len(gone) != 2 || gone[0] != 0 || gone[1] != 1 || held.IsZero() {
		t.Fatalf("quota exceeded: partitions %v, forgotten %v, held until %v", parts, gone, held)
	}
	f.answered(req, 9)

	// A caught-up replica is never held back: t-0 comes back.
	f.mu.parts[storage.TopicPartition{Topic: "t", Partition: 0}].caughtUp = true
	req, _ = build()
	if parts, _ := named(req); len(parts) != 1 || parts[0] != 0 {
		t.Fatalf("caught-up t-0: partitions %v", parts)
	}
	f.answered(req, 9)

	// Every partition held back: no request, the session kept, a wake-up
	// when the quota has room.
	f.update(nil, []storage.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 2}})
	req, held = build()
	if req != nil || held.IsZero() || f.sess.id != 9 {
		t.Fatalf("all held: request %v, held until %v, session %d", req, held, f.sess.id)
	}

	// Quota free again: t-1 is fetched (and t-0, t-2 forgotten).
	clk = clk.Add(time.Hour)
	req, held = build()
	if parts, gone := named(req); len(parts) != 1 || parts[0] != 1 || len(gone) != 2 || !held.IsZero() {
		t.Fatalf("quota free again: partitions %v, forgotten %v, held until %v", parts, gone, held)
	}
}
