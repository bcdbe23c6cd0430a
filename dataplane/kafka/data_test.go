package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

const node = 1

var topicID = [16]byte{0xab, 1}

// newDataHandlers returns handlers over a real storage manager in a temp dir,
// with topic "t" (2 partitions led here, ISR {1}), topic "f" (led by broker
// 2) and topic "w" (led here, ISR {1,2}: acks=all waits for broker 2).
func newDataHandlers(t *testing.T) *Handlers {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := partition.NewManager(node, store, nil)
	t.Cleanup(func() { _ = m.Close() })
	img := image.New()
	img.Index = 1
	for _, b := range []int32{1, 2} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "10.0.0." + fmt.Sprint(b), Port: 9092, Epoch: 1}
	}
	mk := func(name string, id [16]byte, n int, leader int32, isr []int32) {
		tp := &image.Topic{Name: name, ID: id}
		for i := range n {
			tp.Partitions = append(tp.Partitions, &image.Partition{Partition: int32(i), Replicas: []int32{1, 2}, ISR: isr, Leader: leader, LeaderEpoch: 3})
		}
		img.Topics[name] = tp
	}
	mk("t", topicID, 2, node, []int32{node})
	mk("f", [16]byte{2}, 1, 2, []int32{2, node})
	mk("w", [16]byte{3}, 1, node, []int32{node, 2})
	m.ApplyImage(img)
	return &Handlers{Config: Config{NodeID: node, FetchMaxBytes: 50 << 20}, Partitions: m}
}

func request(body kmsg.Request, version int16) *wire.Request {
	body.SetVersion(version)
	return &wire.Request{Header: wire.Header{Key: body.Key(), Version: version}, Body: body, Received: time.Now()}
}

func batch(n, size int) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = make([]byte, size)
	}
	return storagetest.MakeBatch(recs, -1, -1, -1)
}

func produceRequest(version, acks int16, timeoutMs int32, topic string, part int32, records []byte) *wire.Request {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return request(req, version)
}

func produce(t *testing.T, h *Handlers, version, acks int16, timeoutMs int32, topic string, part int32, records []byte) *kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp, err := h.handleProduce(context.Background(), produceRequest(version, acks, timeoutMs, topic, part, records))
	if err != nil {
		t.Fatal(err)
	}
	if acks == 0 {
		if resp != nil {
			t.Fatal("acks=0 produce got a response")
		}
		return nil
	}
	pr := wire.Resolve(resp).(*kmsg.ProduceResponse)
	return &pr.Topics[0].Partitions[0]
}

type fetchPart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int32
	epoch     int32
}

