package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/throttle"
)

// throttledHandlers are newDataHandlers with the leader-side throttle on:
// t-0 (follower 2 outside the ISR) and w-* (follower 2 in the ISR) are
// listed for this broker, t-1 is not; leader rate 1 MB/s (a 1 MiB bucket).
func throttledHandlers(t *testing.T) *Handlers {
	t.Helper()
	h := newDataHandlers(t)
	img := h.Partitions.Image().Clone()
	img.Topics["t"].Configs = map[string]string{image.LeaderThrottledReplicasConfig: "0:1,1:2"}
	img.Topics["w"].Configs = map[string]string{image.LeaderThrottledReplicasConfig: "*"}
	img.BrokerOverrides = map[int32]map[string]string{node: {image.LeaderThrottledRateConfig: "1000000"}}
	h.Throttles = throttle.New(node, nil, nil)
	h.Throttles.ApplyImage(img)
	// 1.2 MB in t-0 and in t-1, a little in w-0.
	for _, p := range []int32{0, 1} {
		for range 2 {
			if r := produce(t, h, 9, 1, 1000, "t", p, batch(600, 1000)); r.ErrorCode != 0 {
				t.Fatalf("produce t-%d: %d", p, r.ErrorCode)
			}
		}
	}
	if r := produce(t, h, 9, 1, 1000, "w", 0, batch(10, 100)); r.ErrorCode != 0 {
		t.Fatalf("produce w-0: %d", r.ErrorCode)
	}
	return h
}

// followerFetch fetches as broker 2 from offset 0, sessionless.
func followerFetch(t *testing.T, h *Handlers, maxWaitMs int32, parts ...fetchPart) map[string]kmsg.FetchResponseTopicPartition {
	t.Helper()
	wr := fetchRequest(h, 12, maxWaitMs, 1, 50<<20, parts...)
	wr.Body.(*kmsg.FetchRequest).ReplicaID = 2
	r, err := h.handleFetch(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	return answered(h, resolveFetch(t, r))
}

// TestFetchLeaderThrottle: a follower outside the ISR gets a throttled
// partition's records while the leader quota has room, and the bytes are
// taken from it; once exceeded, that partition answers without records,
// while a throttled partition whose follower is in the ISR, an unthrottled
// partition and consumers are served; a long poll held back only by the
// quota answers when it has room again, well before MaxWait.
func TestFetchLeaderThrottle(t *testing.T) {
	h := throttledHandlers(t)
	quota := h.Throttles.Leader()
	t0, t1, w0 := fetchPart{"t", 0, 0, 4 << 20, 3}, fetchPart{"t", 1, 0, 4 << 20, 3}, fetchPart{"w", 0, 0, 4 << 20, 3}

	got := followerFetch(t, h, 0, t0)
	if n := len(got["t-0"].RecordBatches); n < 1_200_000 {
		t.Fatalf("first throttled fetch: %d bytes, want all 1.2 MB", n)
	}
	if !quota.Exceeded() {
		t.Fatal("1.2 MB sent for a throttled partition did not use up the 1 MiB bucket")
	}

	got = followerFetch(t, h, 0, t0, t1, w0)
	if n := len(got["t-0"].RecordBatches); n != 0 || got["t-0"].ErrorCode != 0 || got["t-0"].HighWatermark <= 0 {
		t.Fatalf("t-0 (throttled, follower outside the ISR) with the quota exceeded: %d bytes, %+v", n, got["t-0"])
	}
	if len(got["t-1"].RecordBatches) == 0 {
		t.Fatal("t-1 (not throttled on this broker) got no records")
	}
	if len(got["w-0"].RecordBatches) == 0 {
		t.Fatal("w-0 (throttled, follower in the ISR) got no records")
	}
	cons := fetch(t, h, context.Background(), 12, 0, 1, 50<<20, t0)
	if len(cons.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatal("a consumer of t-0 got no records")
	}

	// The 1 MiB bucket took about 1.2 MB (t-0) and w-0's bytes, about
	// 0.2 s of debt at 1 MB/s; the steps above can take that long under
	// -race on a busy machine. 1.5 MB more makes sure the long poll below
	// is held by the quota for at least half a second, and under two.
	quota.Record(1<<20 + 500_000)
	at, ok := quota.ReadyAt()
	if wait := time.Until(at); !ok || wait <= 0 || wait > 2*time.Second {
		t.Fatalf("quota ready in %v (%v)", wait, ok)
	}
	start := time.Now()
	got = followerFetch(t, h, 10_000, t0)
	if took := time.Since(start); len(got["t-0"].RecordBatches) == 0 || took > 5*time.Second || time.Now().Before(at) {
		t.Fatalf("long poll held by the quota: %d bytes after %v (quota ready at %v)", len(got["t-0"].RecordBatches), took, at)
	}
}

// TestFetchSessionLeaderThrottle: in a follower's fetch session a
// partition held back by the quota stays in the session, is read again on
// every fetch, and gets its records once the quota has room.
func TestFetchSessionLeaderThrottle(t *testing.T) {
	h := throttledHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	h.Throttles.Leader().Record(1<<20 + 200_000) // 0.2 s of debt
	wr := fetchRequest(h, 12, 0, 1, 50<<20, fetchPart{"t", 0, 0, 4 << 20, 3})
	req := wr.Body.(*kmsg.FetchRequest)
	req.ReplicaID, req.SessionID, req.SessionEpoch = 2, 0, 0
	r, err := h.handleFetch(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	resp := resolveFetch(t, r)
	got := answered(h, resp)
	if resp.SessionID == 0 || len(got["t-0"].RecordBatches) != 0 {
		t.Fatalf("full session fetch with the quota exceeded: session %d, %d bytes", resp.SessionID, len(got["t-0"].RecordBatches))
	}
	c := &sessionClient{t: t, h: h, version: 12, id: resp.SessionID, epoch: 1}
	deadline := time.Now().Add(10 * time.Second)
	for {
		wr := fetchRequest(h, 12, 2000, 1, 50<<20)
		req := wr.Body.(*kmsg.FetchRequest)
		req.ReplicaID, req.SessionID, req.SessionEpoch = 2, c.id, c.epoch
		r, err := h.handleFetch(context.Background(), wr)
		if err != nil {
			t.Fatal(err)
		}
		resp := resolveFetch(t, r)
		if resp.ErrorCode != 0 {
			t.Fatalf("incremental fetch: error %d", resp.ErrorCode)
		}
		c.epoch = nextSessionEpoch(c.epoch)
		if len(answered(h, resp)["t-0"].RecordBatches) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("t-0 never got its records back from the session")
		}
	}
}
