package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage/storagetest"
	"github.com/skein-io/skein/test/harness"
)

// txnProducer writes transactional batches with a fixed producer id and
// epoch (the transaction coordinator does not exist yet: the test plays
// it, with raw Produce and WriteTxnMarkers requests).
type txnProducer struct {
	id  int64
	seq int32
}

// TestTransactionMarkers: 3 brokers, a topic with RF 3 and
// min.insync.replicas 2. Producer A writes transactional batches that
// are committed, B batches that are aborted (WriteTxnMarkers, as a
// coordinator would send them), interleaved with plain records, and C
// leaves a transaction open. A franz-go read_committed consumer must see
// exactly the committed and plain records, none of B's, nothing from C's
// first offset on (ListOffsets latest under read_committed is that
// offset), while a read_uncommitted one sees everything. Then the leader
// is SIGKILLed, C is committed on the new leader, and read_committed
// consumers (franz-go, kcat when present, skein consume --isolation
// read_committed) see C's records too but
// still none of B's; the restarted broker catches up and the replicas are
// byte-identical (`skein replicas verify` included).
func TestTransactionMarkers(t *testing.T) {
	const topic = "txn"
	// The test plays the coordinator: partition leaders must not ask the
	// real one (KIP-890 verification) about its made-up producers.
	c := harness.StartCluster(t, harness.Options{Brokers: 3,
		BrokerArgs: []string{"--transaction-partition-verification-enable=false"}})
	createTopic(t, c, topic, 1, 3, map[string]*string{"min.insync.replicas": strPtr("2")})

	leaderID := partitionLeader(t, c, topic, 0)
	a, b, open := &txnProducer{id: 900_001}, &txnProducer{id: 900_002}, &txnProducer{id: 900_003}
	var committed, aborted, plain, pending []string
	produce := func(leader int32, p *txnProducer, vals ...string) {
		t.Helper()
		recs := make([][]byte, len(vals))
		for i, v := range vals {
			recs[i] = []byte(v)
		}
		var batch []byte
		if p == nil {
			batch = storagetest.MakeBatch(recs, -1, -1, -1)
		} else {
			batch = storagetest.MakeTxnBatch(recs, p.id, 0, p.seq)
			p.seq += int32(len(vals))
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = 0, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := c.Broker(leader).Request(req, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode); err != nil {
			t.Fatalf("produce %v: %v", vals, err)
		}
	}
	for i := range 4 {
		produce(leaderID, a, fmt.Sprintf("commit-%d-a", i), fmt.Sprintf("commit-%d-b", i))
		committed = append(committed, fmt.Sprintf("commit-%d-a", i), fmt.Sprintf("commit-%d-b", i))
		produce(leaderID, b, fmt.Sprintf("abort-%d", i))
		aborted = append(aborted, fmt.Sprintf("abort-%d", i))
		produce(leaderID, nil, fmt.Sprintf("plain-%d", i))
		plain = append(plain, fmt.Sprintf("plain-%d", i))
	}
	// A's last batch comes after B's last: a consumer that let B's records
	// through would show them before it.
	produce(leaderID, a, "commit-last")
	committed = append(committed, "commit-last")

	markers := func(leader int32, commit bool, pids ...int64) {
		t.Helper()
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		for _, pid := range pids {
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, 0, commit, 1
			mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			mt.Topic, mt.Partitions = topic, []int32{0}
			m.Topics = append(m.Topics, mt)
			req.Markers = append(req.Markers, m)
		}
		resp, err := c.Broker(leader).Request(req, 35*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
			if err := kerr.ErrorForCode(m.Topics[0].Partitions[0].ErrorCode); err != nil {
				t.Fatalf("marker for producer %d on broker %d: %v", m.ProducerID, leader, err)
			}
		}
	}
	markers(leaderID, true, a.id)
	markers(leaderID, false, b.id)
	// C's transaction stays open: the LSO stops at its first offset.
	produce(leaderID, nil, "plain-before-open")
	plain = append(plain, "plain-before-open")
	lsoWant := latestOffset(t, c, topic, kgo.ReadUncommitted())
	produce(leaderID, open, "open-0", "open-1")
	produce(leaderID, nil, "plain-after-open")
	pending = append(pending, "open-0", "open-1", "plain-after-open")
	if got := latestOffset(t, c, topic, kgo.ReadCommitted()); got != lsoWant {
		t.Fatalf("ListOffsets latest under read_committed = %d, want the open transaction's first offset %d", got, lsoWant)
	}

	visible := append(append([]string{}, committed...), plain...)
	checkConsume(t, c, topic, kgo.ReadCommitted(), visible, append(append([]string{}, aborted...), pending...))
	all := append(append(append([]string{}, visible...), aborted...), pending...)
	checkConsume(t, c, topic, kgo.ReadUncommitted(), all, nil)

	// The leader dies; C is committed on the new one.
	old := c.Broker(leaderID)
	old.MustKill()
	var newLeader int32
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		newLeader = partitionLeader(t, c, topic, 0)
		return newLeader != leaderID, fmt.Sprintf("leader still %d", newLeader)
	})
	markers(newLeader, true, open.id)
	visible = append(visible, pending...)
	checkConsume(t, c, topic, kgo.ReadCommitted(), visible, aborted)
	checkKcatReadCommitted(t, c, topic, visible, aborted)
	res := c.RunCLI(t, 30*time.Second, nil, "consume", topic, "--from-beginning", "--isolation", "read_committed",
		"--max-messages", strconv.Itoa(len(visible)))
	if res.Err != nil {
		t.Fatalf("skein consume --isolation read_committed: %v\n%s", res.Err, res.Stderr)
	}
	if lines := strings.Fields(res.Stdout); len(lines) != len(visible) || !sameSet(lines, visible) {
		t.Fatalf("skein consume --isolation read_committed printed %v, want %v", lines, visible)
	}

	old.Restart()
	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic); res.Err != nil {
		t.Fatalf("skein replicas verify %s: %v\n%s%s", topic, res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("read_committed saw %d records, never the %d aborted ones; replicas identical after the leader kill", len(visible), len(aborted))
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// latestOffset answers ListOffsets latest for partition 0 at an isolation
// level.
func latestOffset(t *testing.T, c *harness.Cluster, topic string, level kgo.IsolationLevel) int64 {
	t.Helper()
	cl := c.Client(t)
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 0
	if level == kgo.ReadCommitted() {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var off int64
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return false, err.Error()
		}
		off = p.Offset
		return true, ""
	})
	return off
}