func fetchRequest(h *Handlers, version int16, maxWaitMs, minBytes, maxBytes int32, parts ...fetchPart) *wire.Request {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWaitMs, minBytes, maxBytes
	for _, p := range parts {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = p.topic
		if img := h.Partitions.Image(); img.Topics[p.topic] != nil {
			rt.TopicID = img.Topics[p.topic].ID
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p.partition, p.offset, p.maxBytes, p.epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return request(req, version)
}

func fetch(t *testing.T, h *Handlers, ctx context.Context, version int16, maxWaitMs, minBytes, maxBytes int32, parts ...fetchPart) *kmsg.FetchResponse {
	t.Helper()
	resp, err := h.handleFetch(ctx, fetchRequest(h, version, maxWaitMs, minBytes, maxBytes, parts...))
	if err != nil {
		t.Fatal(err)
	}
	return resolveFetch(t, resp)
}

// resolveFetch turns a handler's answer into what a client decodes: file
// ranges (sendfile) read in, encoded and decoded at the request's version.
func resolveFetch(t *testing.T, resp kmsg.Response) *kmsg.FetchResponse {
	t.Helper()
	if fr, ok := resp.(*wire.FileResponse); ok {
		r, err := fr.Resolve()
		if err != nil {
			t.Fatalf("resolve file ranges: %v", err)
		}
		resp = r
	}
	return resp.(*kmsg.FetchResponse)
}

// batchOffsets decodes the batch headers of fetched data.
func batchOffsets(t *testing.T, data []byte) []int64 {
	t.Helper()
	var out []int64
	if err := storage.SplitBatches(data, func(b []byte) error {
		if err := storage.ValidateBatch(b); err != nil {
			return err
		}
		h, err := storage.ParseBatchHeader(b)
		out = append(out, h.BaseOffset)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProduceThenFetchEveryVersion(t *testing.T) {
	h := newDataHandlers(t)
	for i, v := range []int16{3, 7, 12} {
		op := produce(t, h, v, 1, 1000, "t", 0, batch(2, 10))
		if op.ErrorCode != 0 || op.BaseOffset != int64(2*i) || op.LogAppendTime != -1 || op.LogStartOffset != 0 {
			t.Fatalf("produce v%d: %+v", v, op)
		}
	}
	produce(t, h, 9, 0, 1000, "t", 0, batch(1, 10)) // acks=0: offset 6, no answer
	op := produce(t, h, 12, -1, 1000, "t", 0, batch(1, 10))
	if op.ErrorCode != 0 || op.BaseOffset != 7 {
		t.Fatalf("acks=all: %+v", op)
	}
	for _, v := range []int16{4, 11, 12, 13, 16} {
		resp := fetch(t, h, context.Background(), v, 0, 0, 1<<20, fetchPart{"t", 0, 0, 1 << 20, -1})
		if resp.ErrorCode != 0 || resp.SessionID != 0 {
			t.Fatalf("fetch v%d: top-level %d session %d", v, resp.ErrorCode, resp.SessionID)
		}
		fp := resp.Topics[0].Partitions[0]
		wantStart := int64(0)
		if v < 5 { // LogStartOffset is on the wire from v5
			wantStart = -1
		}
		if fp.ErrorCode != 0 || fp.HighWatermark != 8 || fp.LastStableOffset != 8 || fp.LogStartOffset != wantStart || fp.PreferredReadReplica != -1 {
			t.Fatalf("fetch v%d: %+v", v, fp)
		}
		if got := batchOffsets(t, fp.RecordBatches); fmt.Sprint(got) != "[0 2 4 6 7]" {
			t.Fatalf("fetch v%d batches %v", v, got)
		}
		// The response encodes (kmsg round trip).
		resp.SetVersion(v)
		if len(resp.AppendTo(nil)) == 0 {
			t.Fatal("empty encoding")
		}
	}
}

func TestProduceErrors(t *testing.T) {
	h := newDataHandlers(t)
	if op := produce(t, h, 9, 2, 1000, "t", 0, batch(1, 10)); op.ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: %d", op.ErrorCode)
	}
	if op := produce(t, h, 9, 1, 1000, "nope", 0, batch(1, 10)); op.ErrorCode != kerr.UnknownTopicOrPartition.Code || op.BaseOffset != -1 {
		t.Fatalf("unknown topic: %+v", op)
	}
	if op := produce(t, h, 9, 1, 1000, "t", 0, []byte{1, 2, 3}); op.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("garbage records: %d", op.ErrorCode)
	}
	// Led by broker 2: NOT_LEADER_OR_FOLLOWER with the KIP-951 hint at v10+.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "f"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch(1, 10)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := h.handleProduce(context.Background(), request(req, 10))
	if err != nil {
		t.Fatal(err)
	}
	pr := wire.Resolve(resp).(*kmsg.ProduceResponse)
	op := pr.Topics[0].Partitions[0]
	if op.ErrorCode != kerr.NotLeaderForPartition.Code || op.CurrentLeader.LeaderID != 2 || op.CurrentLeader.LeaderEpoch != 3 {
		t.Fatalf("follower partition: %+v", op)
	}
	if len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != 2 || pr.Brokers[0].Host != "10.0.0.2" {
		t.Fatalf("node endpoints %+v", pr.Brokers)
	}
}

func TestProduceAcksAllTimesOutWithoutFollower(t *testing.T) {
	h := newDataHandlers(t)
	start := time.Now()
	op := produce(t, h, 9, -1, 50, "w", 0, batch(1, 10))
	if op.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("acks=all without the follower: %+v", op)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("answered before the request timeout")
	}
	// Once the follower reports, a second acks=all produce completes.
	p, err := h.Partitions.Partition("w", 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan kmsg.Response, 1)
	go func() {
		resp, _ := h.handleProduce(context.Background(), produceRequest(9, -1, 10_000, "w", 0, batch(1, 10)))
		done <- wire.Resolve(resp)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Log().LogEndOffset() < 2 || p.Waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("second produce never parked")
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.UpdateFollowerFetch(2, 2); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-done:
		if op := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; op.ErrorCode != 0 || op.BaseOffset != 1 {
			t.Fatalf("acks=all after the follower caught up: %+v", op)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acks=all produce not woken")
	}
}

func TestFetchLongPollWakesOnAppend(t *testing.T) {
	h := newDataHandlers(t)
	p, _ := h.Partitions.Partition("t", 1)
	done := make(chan kmsg.Response, 1)
	start := time.Now()
	req := fetchRequest(h, 12, 10_000, 1, 1<<20, fetchPart{"t", 0, 0, 1 << 20, -1}, fetchPart{"t", 1, 0, 1 << 20, -1})
	go func() {
		resp, _ := h.handleFetch(context.Background(), req)
		done <- wire.Resolve(resp)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("fetch never parked")
		}
		time.Sleep(time.Millisecond)
	}
	if op := produce(t, h, 9, 1, 1000, "t", 1, batch(1, 10)); op.ErrorCode != 0 {
		t.Fatalf("produce: %d", op.ErrorCode)
	}
	select {
	case resp := <-done:
		if time.Since(start) >= 10*time.Second {
			t.Fatal("fetch waited out MaxWait instead of waking")
		}
		if got := resolveFetch(t, resp).Topics[1].Partitions[0]; len(got.RecordBatches) == 0 || got.HighWatermark != 1 {
			t.Fatalf("woken fetch: %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fetch not woken by the append")
	}
	if p.Waiting() != 0 {
		t.Fatal("fetch left its waiter registered")
	}

	// MaxWait expires with nothing new: an empty answer, no error.
	resp := fetch(t, h, context.Background(), 12, 20, 1, 1<<20, fetchPart{"t", 0, 0, 1 << 20, -1})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("expired fetch %+v", fp)
	}
	// A cancelled context ends the wait too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fetch(t, h, ctx, 12, 60_000, 1, 1<<20, fetchPart{"t", 0, 0, 1 << 20, -1})
}

func TestFetchMaxBytesReturnsAtLeastOneBatch(t *testing.T) {
	h := newDataHandlers(t)
	one := len(batch(4, 1024))
	for part := int32(0); part < 2; part++ {
		for range 3 {
			if op := produce(t, h, 9, 1, 1000, "t", part, batch(4, 1024)); op.ErrorCode != 0 {
				t.Fatal(op.ErrorCode)
			}
		}
	}
	// Partition max bytes below one batch: still one whole batch.
	resp := fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"t", 0, 0, 10, -1})
	if got := batchOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); fmt.Sprint(got) != "[0]" {
		t.Fatalf("partition max 10: batches %v", got)
	}
	// Total max bytes below one batch: the first partition gets one batch,
	// the second nothing (but its offsets).
	resp = fetch(t, h, context.Background(), 12, 0, 0, 10, fetchPart{"t", 0, 0, 1 << 20, -1}, fetchPart{"t", 1, 0, 1 << 20, -1})
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
	if len(p0.RecordBatches) != one || len(p1.RecordBatches) != 0 || p1.HighWatermark != 12 {
		t.Fatalf("max bytes 10: %d and %d bytes (one batch %d), hw %d", len(p0.RecordBatches), len(p1.RecordBatches), one, p1.HighWatermark)
	}
	// Room for two batches in total, split across partitions.
	resp = fetch(t, h, context.Background(), 12, 0, 0, int32(2*one), fetchPart{"t", 0, 8, 1 << 20, -1}, fetchPart{"t", 1, 0, 1 << 20, -1})
	if a, b := len(resp.Topics[0].Partitions[0].RecordBatches), len(resp.Topics[1].Partitions[0].RecordBatches); a != one || b != one {
		t.Fatalf("max bytes two batches: %d + %d, want %d each", a, b, one)
	}
}

