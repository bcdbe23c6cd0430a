package replica

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// partitionOn opens a partition manager for node id and applies an image
// where node leader leads t-0 at leaderEpoch, with replicas {1, 2}.
func partitionOn(t *testing.T, id, leader, leaderEpoch int32) *partition.Partition {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := partition.New(partition.DefaultConfig(id), store)
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
	img.Topics["t"] = &image.Topic{Name: "t", ID: [16]byte{3}, Partitions: []*image.Partition{{
		Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: leader,
		LeaderEpoch: leaderEpoch, PartitionEpoch: leaderEpoch,
	}}}
	m.ApplyImage(img)
	p := m.Get("t", 0)
	if p == nil {
		t.Fatal("t-0 not hosted")
	}
	return p
}

// appendEpochs appends, straight to the storage log, one batch of n
// records per (epoch, n) pair, each stamped with its epoch; the i-th
// record of a batch of epoch e has the value {e, i}.
func appendEpochs(t *testing.T, l *storage.Log, runs ...[2]int) {
	t.Helper()
	for _, r := range runs {
		recs := make([][]byte, r[1])
		for i := range recs {
			recs[i] = []byte{byte(r[0]), byte(i)}
		}
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(recs, -1, -1, -1), int32(r[0])); err != nil {
			t.Fatal(err)
		}
	}
}

