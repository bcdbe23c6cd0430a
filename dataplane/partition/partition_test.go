package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

func TestProduceAcks1AdvancesHighWatermarkAndReads(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 3, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)

	b1 := batchOf(3, 100)
	res, err := p.AppendAsLeader(b1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset != 0 || res.LastOffset != 2 || res.LogAppendTime != -1 || res.LeaderEpoch != 3 {
		t.Fatalf("first append: %+v", res)
	}
	res, err = p.AppendAsLeader(batchOf(2, 100), -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset != 3 || res.LastOffset != 4 {
		t.Fatalf("second append: %+v", res)
	}
	if err := p.WaitCommitted(context.Background(), res); err != nil {
		t.Fatalf("acks=all with ISR of one: %v", err)
	}
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("hw = %d, want 5", hw)
	}
	rr, err := p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rr.HighWatermark != 5 || rr.LogStartOffset != 0 || rr.LeaderEpoch != 3 {
		t.Fatalf("read result %+v", rr)
	}
	data, err := rr.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	if err := storage.SplitBatches(data, func(b []byte) error {
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			return err
		}
		if h.PartitionLeaderEpoch != 3 {
			t.Errorf("batch at %d has leader epoch %d, want 3", h.BaseOffset, h.PartitionLeaderEpoch)
		}
		offsets = append(offsets, h.BaseOffset)
		return storage.ValidateBatch(b)
	}); err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 2 || offsets[0] != 0 || offsets[1] != 3 {
		t.Fatalf("batch offsets %v, want [0 3]", offsets)
	}
}

func TestDuplicateSequenceReturnsOriginalOffset(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)
	recs := [][]byte{[]byte("a"), []byte("b"), []byte("c")}

	if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil { // offsets 0-1
		t.Fatal(err)
	}
	first, err := p.AppendAsLeader(storagetest.MakeBatch(recs, 7, 0, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	if first.BaseOffset != 2 || first.Duplicate {
		t.Fatalf("first idempotent append %+v", first)
	}
	if _, err := p.AppendAsLeader(storagetest.MakeBatch(recs, 7, 0, 3), 1); err != nil {
		t.Fatal(err)
	}
	leo := p.Log().LogEndOffset()
	dup, err := p.AppendAsLeader(storagetest.MakeBatch(recs, 7, 0, 0), -1)
	if err != nil {
		t.Fatalf("duplicate: %v", err)
	}
	if !dup.Duplicate || dup.BaseOffset != 2 || dup.LastOffset != 4 {
		t.Fatalf("duplicate result %+v, want base 2 last 4", dup)
	}
	if got := p.Log().LogEndOffset(); got != leo {
		t.Fatalf("duplicate was written: log end %d -> %d", leo, got)
	}
	if err := p.WaitCommitted(context.Background(), dup); err != nil {
		t.Fatal(err)
	}
	// A gap in the sequence is refused.
	if _, err := p.AppendAsLeader(storagetest.MakeBatch(recs, 7, 0, 10), 1); !errors.Is(err, storage.ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: %v", err)
	}
}

func TestAcksAllWaitsForFollowerAndHighWatermarkGatesReads(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 1, []int32{testNode, 2}, nil)))
	p := mustPartition(t, m, "t", 0)

	b1 := batchOf(3, 50)
	r1, err := p.AppendAsLeader(b1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsLeader(batchOf(2, 50), 1); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("hw = %d before the follower reported, want 0", hw)
	}
	// Consumers see nothing above the high watermark.
	rr, err := p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil || rr.Size != 0 {
		t.Fatalf("read below hw 0: size %d err %v", rr.Size, err)
	}
	// A follower reads up to the log end.
	rr, err = p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: 2, LastFetchedEpoch: -1})
	if err != nil || rr.Size == 0 {
		t.Fatalf("replica read: size %d err %v", rr.Size, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitCommitted(ctx, r1); !errors.Is(err, ErrRequestTimedOut) {
		t.Fatalf("uncommitted wait: %v, want ErrRequestTimedOut", err)
	}

	done := make(chan error, 1)
	go func() { done <- p.WaitCommitted(context.Background(), r1) }()
	waitUntil(t, "produce parked", func() bool { return p.Waiting() == 1 })
	if err := p.UpdateFollowerFetch(2, 3); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acks=all wait not woken by the high watermark advance")
	}
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("hw = %d, want 3", hw)
	}
	rr, err = p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil || rr.Size != int64(len(b1)) {
		t.Fatalf("read below hw 3: size %d (want %d) err %v", rr.Size, len(b1), err)
	}
	// The high watermark never moves back.
	_ = p.UpdateFollowerFetch(2, 1)
	if hw := p.HighWatermark(); hw != 3 {
		t.Fatalf("hw moved back to %d", hw)
	}
}

