package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// isrLag is the brokers' --replica-lag-time-max in TestISRShrinkExpand.
const isrLag = 2 * time.Second

// TestISRShrinkExpand: 1 controller, 3 brokers, RF=3,
// min.insync.replicas=2, replica.lag.time.max 2s, an idempotent acks=all
// producer writing throughout.
//   - SIGSTOP one follower: the leader drops it from the ISR within a few
//     seconds (AlterPartition) and acks=all writes continue on the two
//     left;
//   - SIGCONT: it catches up and the leader adds it back;
//   - SIGSTOP both followers: the ISR shrinks to the leader alone and an
//     acks=all produce is refused with NOT_ENOUGH_REPLICAS;
//   - SIGCONT both: they rejoin and writes succeed again.
//
// At the end every acknowledged record is stored exactly once at its
// acknowledged offset and the three replicas' log files are identical.
func TestISRShrinkExpand(t *testing.T) {
	const topic = "isr-changes"
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: []string{"--replica-lag-time-max", isrLag.String()}})
	createTopic(t, c, topic, 1, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	leader := c.Broker(partitionLeader(t, c, topic, 0))
	var followers []*harness.Node
	for _, b := range c.Brokers {
		if b != leader {
			followers = append(followers, b)
		}
	}
	all := []int32{leader.ID, followers[0].ID, followers[1].ID}
	waitISR(t, leader, topic, 20*time.Second, all...)

	cl := c.Client(t,
		kgo.SeedBrokers(leader.Addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(500),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.RetryTimeout(time.Minute),
	)
	var ledger harness.Ledger
	// Cleanups run last-in first-out: followers resume before the
	// producer's cleanup cancels what is still blocked.
	stopProducing := harness.ProduceLoop(t, cl, "isr", &ledger, harness.LoadRate)
	t.Cleanup(func() {
		for _, f := range followers {
			_ = f.Resume()
		}
	})
	waitAcked := func(want int, timeout time.Duration) { t.Helper(); ledger.WaitAcked(t, want, timeout) }
	waitAcked(1_000, 20*time.Second)

	// One follower stops: out of the ISR after the lag limit; writes go on.
	f1, f2 := followers[0], followers[1]
	if err := f1.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	waitISR(t, leader, topic, 4*isrLag+2*time.Second, leader.ID, f2.ID)
	t.Logf("%s left the ISR %v after SIGSTOP", f1.Name, time.Since(paused).Round(time.Millisecond))
	waitAcked(ledger.Acked()+1_000, 20*time.Second)

	// Back: it catches up and rejoins.
	if err := f1.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	waitISR(t, leader, topic, 20*time.Second, all...)
	t.Logf("%s rejoined the ISR %v after SIGCONT", f1.Name, time.Since(resumed).Round(time.Millisecond))
	waitAcked(ledger.Acked()+1_000, 20*time.Second)

	// Both followers stop: the ISR is the leader alone, below
	// min.insync.replicas, and acks=all produce is refused.
	for _, f := range followers {
		if err := f.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	paused = time.Now()
	waitISR(t, leader, topic, 4*isrLag+2*time.Second, leader.ID)
	t.Logf("ISR shrank to [%d] %v after SIGSTOP of both followers", leader.ID, time.Since(paused).Round(time.Millisecond))
	probe := c.Client(t,
		kgo.SeedBrokers(leader.Addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0),
		kgo.RecordDeliveryTimeout(10*time.Second),
	)
	pctx, pcancel := context.WithTimeout(context.Background(), 15*time.Second)
	err := probe.ProduceSync(pctx, &kgo.Record{Value: []byte(harness.Value("probe", 0))}).FirstErr()
	pcancel()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all produce with ISR [%d] and min.insync.replicas=2: %v, want NOT_ENOUGH_REPLICAS", leader.ID, err)
	}
	t.Logf("acks=all produce refused: %v", err)
	stalled := ledger.Acked()

	// Both back: they rejoin and the stalled writes complete.
	for _, f := range followers {
		if err := f.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	resumed = time.Now()
	waitISR(t, leader, topic, 20*time.Second, all...)
	t.Logf("both followers rejoined the ISR %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))
	waitAcked(stalled+1_000, 30*time.Second)

	stopProducing()
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if failed, err := ledger.Failed(); failed > 0 {
		t.Errorf("%d records failed; first error: %v", failed, err)
	}
	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks())
	report.Check(t)
	t.Logf("checked %d acknowledged records (%d stored, %d unacknowledged); replicas identical",
		report.Acked, report.Records, report.Unacked)
}

// waitISR waits until the leader broker's metadata gives partition 0 of
// topic exactly the ISR want (in any order). It asks that broker alone, so
// paused brokers do not hold the request up.
func waitISR(t *testing.T, leader *harness.Node, topic string, timeout time.Duration, want ...int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(leader.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want = slices.Sorted(slices.Values(want))
	harness.WaitFor(t, timeout, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
		if err != nil {
			return false, err.Error()
		}
		for _, mt := range resp.Topics {
			for _, p := range mt.Partitions {
				if p.Partition != 0 {
					continue
				}
				isr := slices.Sorted(slices.Values(p.ISR))
				if p.Leader != leader.ID || !slices.Equal(isr, want) {
					return false, fmt.Sprintf("leader %d ISR %v, want leader %d ISR %v", p.Leader, p.ISR, leader.ID, want)
				}
				return true, ""
			}
		}
		return false, "partition 0 not in metadata"
	})
}
