package partition

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

func txnBatch(pid int64, seq int32, n int) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = []byte{byte(pid), byte(seq), byte(i)}
	}
	return storagetest.MakeTxnBatch(recs, pid, 0, seq)
}

// TestTransactionsOnLeaderAndFollower: transactional batches and markers
// on a leader with one follower: the LSO stops at the open transaction
// and moves once the marker is committed, read_committed reads stop at it
// and carry the aborted transaction, ListOffsets latest is the LSO under
// read_committed, the follower copying the batches ends byte-identical
// with the same producer state and aborted transactions index, and the
// KIP-890 hook is asked when a transaction opens.
func TestTransactionsOnLeaderAndFollower(t *testing.T) {
	m1, _ := newTestManager(t)
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
	replicas := []int32{1, 2}
	m1.ApplyImage(testImage(1, testTopic("t", 1, 1, 1, 0, replicas, nil)))
	m2.ApplyImage(testImage(1, testTopic("t", 1, 1, 1, 0, replicas, nil)))
	p1, p2 := mustPartition(t, m1, "t", 0), mustPartition(t, m2, "t", 0)

	var asked []int64
	m1.SetTxnVerifier(func(_ context.Context, _, topic string, part int32, pid int64, epoch int16) error {
		asked = append(asked, pid)
		if pid == 99 {
			return ErrInvalidTxnState
		}
		return nil
	})
	replicate := func() {
		t.Helper()
		from := p2.Log().LogEndOffset()
		rr, err := p1.Read(ReadParams{FetchOffset: from, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: 2, LastFetchedEpoch: -1})
		if err != nil {
			t.Fatal(err)
		}
		if rr.Size > 0 {
			b, err := rr.ReadInto(nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p2.AppendAsFollower(0, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := p1.UpdateFollowerFetch(2, p2.Log().LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		if err := p2.UpdateFollowerHighWatermark(0, p1.HighWatermark()); err != nil {
			t.Fatal(err)
		}
	}
	produce := func(b []byte) AppendResult {
		t.Helper()
		if err := p1.VerifyTxn(context.Background(), "tx", b); err != nil {
			t.Fatal(err)
		}
		r, err := p1.AppendAsLeader(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	produce(batchOf(2, 10)) // 0-1
	a := produce(txnBatch(5, 0, 3))
	produce(txnBatch(5, 3, 2)) // continues: the hook is not asked again
	c := produce(txnBatch(6, 0, 2))
	produce(batchOf(1, 10))
	if !reflect.DeepEqual(asked, []int64{5, 6}) {
		t.Fatalf("verifier asked for %v, want [5 6]", asked)
	}
	if err := p1.VerifyTxn(context.Background(), "tx", txnBatch(99, 0, 1)); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("verifier refusal: %v", err)
	}
	replicate()
	hw := p1.HighWatermark()
	if hw != p1.Log().LogEndOffset() {
		t.Fatalf("hw %d, log end %d", hw, p1.Log().LogEndOffset())
	}
	if lso := p1.LastStableOffset(); lso != a.BaseOffset {
		t.Fatalf("LSO %d, want the first open transaction's %d", lso, a.BaseOffset)
	}
	rc := ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1, ReadCommitted: true}
	rr, err := p1.Read(rc)
	if err != nil || rr.NextOffset != a.BaseOffset || rr.LastStableOffset != a.BaseOffset || rr.HighWatermark != hw {
		t.Fatalf("read_committed: next %d lso %d hw %d err %v", rr.NextOffset, rr.LastStableOffset, rr.HighWatermark, err)
	}
	if off, _ := p1.ListOffsetIsolation(LatestTimestamp, -1, -1, true); off.Offset != a.BaseOffset {
		t.Fatalf("latest read_committed = %d, want %d", off.Offset, a.BaseOffset)
	}
	if off, _ := p1.ListOffsetIsolation(LatestTimestamp, -1, -1, false); off.Offset != hw {
		t.Fatalf("latest read_uncommitted = %d, want %d", off.Offset, hw)
	}

	// Commit 5, abort 6: answered once committed (the follower fetches).
	commit, err := p1.AppendMarker(Marker{ProducerID: 5, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	abort, err := p1.AppendMarker(Marker{ProducerID: 6, ProducerEpoch: 0, Commit: false, CoordinatorEpoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if lso := p1.LastStableOffset(); lso != a.BaseOffset {
		t.Fatalf("LSO %d before the markers are committed, want %d", lso, a.BaseOffset)
	}
	done := make(chan error, 1)
	go func() { done <- p1.WaitCommitted(context.Background(), abort) }()
	replicate()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	end := p1.Log().LogEndOffset()
	if lso := p1.LastStableOffset(); lso != end {
		t.Fatalf("LSO %d after the markers, want the log end %d", lso, end)
	}
	rr, err = p1.Read(rc)
	if err != nil || rr.NextOffset != end {
		t.Fatalf("read_committed after the markers: next %d err %v", rr.NextOffset, err)
	}
	want := []storage.AbortedTxn{{ProducerID: 6, FirstOffset: c.BaseOffset, LastOffset: abort.BaseOffset, LastStableOffset: abort.BaseOffset + 1}}
	if !reflect.DeepEqual(rr.AbortedTxns, want) {
		t.Fatalf("aborted %+v, want %+v", rr.AbortedTxns, want)
	}
	if rr, _ := p1.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1}); rr.AbortedTxns != nil {
		t.Fatalf("read_uncommitted carries aborted transactions %+v", rr.AbortedTxns)
	}
	_ = commit
	// A stale producer epoch is refused.
	if _, err := p1.AppendMarker(Marker{ProducerID: 5, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.AppendMarker(Marker{ProducerID: 5, ProducerEpoch: 0, Commit: false, CoordinatorEpoch: 1}); !errors.Is(err, storage.ErrInvalidProducerEpoch) {
		t.Fatalf("stale epoch marker: %v", err)
	}
	replicate()

	// The follower: same bytes, same transactional state.
	if !bytes.Equal(readAll(t, p1.Log()), readAll(t, p2.Log())) {
		t.Fatal("replicas differ")
	}
	if !reflect.DeepEqual(p1.Log().AbortedTxns(0, end+10), p2.Log().AbortedTxns(0, end+10)) ||
		!reflect.DeepEqual(p1.Log().Producers(), p2.Log().Producers()) {
		t.Fatalf("follower state differs:\n%+v\n%+v", p1.Log().Producers(), p2.Log().Producers())
	}
	if _, err := p2.AppendMarker(Marker{ProducerID: 5, ProducerEpoch: 1}); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("marker on a follower: %v", err)
	}
}