func TestMinInsyncReplicas(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, map[string]string{"min.insync.replicas": "2"})))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(1, 10), -1); !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 1 < 2: %v", err)
	}
	if p.Log().LogEndOffset() != 0 {
		t.Fatal("refused batch was appended")
	}
	if _, err := p.AppendAsLeader(batchOf(1, 10), 1); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("hw moved to %d with the ISR below min.insync.replicas", hw)
	}
	// The config change applies: back to 1, the high watermark catches up.
	m.ApplyImage(testImage(2, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, nil)))
	if hw := p.HighWatermark(); hw != 1 {
		t.Fatalf("hw = %d after min.insync.replicas=1, want 1", hw)
	}
}

func TestLeadershipChangeEndsWaitsAndRefusesRequests(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 1, []int32{testNode, 2}, nil)))
	p := mustPartition(t, m, "t", 0)
	res, err := p.AppendAsLeader(batchOf(1, 10), -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.WaitCommitted(context.Background(), res) }()
	waitUntil(t, "produce parked", func() bool { return p.Waiting() == 1 })

	m.ApplyImage(testImage(2, testTopic("t", 1, 1, 2, 2, []int32{testNode, 2}, nil)))
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotLeaderOrFollower) {
			t.Fatalf("wait after losing leadership: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by the leadership change")
	}
	if st := p.State(); st.Role != RoleFollower || st.LeaderID != 2 || st.LeaderEpoch != 2 {
		t.Fatalf("state %+v", st)
	}
	if _, err := p.AppendAsLeader(batchOf(1, 10), 1); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("produce on follower: %v", err)
	}
	if _, err := p.Read(ReadParams{CurrentLeaderEpoch: -1, ReplicaID: -1}); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("fetch on follower: %v", err)
	}
	// Leader again at a new epoch: the epoch start offset is the log end.
	m.ApplyImage(testImage(3, testTopic("t", 1, 1, testNode, 3, []int32{testNode}, nil)))
	if st := p.State(); st.Role != RoleLeader || st.LeaderEpoch != 3 || st.LeaderEpochStartOffset != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestLeaderEpochChecks(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 5, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)
	for _, c := range []struct {
		epoch int32
		want  error
	}{{-1, nil}, {5, nil}, {4, ErrFencedLeaderEpoch}, {6, ErrUnknownLeaderEpoch}} {
		if _, err := p.Read(ReadParams{CurrentLeaderEpoch: c.epoch, ReplicaID: -1, MaxBytes: 100}); !errors.Is(err, c.want) && (err != nil || c.want != nil) {
			t.Errorf("read at epoch %d: %v, want %v", c.epoch, err, c.want)
		}
		if _, err := p.ListOffset(-1, c.epoch, -1); !errors.Is(err, c.want) && (err != nil || c.want != nil) {
			t.Errorf("list offsets at epoch %d: %v, want %v", c.epoch, err, c.want)
		}
	}
}