// checkConsume reads the topic from the start at an isolation level until
// it saw every value of want (in order), failing at once on a value of
// never or one out of order.
func checkConsume(t *testing.T, c *harness.Cluster, topic string, level kgo.IsolationLevel, want, never []string) {
	t.Helper()
	cl := c.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(level),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	remaining := map[string]bool{}
	for _, v := range want {
		remaining[v] = true
	}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("isolation %v: read %v, still missing %d of %v", level, got, len(remaining), want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if slices.Contains(never, v) {
				t.Fatalf("isolation %v: read %q at offset %d, which it must not see (read so far %v)", level, v, r.Offset, got)
			}
			got = append(got, v)
			delete(remaining, v)
		})
	}
	// The order of what was seen is the produce order.
	var order []string
	for _, v := range got {
		if slices.Contains(want, v) {
			order = append(order, v)
		}
	}
	if len(order) != len(want) {
		t.Fatalf("isolation %v: read %v, want %v", level, got, want)
	}
}

// checkKcatReadCommitted reads the topic with kcat (librdkafka) under
// isolation.level=read_committed up to the end and checks the values.
func checkKcatReadCommitted(t *testing.T, c *harness.Cluster, topic string, want, never []string) {
	t.Helper()
	kcat := kcatBinary(t)
	var lines []string
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		res := harness.RunCommand(t, 20*time.Second, nil, kcat, "-C", "-b", c.Bootstrap(), "-t", topic, "-p", "0",
			"-o", "beginning", "-e", "-q", "-f", "%s\n", "-X", "isolation.level=read_committed")
		if res.Err != nil {
			return false, fmt.Sprintf("kcat: %v: %s", res.Err, res.Stderr)
		}
		lines = strings.Fields(res.Stdout)
		for _, v := range lines {
			if slices.Contains(never, v) {
				t.Fatalf("kcat read_committed read %q (read %v)", v, lines)
			}
		}
		for _, v := range want {
			if !slices.Contains(lines, v) {
				return false, fmt.Sprintf("kcat read %v, missing %q", lines, v)
			}
		}
		return true, ""
	})
}
