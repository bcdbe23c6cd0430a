package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// The partition reassignment tests (KIP-455) run on 4 brokers, 101-104,
// and move replicas with AlterPartitionReassignments while records flow.

// createAssignedConfigs creates topic with one partition per replica list and
// waits for the leaders.
func createAssignedConfigs(t *testing.T, c *harness.Cluster, topic string, assignment [][]int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, replicas := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := c.Brokers[0].Request(req, 30*time.Second)
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if r := resp.(*kmsg.CreateTopicsResponse).Topics[0]; r.ErrorCode != 0 {
		t.Fatalf("create %s: %v (%s)", topic, kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
	}
	waitForLeaders(t, c, topic, len(assignment))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// alterAssignments sends AlterPartitionReassignments for topic (partition
// -> target; a nil target cancels) to broker via and fails the test on any
// error.
func alterAssignments(t *testing.T, via *harness.Node, topic string, targets map[int32][]int32) {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	for p, target := range targets {
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = p, target
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := via.Request(req, 40*time.Second)
	if err != nil {
		t.Fatalf("alter partition reassignments: %v", err)
	}
	r := resp.(*kmsg.AlterPartitionAssignmentsResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("alter partition reassignments: %v (%s)", kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage))
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("reassign %s-%d: %v (%s)", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode), deref(rp.ErrorMessage))
			}
		}
	}
}

// ongoingMoves lists the reassignments in progress through broker via:
// "topic-partition" -> the answer.
func ongoingMoves(via *harness.Node) (map[string]kmsg.ListPartitionReassignmentsResponseTopicPartition, error) {
	resp, err := via.Request(kmsg.NewPtrListPartitionReassignmentsRequest(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.ListPartitionReassignmentsResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return nil, err
	}
	out := map[string]kmsg.ListPartitionReassignmentsResponseTopicPartition{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s-%d", t.Topic, p.Partition)] = p
		}
	}
	return out, nil
}

// waitNoMoves waits until no reassignment is in progress.
func waitNoMoves(t *testing.T, via *harness.Node, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		moves, err := ongoingMoves(via)
		if err != nil {
			return false, err.Error()
		}
		if len(moves) > 0 {
			return false, fmt.Sprintf("%d partition(s) still moving: %v", len(moves), moves)
		}
		return true, ""
	})
}

// waitAssignment waits until every running broker's Metadata (but those
// in except: paused ones) shows each partition of topic on exactly its
// replicas (same order) with a leader among them and an ISR within them,
// and returns the last answer.
func waitAssignment(t *testing.T, c *harness.Cluster, topic string, want map[int32][]int32, timeout time.Duration, except ...int32) kadm.TopicDetail {
	t.Helper()
	var last kadm.TopicDetail
	harness.WaitFor(t, timeout, func() (bool, string) {
		for _, b := range c.Brokers {
			if !b.Running() || slices.Contains(except, b.ID) {
				continue
			}
			d, err := topicVia(b, topic)
			if err != nil {
				return false, err.Error()
			}
			for p, replicas := range want {
				got, ok := d.Partitions[p]
				if !ok || !slices.Equal(got.Replicas, replicas) || !slices.Contains(replicas, got.Leader) {
					return false, fmt.Sprintf("%s: partition %d: replicas %v leader %d, want replicas %v", b.Name, p, got.Replicas, got.Leader, replicas)
				}
				for _, r := range got.ISR {
					if !slices.Contains(replicas, r) {
						return false, fmt.Sprintf("%s: partition %d: ISR %v not within %v", b.Name, p, got.ISR, replicas)
					}
				}
			}
			last = d
		}
		return true, ""
	})
	return last
}

// topicVia is topic's Metadata as broker b answers it.
func topicVia(b *harness.Node, topic string) (kadm.TopicDetail, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := b.Request(req, 5*time.Second)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	d := kadm.TopicDetail{Topic: topic, Partitions: kadm.PartitionDetails{}}
	for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return d, fmt.Errorf("%s: %w", b.Name, err)
		}
		for _, p := range mt.Partitions {
			d.Partitions[p.Partition] = kadm.PartitionDetail{Topic: topic, Partition: p.Partition, Leader: p.Leader,
				LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR}
		}
	}
	return d, nil
}