func TestOffsetOutOfRangeCarriesOffsets(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)
	if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil {
		t.Fatal(err)
	}
	rr, err := p.Read(ReadParams{FetchOffset: 100, MaxBytes: 100, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("read at 100: %v", err)
	}
	if rr.HighWatermark != 2 || rr.LogStartOffset != 0 {
		t.Fatalf("out of range result %+v", rr)
	}
	// At the log end: empty, no error.
	rr, err = p.Read(ReadParams{FetchOffset: 2, MaxBytes: 100, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil || rr.Size != 0 {
		t.Fatalf("read at the log end: %d %v", rr.Size, err)
	}
}

func TestReadReturnsAtLeastOneBatch(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)
	b := batchOf(4, 1024)
	size := len(b)
	for range 3 {
		if _, err := p.AppendAsLeader(batchOf(4, 1024), 1); err != nil {
			t.Fatal(err)
		}
	}
	rr, err := p.Read(ReadParams{FetchOffset: 0, MaxBytes: 10, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil || rr.Size != int64(size) {
		t.Fatalf("read 10 bytes: got %d bytes (one batch is %d) err %v", rr.Size, size, err)
	}
	rr, err = p.Read(ReadParams{FetchOffset: 0, MaxBytes: int32(2*size + 1), CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil || rr.Size != int64(2*size) {
		t.Fatalf("read two batches' worth: got %d want %d err %v", rr.Size, 2*size, err)
	}
}

func TestBatchValidation(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, map[string]string{"max.message.bytes": "2000"})))
	p := mustPartition(t, m, "t", 0)
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[batchOffsetCRC:], crc32.Checksum(b[batchOffsetAttributes:], castagnoli))
		return b
	}
	cases := []struct {
		name  string
		batch func() []byte
		want  error
	}{
		{"too large", func() []byte { return batchOf(3, 1000) }, storage.ErrBatchTooLarge},
		{"bad crc", func() []byte { b := batchOf(1, 10); b[len(b)-1] ^= 0xff; return b }, storage.ErrCorruptBatch},
		{"magic 1", func() []byte { b := batchOf(1, 10); b[batchOffsetMagic] = 1; return b }, ErrUnsupportedMessageFormat},
		{"truncated", func() []byte { b := batchOf(1, 10); return b[:len(b)-3] }, storage.ErrCorruptBatch},
		{"short", func() []byte { return []byte{1, 2, 3} }, storage.ErrCorruptBatch},
		{"empty", func() []byte { return nil }, storage.ErrCorruptBatch},
		{"two batches", func() []byte { return append(batchOf(1, 10), batchOf(1, 10)...) }, ErrInvalidRecord},
		{"transactional without producer id", func() []byte {
			b := batchOf(1, 10)
			b[batchOffsetAttributes+1] |= attrTransactional
			return recrc(b)
		}, ErrInvalidTxnState},
		{"control", func() []byte {
			b := batchOf(1, 10)
			b[batchOffsetAttributes+1] |= attrControl
			return recrc(b)
		}, ErrInvalidRecord},
	}
	for _, c := range cases {
		if _, err := p.AppendAsLeader(c.batch(), 1); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if leo := p.Log().LogEndOffset(); leo != 0 {
		t.Fatalf("rejected batches were appended: log end %d", leo)
	}
}

func TestLogAppendTime(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, map[string]string{"message.timestamp.type": "LogAppendTime"})))
	p := mustPartition(t, m, "t", 0)
	res, err := p.AppendAsLeader(batchOf(2, 10), 1)
	if err != nil {
		t.Fatal(err)
	}
	const now = 1_700_000_000_000
	if res.LogAppendTime != now {
		t.Fatalf("LogAppendTime = %d, want %d", res.LogAppendTime, now)
	}
	rr, err := p.Read(ReadParams{FetchOffset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := rr.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.ValidateBatch(data); err != nil {
		t.Fatalf("stamped batch fails validation: %v", err)
	}
	h, err := storage.ParseBatchHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Attributes&attrTimestampLogAppend == 0 || h.MaxTimestamp != now {
		t.Fatalf("attributes %#x max timestamp %d", h.Attributes, h.MaxTimestamp)
	}
}

func TestListOffset(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 4, []int32{testNode, 2}, nil)))
	p := mustPartition(t, m, "t", 0)
	for range 3 {
		if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.UpdateFollowerFetch(2, 4); err != nil {
		t.Fatal(err)
	}
	check := func(ts int64, replica int32, wantOffset int64) Offset {
		t.Helper()
		o, err := p.ListOffset(ts, -1, replica)
		if err != nil {
			t.Fatal(err)
		}
		if o.Offset != wantOffset {
			t.Fatalf("ListOffset(%d) = %+v, want offset %d", ts, o, wantOffset)
		}
		return o
	}
	if o := check(LatestTimestamp, -1, 4); o.LeaderEpoch != 4 {
		t.Fatalf("latest epoch %d", o.LeaderEpoch)
	}
	check(LatestTimestamp, 2, 6)
	if o := check(EarliestTimestamp, -1, 0); o.LeaderEpoch != 4 {
		t.Fatalf("earliest epoch %d", o.LeaderEpoch)
	}
	check(0, -1, 0)
	check(1<<62, -1, -1)
	ts, off := p.Log().MaxTimestamp()
	want := off
	if off >= 4 {
		want = -1 // above the high watermark
	}
	if o := check(MaxTimestamp, -1, want); want >= 0 && o.Timestamp != ts {
		t.Fatalf("max timestamp %+v, log says %d@%d", o, ts, off)
	}
}

