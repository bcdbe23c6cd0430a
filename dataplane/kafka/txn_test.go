package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage/storagetest"
)

func markersRequest(pid int64, epoch int16, commit bool, topic string, parts ...int32) *wire.Request {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, 1
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, parts
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	return request(req, 1)
}

// TestTransactionAPIs: through the registry (authorization gates
// included), a transactional produce opens a transaction, the fetch
// answers the LSO and, under read_committed, stops there; WriteTxnMarkers
// needs CLUSTER_ACTION, answers per partition (NOT_LEADER_OR_FOLLOWER,
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH) and its abort shows
// in read_committed fetches as an aborted transaction; DescribeProducers
// shows the producer.
func TestTransactionAPIs(t *testing.T) {
	h := newDataHandlers(t)
	h.Authorizer = authz.New(authz.Config{SuperUsers: []string{"User:broker"}}, func() []image.ACL { return h.Partitions.Image().ACLs })
	r := wire.NewRegistry()
	h.Register(r)
	setACLs(h, aclEntry("1", kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeLiteral, "User:*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow))

	if c := serve(t, r, "User:u", produceRequest(9, 1, 1000, "t", 0, batch(2, 10))).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatal(kerr.ErrorForCode(c))
	}
	txn := storagetest.MakeTxnBatch([][]byte{[]byte("a"), []byte("b")}, 77, 2, 0)
	if c := serve(t, r, "User:u", produceRequest(9, 1, 1000, "t", 0, txn)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("transactional produce: %v", kerr.ErrorForCode(c))
	}
	fetch := func(level int8) kmsg.FetchResponseTopicPartition {
		req := fetchRequest(h, 12, 0, 0, 1<<20, fetchPart{topic: "t", maxBytes: 1 << 20, epoch: -1})
		req.Body.(*kmsg.FetchRequest).IsolationLevel = level
		return resolveFetch(t, serve(t, r, "User:u", req)).Topics[0].Partitions[0]
	}
	if p := fetch(1); p.HighWatermark != 4 || p.LastStableOffset != 2 || len(p.RecordBatches) == 0 {
		t.Fatalf("read_committed with an open transaction: hw %d lso %d, %d bytes", p.HighWatermark, p.LastStableOffset, len(p.RecordBatches))
	}

	// Markers need CLUSTER_ACTION.
	resp := serve(t, r, "User:u", markersRequest(77, 2, false, "t", 0)).(*kmsg.WriteTxnMarkersResponse)
	if c := resp.Markers[0].Topics[0].Partitions[0].ErrorCode; c != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("markers from a client: %v", kerr.ErrorForCode(c))
	}
	resp = serve(t, r, "User:broker", markersRequest(77, 2, false, "t", 0, 7)).(*kmsg.WriteTxnMarkersResponse)
	parts := resp.Markers[0].Topics[0].Partitions
	if parts[0].ErrorCode != 0 || parts[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("abort: %v, %v", kerr.ErrorForCode(parts[0].ErrorCode), kerr.ErrorForCode(parts[1].ErrorCode))
	}
	if c := serve(t, r, "User:broker", markersRequest(77, 1, true, "t", 0)).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode; c != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch marker: %v", kerr.ErrorForCode(c))
	}
	if c := serve(t, r, "User:broker", markersRequest(77, 2, true, "f", 0)).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode; c != kerr.NotLeaderForPartition.Code {
		t.Fatalf("marker on a follower: %v", kerr.ErrorForCode(c))
	}
	p := fetch(1)
	if p.LastStableOffset != 5 || len(p.AbortedTransactions) != 1 || p.AbortedTransactions[0].ProducerID != 77 || p.AbortedTransactions[0].FirstOffset != 2 {
		t.Fatalf("read_committed after the abort: lso %d, aborted %+v", p.LastStableOffset, p.AbortedTransactions)
	}
	if p := fetch(0); len(p.AbortedTransactions) != 0 {
		t.Fatalf("read_uncommitted got aborted transactions %+v", p.AbortedTransactions)
	}

	dp := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "t", []int32{0}
	dp.Topics = append(dp.Topics, dt)
	dr := serve(t, r, "User:u", request(dp, 0)).(*kmsg.DescribeProducersResponse)
	ps := dr.Topics[0].Partitions[0]
	if ps.ErrorCode != 0 || len(ps.ActiveProducers) != 1 || ps.ActiveProducers[0].ProducerID != 77 ||
		ps.ActiveProducers[0].ProducerEpoch != 2 || ps.ActiveProducers[0].CoordinatorEpoch != 1 || ps.ActiveProducers[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("describe producers: %+v", ps)
	}
}