// waitDirsGone waits until broker b holds no directory of topic.
func waitDirsGone(t *testing.T, b *harness.Node, topic string, partitions int, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		for p := range partitions {
			dir := filepath.Join(b.DataDir, topic+"-"+strconv.Itoa(p))
			if _, err := os.Stat(dir); err == nil {
				return false, dir + " still exists"
			}
		}
		return true, ""
	})
}

// moveLoad is an idempotent acks=all producer writing numbered records to
// topic until stopped.
type moveLoad struct {
	t      *testing.T
	cl     *kgo.Client
	ledger *harness.Ledger
	stop   func() int64
}

func startMoveLoad(t *testing.T, c *harness.Cluster, topic string) *moveLoad {
	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(2_000),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute),
	)
	l := &moveLoad{t: t, cl: cl, ledger: &harness.Ledger{}}
	l.stop = harness.ProduceLoop(t, cl, topic, l.ledger, harness.LoadRate)
	return l
}

// more waits for n more acknowledgements.
func (l *moveLoad) more(n int) {
	l.t.Helper()
	l.ledger.WaitAcked(l.t, l.ledger.Acked()+n, time.Minute)
}

// finish stops the load, flushes, and fails the test on a failed record.
func (l *moveLoad) finish() {
	l.t.Helper()
	l.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		l.t.Fatalf("flush: %v", err)
	}
	if failed, err := l.ledger.Failed(); failed > 0 {
		l.t.Errorf("%d records failed; first error: %v", failed, err)
	}
}

// verifyMoved checks, after the load finished, that every acknowledged
// record is at its offset and that the replicas on brokers are identical.
func verifyMoved(t *testing.T, c *harness.Cluster, topic string, partitions int, brokers []int32, l *moveLoad) {
	t.Helper()
	var nodes []*harness.Node
	for _, id := range brokers {
		nodes = append(nodes, c.Broker(id))
	}
	checkReplicasIdenticalOn(t, nodes, topic, partitions, time.Minute)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), l.ledger.Acks())
	report.Check(t)
	t.Logf("checked %d acknowledged records over %d partitions; replicas on %v identical", report.Acked, report.Partitions, brokers)
}