func TestManagerCloseWakesWaiters(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode, 2}, nil)))
	p := mustPartition(t, m, "t", 0)
	res, err := p.AppendAsLeader(batchOf(1, 10), -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.WaitCommitted(context.Background(), res) }()
	waitUntil(t, "produce parked", func() bool { return p.Waiting() == 1 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotLeaderOrFollower) {
			t.Fatalf("wait after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the waiter")
	}
	if _, err := m.Partition("t", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Partition after Close: %v", err)
	}
}

func TestFetchWaiterWokenByAppend(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 2, testNode, 0, []int32{testNode}, nil)))
	p0, p1 := mustPartition(t, m, "t", 0), mustPartition(t, m, "t", 1)
	w := NewWaiter(WakeFollowerFetch)
	w.Watch(p0)
	w.Watch(p1)
	woken := make(chan bool, 1)
	go func() { woken <- w.Wait(context.Background(), time.Now().Add(10*time.Second)) }()
	if _, err := p1.AppendAsLeader(batchOf(1, 10), 1); err != nil {
		t.Fatal(err)
	}
	if !<-woken {
		t.Fatal("waiter timed out instead of waking on the append")
	}
	w.Close()
	w.Close()
	if p0.Waiting() != 0 || p1.Waiting() != 0 {
		t.Fatal("Close left the waiter registered")
	}
	// An expired deadline returns at once.
	if NewWaiter(WakeConsumerFetch).Wait(context.Background(), time.Now().Add(-time.Second)) {
		t.Fatal("expired wait reported a wake-up")
	}
}

func TestISRShrinkBelowMinimumEndsAcksAllWait(t *testing.T) {
	m, _ := newTestManager(t)
	cfg := map[string]string{"min.insync.replicas": "2"}
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode, 2}, cfg)))
	p := mustPartition(t, m, "t", 0)
	res, err := p.AppendAsLeader(batchOf(1, 10), -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.WaitCommitted(context.Background(), res) }()
	waitUntil(t, "produce parked", func() bool { return p.Waiting() == 1 })
	m.ApplyImage(testImage(2, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, cfg)))
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
			t.Fatalf("wait after the ISR shrank: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ISR shrink did not wake the waiter")
	}
}

// TestWaitersWokenOnlyByTheirEvents: with a follower in the ISR, an append
// does not move the high watermark, so it wakes follower fetches and not
// consumer fetches or acks=all produces; the follower's fetch that
// advances the high watermark wakes those two and not the follower fetch.
func TestWaitersWokenOnlyByTheirEvents(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 1, []int32{testNode, 2}, nil)))
	p := mustPartition(t, m, "t", 0)
	follower, consumer := NewWaiter(WakeFollowerFetch), NewWaiter(WakeConsumerFetch)
	defer follower.Close()
	defer consumer.Close()
	follower.Watch(p)
	consumer.Watch(p)
	woken := func(w *Waiter) bool {
		select {
		case <-w.ch:
			return true
		default:
			return false
		}
	}
	if _, err := p.AppendAsLeader(batchOf(3, 50), -1); err != nil {
		t.Fatal(err)
	}
	if !woken(follower) || woken(consumer) {
		t.Fatal("an append that leaves the high watermark should wake the follower fetch and only it")
	}
	if err := p.UpdateFollowerFetch(2, 3); err != nil {
		t.Fatal(err)
	}
	if p.HighWatermark() != 3 {
		t.Fatalf("high watermark %d, want 3", p.HighWatermark())
	}
	if woken(follower) || !woken(consumer) {
		t.Fatal("a high watermark advance should wake the consumer fetch and only it")
	}
}
