package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// rf2Cluster is 1 controller (fast fencing, and controllerArgs) and 2
// brokers (replica lag limit 2 s).
func rf2Cluster(t *testing.T, controllerArgs ...string) *harness.Cluster {
	return harness.StartCluster(t, harness.Options{
		Brokers:        2,
		ControllerArgs: append(slices.Clone(fastFenceControllerArgs), controllerArgs...),
		BrokerArgs:     append([]string{"--replica-lag-time-max", "2s"}, fastFenceBrokerArgs...),
	})
}

// rf2Producer runs an idempotent acks=all producer writing stream's
// numbered records to topic (partition chosen by the client) until the
// returned stop is called; stop waits for the producer goroutine, then
// flushes, and fails the test if the flush fails.
func rf2Producer(t *testing.T, c *harness.Cluster, topic, stream string, ledger *harness.Ledger) (stop func()) {
	t.Helper()
	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(1_000),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute),
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for seq := int64(0); ; seq++ {
			if seq%4 == 0 {
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
			cl.Produce(ctx, &kgo.Record{Value: []byte(harness.Value(stream, seq))}, ledger.Promise)
		}
	}()
	stopped := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(func() { cancel(); stopped() })
	return func() {
		t.Helper()
		stopped()
		fctx, fcancel := context.WithTimeout(context.Background(), time.Minute)
		defer fcancel()
		if err := cl.Flush(fctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

// waitLedger waits until ledger holds n more acknowledgements than now.
func waitLedger(t *testing.T, ledger *harness.Ledger, n int, timeout time.Duration) {
	t.Helper()
	want := ledger.Acked() + n
	harness.WaitFor(t, timeout, func() (bool, string) {
		if got := ledger.Acked(); got < want {
			failed, err := ledger.Failed()
			return false, fmt.Sprintf("acknowledged %d of %d, failed %d (first error: %v)", got, want, failed, err)
		}
		return true, ""
	})
}

// waitTopicState waits until broker via's Metadata shows every partition
// of topic with a leader and exactly the ISR isr (any order).
func waitTopicState(t *testing.T, via *harness.Node, topic string, partitions int, timeout time.Duration, isr ...int32) {
	t.Helper()
	isr = slices.Sorted(slices.Values(isr))
	harness.WaitFor(t, timeout, func() (bool, string) {
		parts, err := topicStateVia(via, topic)
		if err != nil {
			return false, err.Error()
		}
		if len(parts) != partitions {
			return false, fmt.Sprintf("%d partitions", len(parts))
		}
		for p, s := range parts {
			if s.leader < 0 || !slices.Equal(s.isr, isr) {
				return false, fmt.Sprintf("partition %d: leader %d ISR %v, want ISR %v", p, s.leader, s.isr, isr)
			}
		}
		return true, ""
	})
}

// TestRF2SurvivesBrokerLoss: 2 brokers, a topic with replication factor 2
// and min.insync.replicas=1. An idempotent acks=all producer writes
// throughout; one broker (the leader of partition 0) is SIGKILLed: the
// other takes over every partition and acks=all writes go on with the ISR
// down to one replica (f+1 = 2 replicas tolerate f = 1 loss). The broker
// is restarted, catches up and rejoins the ISR. Every acknowledged record
// is stored exactly once at its offset and the replicas are identical.
func TestRF2SurvivesBrokerLoss(t *testing.T) {
	const (
		topic      = "rf2-min1"
		partitions = 2
	)
	c := rf2Cluster(t)
	createTopic(t, c, topic, partitions, 2, map[string]*string{"min.insync.replicas": strPtr("1")})
	all := []int32{c.Brokers[0].ID, c.Brokers[1].ID}
	waitTopicState(t, c.Brokers[0], topic, partitions, 20*time.Second, all...)

	var ledger harness.Ledger
	stop := rf2Producer(t, c, topic, "rf2", &ledger)
	waitLedger(t, &ledger, 2_000, 30*time.Second)

	victim := c.Broker(partitionLeader(t, c, topic, 0))
	survivor := otherOf(c, victim)
	victim.MustKill()
	killed := time.Now()
	waitTopicState(t, survivor, topic, partitions, 30*time.Second, survivor.ID)
	t.Logf("SIGKILLed %s; %s leads every partition alone after %v", victim.Name, survivor.Name, time.Since(killed).Round(time.Millisecond))
	waitLedger(t, &ledger, 2_000, 30*time.Second)
	t.Logf("writes continued on one replica: %d acknowledged", ledger.Acked())

	victim.Restart()
	waitTopicState(t, survivor, topic, partitions, 30*time.Second, all...)
	waitLedger(t, &ledger, 2_000, 30*time.Second)
	stop()

	if failed, err := ledger.Failed(); failed > 0 {
		t.Errorf("%d records failed; first error: %v", failed, err)
	}
	checkReplicasIdentical(t, c, topic, partitions, 30*time.Second)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks())
	report.Check(t)
}

// TestRF2MinISR2RefusesWrites: 2 brokers, a topic with replication factor
// 2 and min.insync.replicas=2, an idempotent acks=all producer writing
// throughout. With the follower SIGKILLed the ISR is the leader alone and
// acks=all writes are refused with NOT_ENOUGH_REPLICAS before they are
// appended: none of the refused probe records may show up in the log
// (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND, for a shrink during the wait,
// may leave its record behind). Once the follower is back in the ISR the
// producer's waiting records go through, and every acknowledged record is
// stored exactly once at its offset.
func TestRF2MinISR2RefusesWrites(t *testing.T) {
	const topic = "rf2-min2"
	c := rf2Cluster(t)
	createTopic(t, c, topic, 1, 2, map[string]*string{"min.insync.replicas": strPtr("2")})
	all := []int32{c.Brokers[0].ID, c.Brokers[1].ID}
	waitTopicState(t, c.Brokers[0], topic, 1, 20*time.Second, all...)

	// This producer keeps going through the outage: its records wait
	// (retried on NOT_ENOUGH_REPLICAS) and go through once the follower is
	// back, each exactly once.
	var ledger harness.Ledger
	stop := rf2Producer(t, c, topic, "through", &ledger)
	waitLedger(t, &ledger, 2_000, 30*time.Second)

	leader := c.Broker(partitionLeader(t, c, topic, 0))
	follower := otherOf(c, leader)
	follower.MustKill()
	waitTopicState(t, leader, topic, 1, 30*time.Second, leader.ID)
	t.Logf("SIGKILLed follower %s: ISR [%d]", follower.Name, leader.ID)

	// Each refused record is its own request: no retries, no idempotence
	// (a refused idempotent batch would leave a sequence gap).
	probe := c.Client(t,
		kgo.SeedBrokers(leader.Addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0),
		kgo.RecordDeliveryTimeout(10*time.Second),
	)
	refused := make(map[string]bool)
	var afterAppend int
	stalled := -1 // acknowledgements when the first probe was refused
	for i := range 20 {
		v := harness.Value("refused", int64(i))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := probe.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
		cancel()
		switch {
		case errors.Is(err, kerr.NotEnoughReplicas):
			refused[v] = true
			if stalled < 0 {
				stalled = ledger.Acked()
			}
		case errors.Is(err, kerr.NotEnoughReplicasAfterAppend):
			afterAppend++
		default:
			t.Fatalf("acks=all produce of %q with ISR [%d] and min.insync.replicas=2: %v, want NOT_ENOUGH_REPLICAS", v, leader.ID, err)
		}
	}
	t.Logf("acks=all writes refused: %d NOT_ENOUGH_REPLICAS, %d NOT_ENOUGH_REPLICAS_AFTER_APPEND", len(refused), afterAppend)
	if len(refused) == 0 {
		t.Fatalf("no write was refused with NOT_ENOUGH_REPLICAS")
	}
	// The high watermark does not move with the ISR below the minimum, so
	// the producer running meanwhile gets no acknowledgement.
	if got := ledger.Acked(); got != stalled {
		t.Errorf("%d records acknowledged while the ISR was [%d] with min.insync.replicas=2", got-stalled, leader.ID)
	}

	follower.Restart()
	waitTopicState(t, leader, topic, 1, 30*time.Second, all...)
	t.Logf("%s back in the ISR", follower.Name)
	waitLedger(t, &ledger, 2_000, 30*time.Second)
	stop()

	if failed, err := ledger.Failed(); failed > 0 {
		t.Errorf("%d records failed; first error: %v", failed, err)
	}
	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	stored := c.ReadAll(t, topic, time.Minute)
	report := harness.Verify(stored, ledger.Acks())
	report.Check(t)
	for _, r := range stored[0] {
		if refused[r.Value] {
			t.Errorf("%q was refused with NOT_ENOUGH_REPLICAS but is stored at offset %d", r.Value, r.Offset)
		}
	}
	if report.Unacked > afterAppend {
		t.Errorf("%d records stored without an acknowledgement; at most %d (NOT_ENOUGH_REPLICAS_AFTER_APPEND) may be", report.Unacked, afterAppend)
	}
}

// otherOf returns the first broker other than b.
func otherOf(c *harness.Cluster, b *harness.Node) *harness.Node {
	for _, o := range c.Brokers {
		if o != b {
			return o
		}
	}
	return nil
}