// fill writes about size bytes of uncompressed filler records
// (harness.Filler) to each partition of topic.
func fill(t *testing.T, c *harness.Cluster, topic string, partitions int, size int) {
	t.Helper()
	const recordSize = 64 << 10
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for p := range partitions {
		for i := range size / recordSize {
			v := harness.Filler(fmt.Sprintf("fill%d", p), int64(i), recordSize)
			cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("filler record: %v", err)
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush filler: %v", err)
	}
}

// TestReassignUnderLoad moves every partition of a 3-partition RF 3 topic
// (min.insync.replicas 2) from brokers 101-103 to 102-104 while an
// idempotent acks=all producer writes: the move completes, no
// acknowledged record is lost or moved, the new replicas are
// byte-identical, broker 101 leads nothing of the topic and its
// directories are gone.
func TestReassignUnderLoad(t *testing.T) {
	const topic, partitions = "moving", 3
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	createAssignedConfigs(t, c, topic, [][]int32{{101, 102, 103}, {102, 103, 101}, {103, 101, 102}},
		map[string]string{"min.insync.replicas": "2"})
	fill(t, c, topic, partitions, 8<<20) // something to copy while the load goes on
	load := startMoveLoad(t, c, topic)
	load.more(20_000)

	target := map[int32][]int32{0: {102, 103, 104}, 1: {103, 104, 102}, 2: {104, 102, 103}}
	start := time.Now()
	alterAssignments(t, c.Broker(102), topic, target)
	load.more(2_000)
	waitNoMoves(t, c.Broker(102), 2*time.Minute)
	t.Logf("move completed in %v with %d acknowledgements so far", time.Since(start).Round(time.Millisecond), load.ledger.Acked())
	load.more(2_000)
	load.finish()

	checkMovedOff101(t, c, topic, partitions, target, load)
}

// checkMovedOff101 checks a completed move of topic from 101-103 to
// target (102-104): the assignment is the target, 101 neither leads nor is
// in an ISR, its directories are gone, and every acknowledged record of the
// load is on the identical replicas of 102-104.
func checkMovedOff101(t *testing.T, c *harness.Cluster, topic string, partitions int, target map[int32][]int32, load *moveLoad) {
	t.Helper()
	d := waitAssignment(t, c, topic, target, 30*time.Second)
	for p, pd := range d.Partitions {
		if pd.Leader == 101 || slices.Contains(pd.ISR, 101) {
			t.Errorf("partition %d: leader %d ISR %v after moving off 101", p, pd.Leader, pd.ISR)
		}
	}
	waitDirsGone(t, c.Broker(101), topic, partitions, 30*time.Second)
	verifyMoved(t, c, topic, partitions, []int32{102, 103, 104}, load)
}

// TestReassignCancel: a move to a paused (SIGSTOPped) broker cannot
// complete; it is listed, `skein topic describe` shows it, and a cancel
// brings the original replicas back. The resumed broker removes the
// partial replica it was given.
func TestReassignCancel(t *testing.T) {
	const topic = "cancelled"
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	createAssignedConfigs(t, c, topic, [][]int32{{101, 102, 103}}, map[string]string{"min.insync.replicas": "2"})
	load := startMoveLoad(t, c, topic)
	load.more(2_000)

	b104 := c.Broker(104)
	resume104 := pauseUntilResumed(t, b104)
	alterAssignments(t, c.Broker(102), topic, map[int32][]int32{0: {102, 103, 104}})
	t.Logf("move to the paused broker 104 started")
	moves, err := ongoingMoves(c.Broker(101))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := moves[topic+"-0"]
	if !ok || !slices.Equal(m.Replicas, []int32{102, 103, 104, 101}) || !slices.Equal(m.AddingReplicas, []int32{104}) ||
		!slices.Equal(m.RemovingReplicas, []int32{101}) {
		t.Fatalf("move not listed as expected: %+v", moves)
	}
	// Metadata shows the union while moving; the CLI the adding and
	// removing replicas.
	waitAssignment(t, c, topic, map[int32][]int32{0: {102, 103, 104, 101}}, 30*time.Second, 104)
	// (The client may pick the paused broker for a request: each attempt
	// is bounded and retried.)
	harness.WaitFor(t, time.Minute, func() (bool, string) {
		res := c.RunCLI(t, 10*time.Second, nil, "topic", "describe", topic, "--timeout", "2s")
		if res.Err != nil || !strings.Contains(res.Stdout, "Adding Replicas: 104") || !strings.Contains(res.Stdout, "Removing Replicas: 101") {
			return false, fmt.Sprintf("topic describe while moving (%v):\n%s\n%s", res.Err, res.Stdout, res.Stderr)
		}
		return true, ""
	})
	load.more(1_000)

	alterAssignments(t, c.Broker(102), topic, map[int32][]int32{0: nil})
	waitNoMoves(t, c.Broker(102), 30*time.Second)
	d := waitAssignment(t, c, topic, map[int32][]int32{0: {102, 103, 101}}, 30*time.Second, 104)
	if l := d.Partitions[0].Leader; l == 104 {
		t.Errorf("leader %d after the cancel", l)
	}
	load.more(1_000)

	t.Logf("cancelled; %d acknowledgements so far; resuming broker 104", load.ledger.Acked())
	resume104()
	// Broker 104 catches up with the metadata and drops what it was given.
	resumedAt := time.Now()
	harness.WaitFor(t, time.Minute, func() (bool, string) {
		d, err := topicVia(b104, topic)
		if err != nil {
			return false, err.Error()
		}
		if p := d.Partitions[0]; slices.Contains(p.Replicas, 104) {
			return false, fmt.Sprintf("broker 104 still sees replicas %v", p.Replicas)
		}
		return true, ""
	})
	waitDirsGone(t, b104, topic, 1, 30*time.Second)
	t.Logf("broker 104 dropped its replica %v after it resumed; %d acknowledgements so far",
		time.Since(resumedAt).Round(time.Millisecond), load.ledger.Acked())
	load.finish()
	verifyMoved(t, c, topic, 1, []int32{101, 102, 103}, load)
}

// TestReassignControllerFailover: the active controller is SIGKILLed while
// a move is held open (its adding broker paused); once the broker resumes,
// the move completes under the new active controller and nothing
// acknowledged is lost.
func TestReassignControllerFailover(t *testing.T) {
	const topic = "failover"
	c := harness.StartCluster(t, harness.Options{Controllers: 3, Brokers: 4})
	createAssignedConfigs(t, c, topic, [][]int32{{101, 102, 103}, {102, 103, 101}}, map[string]string{"min.insync.replicas": "2"})
	load := startMoveLoad(t, c, topic)
	load.more(3_000)

	b104 := c.Broker(104)
	resume104 := pauseUntilResumed(t, b104)
	target := map[int32][]int32{0: {102, 103, 104}, 1: {104, 102, 103}}
	alterAssignments(t, c.Broker(102), topic, target)
	load.more(1_000)
	q, _, err := describeQuorum(runningControllerAddrs(c)...)
	if err != nil {
		t.Fatal(err)
	}
	var active *harness.Node
	for _, n := range c.Controllers {
		if n.ID == q.LeaderID {
			active = n
		}
	}
	if active == nil {
		t.Fatalf("no active controller in %+v", q)
	}
	active.MustKill()
	t.Logf("SIGKILLed the active controller %s mid-move", active.Name)
	if moves, err := ongoingMoves(c.Broker(102)); err == nil && len(moves) != 2 {
		t.Errorf("after the failover %d partitions are listed as moving, want 2: %v", len(moves), moves)
	}
	resume104()
	waitNoMoves(t, c.Broker(102), 2*time.Minute)
	load.more(2_000)
	load.finish()
	waitAssignment(t, c, topic, target, 30*time.Second)
	waitDirsGone(t, c.Broker(101), topic, 2, 30*time.Second)
	verifyMoved(t, c, topic, 2, []int32{102, 103, 104}, load)
}

// TestReassignReplicationFactor changes replication factors by
// reassignment: 1 -> 3 (two replicas copied from the only one) and 3 -> 2
// (completed at once, the leaving leader handing over), under load.
func TestReassignReplicationFactor(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	createAssignedConfigs(t, c, "grow", [][]int32{{101}}, nil)
	createAssignedConfigs(t, c, "shrink", [][]int32{{101, 102, 103}}, map[string]string{"min.insync.replicas": "2"})
	grow := startMoveLoad(t, c, "grow")
	shrink := startMoveLoad(t, c, "shrink")
	grow.more(3_000)
	shrink.more(3_000)

	alterAssignments(t, c.Broker(103), "grow", map[int32][]int32{0: {101, 102, 103}})
	alterAssignments(t, c.Broker(103), "shrink", map[int32][]int32{0: {103, 102}})
	grow.more(1_000)
	shrink.more(1_000)
	waitNoMoves(t, c.Broker(103), 2*time.Minute)
	grow.more(1_000)
	shrink.more(1_000)
	grow.finish()
	shrink.finish()

	d := waitAssignment(t, c, "grow", map[int32][]int32{0: {101, 102, 103}}, 30*time.Second)
	if isr := d.Partitions[0].ISR; len(isr) != 3 {
		t.Errorf("grown partition's ISR %v", isr)
	}
	waitAssignment(t, c, "shrink", map[int32][]int32{0: {103, 102}}, 30*time.Second)
	waitDirsGone(t, c.Broker(101), "shrink", 1, 30*time.Second)
	verifyMoved(t, c, "grow", 1, []int32{101, 102, 103}, grow)
	verifyMoved(t, c, "shrink", 1, []int32{103, 102}, shrink)
}

// TestReassignBrokerRestart: the adding broker is SIGKILLed while the move
// waits for it (paused) and restarted: it reopens the replica from the
// metadata it reads at start-up, catches up, and the move completes.
func TestReassignBrokerRestart(t *testing.T) {
	const topic = "restarted"
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	createAssignedConfigs(t, c, topic, [][]int32{{101, 102, 103}}, map[string]string{"min.insync.replicas": "2"})
	load := startMoveLoad(t, c, topic)
	load.more(20_000)

	b104 := c.Broker(104)
	if err := b104.Pause(); err != nil {
		t.Fatal(err)
	}
	target := map[int32][]int32{0: {104, 102, 103}}
	alterAssignments(t, c.Broker(102), topic, target)
	b104.MustKill()
	load.more(5_000)
	b104.Restart()
	waitNoMoves(t, c.Broker(102), 2*time.Minute)
	load.more(2_000)
	load.finish()
	waitAssignment(t, c, topic, target, 30*time.Second)
	waitDirsGone(t, c.Broker(101), topic, 1, 30*time.Second)
	verifyMoved(t, c, topic, 1, []int32{104, 102, 103}, load)
}

// pauseUntilResumed pauses n (SIGSTOP) and returns the function that
// resumes it; it fails the test if the resume fails, runs at most once, and
// runs at the end of the test if the test did not call it.
func pauseUntilResumed(t *testing.T, n *harness.Node) func() {
	t.Helper()
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume := func() {
		once.Do(func() {
			if err := n.Resume(); err != nil {
				t.Errorf("resume %s: %v", n.Name, err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