func TestFetchErrors(t *testing.T) {
	h := newDataHandlers(t)
	produce(t, h, 9, 1, 1000, "t", 0, batch(3, 10))

	resp := fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"t", 0, 50, 1 << 20, -1})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.HighWatermark != 3 || fp.LogStartOffset != 0 {
		t.Fatalf("out of range: %+v", fp)
	}
	resp = fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"t", 0, 0, 1 << 20, 2})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("old epoch: %+v", fp)
	}
	resp = fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"t", 0, 0, 1 << 20, 4})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("new epoch: %+v", fp)
	}
	resp = fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"f", 0, 0, 1 << 20, -1})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != 2 {
		t.Fatalf("follower: %+v", fp)
	}
	resp = fetch(t, h, context.Background(), 12, 0, 0, 1<<20, fetchPart{"nope", 0, 0, 1 << 20, -1})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", fp)
	}
	// v13+: topics by id; an unknown id (the zero id here) is UNKNOWN_TOPIC_ID.
	resp = fetch(t, h, context.Background(), 13, 0, 0, 1<<20, fetchPart{"nope", 0, 0, 1 << 20, -1})
	if fp := resp.Topics[0].Partitions[0]; fp.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: %+v", fp)
	}
	// An error answers at once even with MaxWait and MinBytes set.
	start := time.Now()
	fetch(t, h, context.Background(), 12, 10_000, 1<<20, 1<<20, fetchPart{"nope", 0, 0, 1 << 20, -1})
	if time.Since(start) > 5*time.Second {
		t.Fatal("fetch with an error waited")
	}
	// An incremental fetch of a session we never created.
	req := kmsg.NewPtrFetchRequest()
	req.SessionID, req.SessionEpoch = 42, 1
	r, _ := h.handleFetch(context.Background(), request(req, 12))
	if resolveFetch(t, r).ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatal("unknown session not refused")
	}
}

