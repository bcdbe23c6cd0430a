package group

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
)

func txnCommit(t *testing.T, e *env, group string, pid int64, offset int64) {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "tx", group, pid, 0, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.c.TxnCommitOffsets(context.Background(), req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}
}

// marker writes a transaction marker of pid to group's offsets partition
// and tells the coordinator, as WriteTxnMarkers does.
func marker(t *testing.T, e *env, group string, pid int64, commit bool) {
	t.Helper()
	idx := PartitionFor(group, 2)
	p, err := e.parts.Partition(OffsetsTopic, idx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendMarker(partition.Marker{ProducerID: pid, ProducerEpoch: 0, Commit: commit, CoordinatorEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	e.c.CompleteTxn(idx, pid, commit)
}

func fetchOffset(t *testing.T, e *env, group string, stable bool) (int64, int16) {
	t.Helper()
	g := e.c.FetchOffsets(group, []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}, stable)
	if g.ErrorCode != 0 {
		t.Fatalf("fetch offsets: %v", kerr.ErrorForCode(g.ErrorCode))
	}
	p := g.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// TestTxnOffsetCommit: transactional offsets stay invisible (and make
// RequireStable fetches UNSTABLE_OFFSET_COMMIT) until the commit marker;
// an abort drops them; a coordinator that loads the partition resolves the
// records and markers the same way, also for a transaction still pending.
func TestTxnOffsetCommit(t *testing.T) {
	e := newEnv(t, nil)
	txnCommit(t, e, "g", 7, 10)
	if off, code := fetchOffset(t, e, "g", false); off != -1 || code != 0 {
		t.Fatalf("pending offset visible: %d %v", off, code)
	}
	if _, code := fetchOffset(t, e, "g", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable with a pending offset: %v", kerr.ErrorForCode(code))
	}
	marker(t, e, "g", 7, true)
	if off, code := fetchOffset(t, e, "g", true); off != 10 || code != 0 {
		t.Fatalf("after commit: %d %v", off, kerr.ErrorForCode(code))
	}
	txnCommit(t, e, "g", 7, 20)
	marker(t, e, "g", 7, false)
	if off, _ := fetchOffset(t, e, "g", true); off != 10 {
		t.Fatalf("after abort: %d, want 10", off)
	}
	// Another group's transaction left pending across a failover.
	txnCommit(t, e, "h", 8, 5)
	e.apply(2)
	e.apply(testNode)
	if off, _ := fetchOffset(t, e, "g", true); off != 10 {
		t.Fatalf("g after reload: %d, want 10", off)
	}
	if _, code := fetchOffset(t, e, "h", true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("h's pending offset after reload: %v", kerr.ErrorForCode(code))
	}
	marker(t, e, "h", 8, true)
	if off, code := fetchOffset(t, e, "h", true); off != 5 || code != 0 {
		t.Fatalf("h after its commit marker: %d %v", off, kerr.ErrorForCode(code))
	}
	// The next transaction of the same producer continues its sequence.
	txnCommit(t, e, "h", 8, 6)
	marker(t, e, "h", 8, true)
	if off, _ := fetchOffset(t, e, "h", false); off != 6 {
		t.Fatalf("h's second transaction: %d", off)
	}
}