func readLog(t *testing.T, l *storage.Log, from, to int64) []byte {
	t.Helper()
	rr, err := l.Read(from, math.MaxInt32, to)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rr.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFollowerHighWatermarkAfterIntermediateTruncation (defect 6): the
// follower holds epoch 0 at [0,5) and epoch 2 at [5,10); the leader (epoch
// 3) holds epoch 0 at [0,3), epoch 1 at [3,8) and epoch 3 at [8,10), all
// committed (HW 10). The leader answers the follower's fetch (epoch 2,
// offset 10) with "epoch 1 ends at 8"; the follower does not know epoch 1,
// so it truncates to where its epoch 0 ends, 5: offsets 3 and 4 still hold
// epoch-0 records the leader does not have. Its high watermark must not
// cover them; the next fetch truncates to 3, the one after appends the
// leader's records, and only then does the high watermark reach 10.
func TestFollowerHighWatermarkAfterIntermediateTruncation(t *testing.T) {
	follower := partitionOn(t, 1, 2, 3)
	leader := partitionOn(t, 2, 2, 3)
	appendEpochs(t, follower.Log(), [2]int{0, 3}, [2]int{0, 2}, [2]int{2, 5})
	appendEpochs(t, leader.Log(), [2]int{0, 3}, [2]int{1, 5}, [2]int{3, 2})
	const leaderHW = 10

	f, err := newFetcher(DefaultConfig(1), 2, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	st := &fetchState{tp: storage.TopicPartition{Topic: "t", Partition: 0}, p: follower, leaderEpoch: 3}
	// round trips one fetch of the follower through the leader's Read and
	// the fetcher's handling of the answer.
	roundTrip := func() *partition.DivergingEpoch {
		t.Helper()
		off, last, err := follower.FetchPosition(3)
		if err != nil {
			t.Fatal(err)
		}
		st.fetchOffset = off
		rr, err := leader.Read(partition.ReadParams{FetchOffset: off, MaxBytes: 1 << 20, CurrentLeaderEpoch: 3,
			ReplicaID: 1, LastFetchedEpoch: last})
		if err != nil {
			t.Fatal(err)
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark = leaderHW
		if rr.Diverging != nil {
			rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = rr.Diverging.Epoch, rr.Diverging.EndOffset
		} else if rp.RecordBatches, err = rr.ReadInto(nil); err != nil {
			t.Fatal(err)
		}
		f.handlePartition(st, &rp)
		if st.failures != 0 {
			t.Fatalf("fetch at %d failed", off)
		}
		return rr.Diverging
	}
	// matches is the longest prefix (in offsets) where the follower's log
	// equals the leader's.
	matches := func() int64 {
		n := int64(0)
		for n < follower.Log().LogEndOffset() && n < leader.Log().LogEndOffset() &&
			bytes.Equal(recordsAt(t, follower.Log(), n), recordsAt(t, leader.Log(), n)) {
			n++
		}
		return n
	}

	steps := []struct {
		diverging bool
		wantLEO   int64
	}{
		{true, 5},   // intermediate: epoch 1 unknown here, truncate to the end of epoch 0
		{true, 3},   // the leader's epoch 0 ends at 3
		{false, 10}, // the leader's records
		{false, 10}, // caught up
	}
	for i, s := range steps {
		d := roundTrip()
		leo, hw, match := follower.Log().LogEndOffset(), follower.HighWatermark(), matches()
		t.Logf("fetch %d: diverging %+v, log end %d, hw %d, matches the leader up to %d", i+1, d, leo, hw, match)
		if (d != nil) != s.diverging || leo != s.wantLEO {
			t.Fatalf("fetch %d: diverging %+v, log end %d; want diverging %v, log end %d", i+1, d, leo, s.diverging, s.wantLEO)
		}
		if hw > match {
			t.Fatalf("fetch %d: follower hw %d covers records that differ from the leader's (logs match up to %d)", i+1, hw, match)
		}
	}
	if hw := follower.HighWatermark(); hw != leaderHW {
		t.Fatalf("follower hw %d after catching up, want %d", hw, leaderHW)
	}
	if match := matches(); match != leader.Log().LogEndOffset() {
		t.Fatalf("replicas match up to %d only", match)
	}
}

// recordsAt returns the value of the record at offset in l.
func recordsAt(t *testing.T, l *storage.Log, offset int64) []byte {
	t.Helper()
	recs, err := storagetest.Records(readLog(t, l, offset, math.MaxInt64))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Offset == offset {
			return r.Value
		}
	}
	t.Fatalf("offset %d not in the log", offset)
	return nil
}

// A fetch asks the leader to wait no longer than the end of the earliest
// partition backoff (rounded up to a whole ms, at least 1 ms), so that the
// partition joins the next fetch then.
func TestMaxWaitMillis(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, c := range []struct {
		backoffEnd time.Time
		want       int32
	}{
		{time.Time{}, 500},
		{now.Add(time.Second), 500},
		{now.Add(50 * time.Millisecond), 50},
		{now.Add(4*time.Millisecond + time.Microsecond), 5},
		{now.Add(time.Microsecond), 1},
		{now.Add(-time.Millisecond), 1},
	} {
		if got := maxWaitMillis(500*time.Millisecond, c.backoffEnd, now); got != c.want {
			t.Errorf("backoff ends in %v: MaxWaitMillis %d, want %d", c.backoffEnd.Sub(now), got, c.want)
		}
	}
}

// A partition whose leader answered that its metadata is behind this
// follower's is fetched again after leaderBehindBackoff, doubling; other
// errors back off from BackoffInitial.
func TestRetryBackoffWhenLeaderBehind(t *testing.T) {
	cfg := DefaultConfig(2)
	f, err := newFetcher(cfg, 1, "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err   error
		first time.Duration
	}{
		{kerr.UnknownTopicID, leaderBehindBackoff},
		{kerr.UnknownTopicOrPartition, leaderBehindBackoff},
		{kerr.NotLeaderForPartition, leaderBehindBackoff},
		{kerr.UnknownLeaderEpoch, leaderBehindBackoff},
		{kerr.FencedLeaderEpoch, cfg.BackoffInitial},
		{kerr.KafkaStorageError, cfg.BackoffInitial},
	} {
		st := &fetchState{}
		for i, want := range []time.Duration{c.first, 2 * c.first} {
			before := time.Now()
			f.retry(st, c.err)
			if d := st.retryAt.Sub(before); d < want || d > want+time.Second {
				t.Errorf("%v, failure %d: backoff %v, want %v", c.err, i+1, d, want)
			}
		}
	}
}