func TestListOffsets(t *testing.T) {
	h := newDataHandlers(t)
	produce(t, h, 9, 1, 1000, "t", 0, batch(3, 10))
	produce(t, h, 9, 1, 1000, "t", 0, batch(2, 10))
	list := func(v int16, ts int64, epoch int32, topic string) kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = ts, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := h.handleListOffsets(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	if p := list(1, -1, -1, "t"); p.ErrorCode != 0 || p.Offset != 5 {
		t.Fatalf("latest v1: %+v", p)
	}
	if p := list(8, -1, 3, "t"); p.ErrorCode != 0 || p.Offset != 5 || p.LeaderEpoch != 3 {
		t.Fatalf("latest v8: %+v", p)
	}
	if p := list(8, -2, -1, "t"); p.ErrorCode != 0 || p.Offset != 0 || p.LeaderEpoch != 3 {
		t.Fatalf("earliest: %+v", p)
	}
	if p := list(8, 0, -1, "t"); p.ErrorCode != 0 || p.Offset != 0 {
		t.Fatalf("timestamp 0: %+v", p)
	}
	if p := list(8, 1<<62, -1, "t"); p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 {
		t.Fatalf("future timestamp: %+v", p)
	}
	if p := list(8, -3, -1, "t"); p.ErrorCode != 0 || p.Offset < 0 || p.Offset > 4 {
		t.Fatalf("max timestamp: %+v", p)
	}
	if p := list(8, -1, 1, "t"); p.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("old epoch: %+v", p)
	}
	if p := list(8, -1, -1, "f"); p.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower: %+v", p)
	}
	if p := list(8, -1, -1, "nope"); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown: %+v", p)
	}
}

func TestInitProducerID(t *testing.T) {
	h := &Handlers{}
	initPID := func(v int16, txn *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = txn, id, epoch
		resp, err := h.handleInitProducerID(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.InitProducerIDResponse)
	}
	if r := initPID(4, nil, -1, -1); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("without a controller: %+v", r)
	}
	var blocks int
	h.producerIDs.fetch = func(context.Context) (int64, int32, error) {
		blocks++
		if blocks == 3 {
			return 0, 0, errors.New("controller down")
		}
		return int64(1000 * blocks), 2, nil
	}
	var got []int64
	for range 4 {
		r := initPID(0, nil, -1, -1)
		if r.ErrorCode != 0 || r.ProducerEpoch != 0 {
			t.Fatalf("init: %+v", r)
		}
		got = append(got, r.ProducerID)
	}
	if fmt.Sprint(got) != "[1000 1001 2000 2001]" || blocks != 2 {
		t.Fatalf("ids %v from %d blocks", got, blocks)
	}
	if r := initPID(4, nil, -1, -1); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("block request failed: %+v", r)
	}
	if r := initPID(4, nil, 77, 3); r.ErrorCode != 0 || r.ProducerID != 77 || r.ProducerEpoch != 4 {
		t.Fatalf("epoch bump: %+v", r)
	}
	if r := initPID(4, nil, 77, 32766); r.ErrorCode != 0 || r.ProducerID == 77 || r.ProducerEpoch != 0 {
		t.Fatalf("epoch overflow: %+v", r)
	}
	txn := "tx"
	// Without a transaction coordinator (Handlers.Txns nil) a
	// transactional producer is told to retry.
	if r := initPID(4, &txn, -1, -1); r.ErrorCode != kerr.CoordinatorNotAvailable.Code || r.ProducerID != -1 {
		t.Fatalf("transactional: %+v", r)
	}
}

func TestErrorTable(t *testing.T) {
	for _, e := range errorTable {
		if got := errorCode(fmt.Errorf("context: %w", e.err)); got != e.code.Code {
			t.Errorf("%v wrapped -> %d, want %d", e.err, got, e.code.Code)
		}
	}
	if errorCode(nil) != 0 || errorCode(errors.New("x")) != kerr.UnknownServerError.Code {
		t.Fatal("nil / unknown errors")
	}
	for _, err := range []error{
		storage.ErrOffsetOutOfRange, storage.ErrCorruptBatch, storage.ErrBatchTooLarge, storage.ErrOutOfOrderSequence,
		storage.ErrInvalidProducerEpoch, storage.ErrUnknownProducerID, storage.ErrClosed, storage.ErrDiskFull,
		storage.ErrMarkerMissing, partition.ErrNotLeaderOrFollower, partition.ErrUnknownTopicOrPartition, partition.ErrUnknownTopicID,
		partition.ErrFencedLeaderEpoch, partition.ErrUnknownLeaderEpoch, partition.ErrNotEnoughReplicas,
		partition.ErrNotEnoughReplicasAfterAppend, partition.ErrRequestTimedOut, partition.ErrUnsupportedMessageFormat,
		partition.ErrInvalidRecord, partition.ErrInvalidTxnState, partition.ErrClosed,
	} {
		if !isKnownError(err) {
			t.Errorf("%v is not in the error table", err)
		}
	}
}
