package partition

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/skein-io/skein/storage"
)

func TestEpochEndOffset(t *testing.T) {
	h := []storage.EpochEntry{{Epoch: 2, StartOffset: 10}, {Epoch: 4, StartOffset: 30}, {Epoch: 5, StartOffset: 50}}
	cases := []struct {
		name               string
		history            []storage.EpochEntry
		requested, current int32
		wantEpoch          int32
		wantEnd            int64
	}{
		{"unknown epoch -1", h, -1, 5, -1, -1},
		{"empty history", nil, 3, -1, -1, -1},
		{"empty history, current epoch", nil, 3, 3, 3, 60},
		{"latest epoch ends at the log end", h, 5, -1, 5, 60},
		{"middle epoch ends where the next starts", h, 4, -1, 4, 50},
		{"epoch between known ones: the one below", h, 3, -1, 2, 30},
		{"older than every known epoch", h, 1, -1, 1, 10},
		{"newer than the latest (leader without appends in its epoch)", h, 6, -1, 5, 60},
		{"current leader epoch without appends", h, 7, 7, 7, 60},
	}
	for _, c := range cases {
		e, end := epochEndOffset(c.history, 60, c.requested, c.current)
		if e != c.wantEpoch || end != c.wantEnd {
			t.Errorf("%s: got (%d, %d), want (%d, %d)", c.name, e, end, c.wantEpoch, c.wantEnd)
		}
	}
}

