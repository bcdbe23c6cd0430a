package replica

import (
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
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
		req := f.buildRequest(states)
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
