package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage/storagetest"
	"github.com/skein-io/skein/test/harness"
)

// TestTxnDeposedLeader: a partition leader L is cut from the controller
// while a producer's transaction is open on the partition; another broker
// leads it. A new instance of the producer fences the old one (the
// coordinator writes the abort marker on the new leader, never on L) and
// writes in its own transaction under the bumped epoch. L, which does not
// know it was deposed, still holds the old epoch's transaction open. A
// transactional produce of the new epoch sent to L must get a retriable
// answer (the client refreshes its metadata and finds the new leader, as
// for a plain acks=all write that L cannot replicate), not
// INVALID_TXN_STATE, which fails the producer's transaction: found by the
// chaos test's transactional workload (every transaction of the new
// instance aborted while its client still sent to the deposed leader).
// After the cut heals the new instance commits and read_committed readers
// see its record, not the fenced one's; the replicas are identical.
func TestTxnDeposedLeader(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, Proxies: true, BrokerArgs: txnBrokerArgs, ControllerArgs: fastFenceControllerArgs})
	const topic, id = "txn-deposed", "tx-deposed"
	createTopic(t, c, topic, 3, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := c.Admin(t)

	p1 := newTxnClient(t, c, id, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p1.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The partition: one whose leader is not the coordinator (a deposed
	// coordinator would stall the new instance until it is fenced).
	d, err := adm.DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	coordinator := d[id].Coordinator
	part, leaderID := int32(-1), int32(-1)
	for p := range int32(3) {
		if l := partitionLeader(t, c, topic, p); l != coordinator {
			part, leaderID = p, l
			break
		}
	}
	if part < 0 {
		t.Fatalf("the coordinator (broker %d) leads every partition of %s", coordinator, topic)
	}
	leader := c.Broker(leaderID)
	t.Logf("coordinator broker %d; %s/%d led by %s", coordinator, topic, part, leader.Name)

	// p1's transaction is open on the partition, on every replica.
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte("fenced")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	c.CutControllers(leader)
	defer c.HealControllers(leader)
	observer := chaosOther(c, leader)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		parts, err := topicStateVia(observer, topic)
		if err != nil {
			return false, err.Error()
		}
		l := parts[part].leader
		return l >= 0 && l != leaderID, fmt.Sprintf("%s/%d: leader %d", topic, part, l)
	})

	// The new instance fences p1 and writes under the bumped epoch.
	p2 := newTxnClient(t, c, id, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.SeedBrokers(observer.Addr))
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatalf("the new instance's produce: %v", err)
	}
	d, err = adm.DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	pid, epoch := d[id].ProducerID, d[id].ProducerEpoch

	// The same producer's next batch, sent to the deposed leader.
	req := kmsg.NewPtrProduceRequest()
	req.TransactionID = kmsg.StringPtr(id)
	req.Acks, req.TimeoutMillis = -1, 5_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = part
	rp.Records = storagetest.MakeTxnBatch([][]byte{[]byte("to-the-deposed-leader")}, pid, epoch, 1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := leader.Request(req, 15*time.Second)
	if err != nil {
		t.Logf("deposed leader %s did not answer: %v", leader.Name, err)
	} else {
		code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		switch err := kerr.ErrorForCode(code); {
		case err == nil:
			t.Fatalf("deposed leader %s acknowledged an acks=all write nobody replicates", leader.Name)
		case errors.Is(err, kerr.InvalidTxnState) || !kerr.IsRetriable(err):
			t.Fatalf("deposed leader %s answered the new epoch's transactional produce with %v; want a retriable error (the client must look for the new leader)", leader.Name, err)
		default:
			t.Logf("deposed leader %s answered %v", leader.Name, err)
		}
	}

	c.HealControllers(leader)
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the new instance's commit: %v", err)
	}
	got := readAll(t, c, topic, kgo.ReadCommitted(), 2, 20*time.Second)
	if len(got) != 2 || got[0] != "warm-up" && got[1] != "warm-up" || got[0] != "new" && got[1] != "new" {
		t.Fatalf("read_committed read %v, want warm-up and new", got)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic)
		return res.Err == nil, res.Stdout + res.Stderr
	})
}