func TestDivergingEpoch(t *testing.T) {
	// Leader: epoch 2 from 10, epoch 4 from 30, current epoch 6 (no
	// appends yet), log end 40.
	h := []storage.EpochEntry{{Epoch: 2, StartOffset: 10}, {Epoch: 4, StartOffset: 30}}
	cases := []struct {
		name      string
		lastEpoch int32
		offset    int64
		want      *DivergingEpoch
	}{
		{"empty follower", -1, 0, nil},
		{"caught up in the same epoch", 4, 40, nil},
		{"behind in an older epoch", 2, 20, nil},
		{"at the end of an older epoch", 2, 30, nil},
		{"unreplicated tail of an older epoch", 2, 35, &DivergingEpoch{Epoch: 2, EndOffset: 30}},
		{"epoch the leader never had", 3, 32, &DivergingEpoch{Epoch: 2, EndOffset: 30}},
		{"ahead of the leader's log end", 4, 45, &DivergingEpoch{Epoch: 4, EndOffset: 40}},
	}
	for _, c := range cases {
		got := divergingEpoch(h, 40, 6, c.lastEpoch, c.offset)
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if got := divergingEpoch(nil, 0, 1, 0, 5); got == nil || got.EndOffset != 0 {
		t.Errorf("empty leader log: got %+v, want end offset 0", got)
	}
}

func TestTruncationOffset(t *testing.T) {
	cases := []struct {
		name       string
		d          DivergingEpoch
		fEpoch     int32
		fEnd, fLEO int64
		want       int64
	}{
		{"same epoch: the shorter range", DivergingEpoch{Epoch: 2, EndOffset: 30}, 2, 35, 35, 30},
		{"same epoch, follower shorter", DivergingEpoch{Epoch: 2, EndOffset: 30}, 2, 25, 40, 25},
		{"follower lacks the epoch: end of its smaller one", DivergingEpoch{Epoch: 3, EndOffset: 30}, 2, 28, 40, 28},
		{"follower knows no epoch that old", DivergingEpoch{Epoch: 1, EndOffset: 5}, -1, -1, 40, 5},
		{"never above the log end", DivergingEpoch{Epoch: 2, EndOffset: 90}, 2, 95, 50, 50},
		{"never negative", DivergingEpoch{Epoch: -1, EndOffset: -1}, -1, -1, 10, 0},
	}
	for _, c := range cases {
		if got := truncationOffset(c.d, c.fEpoch, c.fEnd, c.fLEO); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

// TestFollowerDivergence plays a leader change on two managers: both
// replicas hold batch A (epoch 0); the old leader (node 1) also has an
// unreplicated batch B; node 2 becomes leader in epoch 1 and appends C.
// Node 1's fetch with its last epoch is answered with a diverging epoch,
// it truncates B, appends C byte for byte, and takes the leader's high
// watermark capped at its log end.
func TestFollowerDivergence(t *testing.T) {
	m1, _ := newTestManager(t) // node 1 (testNode)
	store2, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store2.Close() })
	m2, err := New(DefaultConfig(2), store2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m2.Close() })

	var followed []Follower
	m1.cfg.OnFollowers = func(ch FollowerChanges) { followed = ch.Followed }

	replicas := []int32{1, 2}
	m1.ApplyImage(testImage(1, testTopic("t", 1, 1, 1, 0, replicas, nil)))
	m2.ApplyImage(testImage(1, testTopic("t", 1, 1, 1, 0, replicas, nil)))
	p1, p2 := mustPartition(t, m1, "t", 0), mustPartition(t, m2, "t", 0)
	if len(followed) != 0 {
		t.Fatalf("leader reported followers %v", followed)
	}

	if _, err := p1.AppendAsLeader(batchOf(3, 20), 1); err != nil { // A
		t.Fatal(err)
	}
	a := readAll(t, p1.Log())
	if _, err := p1.AppendAsFollower(0, a); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("follower append on the leader: %v", err)
	}
	if _, err := p1.AppendAsLeader(batchOf(2, 20), 1); err != nil { // B, not replicated
		t.Fatal(err)
	}

	// Node 2 follows epoch 0 and gets A.
	if _, err := p2.AppendAsFollower(0, a); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.AppendAsFollower(1, a); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("append under another epoch: %v, want ErrFencedLeaderEpoch", err)
	}

	// Leader change: node 2 leads epoch 1, node 1 follows.
	m1.ApplyImage(testImage(3, testTopic("t", 1, 1, 2, 1, replicas, nil)))
	m2.ApplyImage(testImage(3, testTopic("t", 1, 1, 2, 1, replicas, nil)))
	if len(followed) != 1 || followed[0].LeaderID != 2 || followed[0].LeaderEpoch != 1 || followed[0].LeaderAddr != "127.0.0.1:9092" {
		t.Fatalf("followers = %+v", followed)
	}
	if _, err := p2.AppendAsLeader(batchOf(4, 20), 1); err != nil { // C
		t.Fatal(err)
	}

	// A replica outside the replica set is refused.
	if _, err := p2.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: 1, ReplicaID: 9, LastFetchedEpoch: -1}); !errors.Is(err, ErrUnknownLeaderEpoch) {
		t.Fatalf("fetch from a non-replica naming the epoch: %v", err)
	}
	if _, err := p2.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: 9, LastFetchedEpoch: -1}); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("fetch from a non-replica: %v", err)
	}

	off, last, err := p1.FetchPosition(1)
	if err != nil || off != 5 || last != 0 {
		t.Fatalf("fetch position = %d, %d, %v; want 5, 0", off, last, err)
	}
	rr, err := p2.Read(ReadParams{FetchOffset: off, MaxBytes: 1 << 20, CurrentLeaderEpoch: 1, ReplicaID: 1, LastFetchedEpoch: last})
	if err != nil || rr.Diverging == nil || *rr.Diverging != (DivergingEpoch{Epoch: 0, EndOffset: 3}) {
		t.Fatalf("diverging read: %+v, %v", rr.Diverging, err)
	}
	if end, err := p1.TruncateAsFollower(1, *rr.Diverging); err != nil || end != 3 {
		t.Fatalf("truncate: end %d, %v; want 3", end, err)
	}
	off, last, _ = p1.FetchPosition(1)
	rr, err = p2.Read(ReadParams{FetchOffset: off, MaxBytes: 1 << 20, CurrentLeaderEpoch: 1, ReplicaID: 1, LastFetchedEpoch: last})
	if err != nil || rr.Diverging != nil || rr.Size == 0 {
		t.Fatalf("read after truncation: %+v size %d, %v", rr.Diverging, rr.Size, err)
	}
	c, err := rr.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.AppendAsFollower(1, c); err != nil {
		t.Fatal(err)
	}
	_ = p2.UpdateFollowerFetch(1, p1.Log().LogEndOffset())
	if err := p1.UpdateFollowerHighWatermark(1, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if hw, leo := p1.HighWatermark(), p1.Log().LogEndOffset(); hw != leo || leo != 7 {
		t.Fatalf("follower hw %d leo %d, want 7 and 7", hw, leo)
	}
	if !bytes.Equal(readAll(t, p1.Log()), readAll(t, p2.Log())) {
		t.Fatal("replicas differ")
	}
	if e, end, err := p2.EndOffsetForEpoch(1, 0); err != nil || e != 0 || end != 3 {
		t.Fatalf("EndOffsetForEpoch(0) = %d, %d, %v; want 0, 3", e, end, err)
	}
	if _, _, err := p2.EndOffsetForEpoch(0, 0); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("EndOffsetForEpoch with a stale epoch: %v", err)
	}
}

func readAll(t *testing.T, l *storage.Log) []byte {
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
