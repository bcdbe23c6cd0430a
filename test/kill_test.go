package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// testSeed returns $SKEIN_TEST_SEED, or a fresh seed; the test logs it so
// a failing run can be repeated.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SKEIN_TEST_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SKEIN_TEST_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestBrokerKillDuringIdempotentProduce is the crash acceptance test: a
// franz-go idempotent producer (acks=all) writes numbered records to
// several partitions without pause; the only broker is SIGKILLed mid-stream
// and restarted on the same data directory and port, twice; the producer
// keeps going on its own retries. Afterwards every acknowledged record must
// be stored at exactly its acknowledged offset, no record may be stored
// twice, offsets must be contiguous, and each partition must keep the
// producer's order.
func TestBrokerKillDuringIdempotentProduce(t *testing.T) {
	const (
		topic      = "kill-during-produce"
		partitions = 4
		rounds     = 2
	)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	t.Logf("seed %d (repeat with SKEIN_TEST_SEED=%d)", seed, seed)

	c := harness.StartCluster(t, harness.Options{})
	createTopic(t, c, topic, partitions, 1, nil)
	broker := c.Brokers[0]

	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(5_000),
		kgo.ProducerLinger(2*time.Millisecond),
		// Keep retrying through the broker's absence; the test bounds it.
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute),
	)

	var ledger harness.Ledger
	stopProducing := harness.ProduceLoop(t, cl, "kill", &ledger, 0)

	waitAcked := func(want int, timeout time.Duration) { t.Helper(); ledger.WaitAcked(t, want, timeout) }

	target := 0
	for round := 1; round <= rounds; round++ {
		target += 5_000 + rng.IntN(15_000)
		waitAcked(target, time.Minute)
		atKill := ledger.Acked()
		broker.MustKill()
		t.Logf("round %d: SIGKILLed %s after %d acknowledgements", round, broker.Name, atKill)
		broker.Restart()
		target = atKill + 5_000 + rng.IntN(15_000)
		waitAcked(target, 90*time.Second)
		t.Logf("round %d: %s restarted; %d acknowledgements so far", round, broker.Name, ledger.Acked())
	}

	produced := stopProducing()
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	failed, firstErr := ledger.Failed()
	t.Logf("producer handed %d records to the client: %d acknowledged, %d failed (first error: %v)", produced, ledger.Acked(), failed, firstErr)
	if failed > 0 {
		// The idempotent producer retries through a broker restart; a
		// failure means the broker answered something it should not have
		// (for example OUT_OF_ORDER_SEQUENCE_NUMBER after losing producer
		// state). The records are still checked below.
		t.Errorf("%d records failed; first error: %v", failed, firstErr)
	}

	stored := c.ReadAll(t, topic, time.Minute)
	report := harness.Verify(stored, ledger.Acks())
	report.Check(t)
	if report.Acked == 0 || report.Records < report.Acked {
		t.Errorf("read %d records for %d acknowledgements", report.Records, report.Acked)
	}
	t.Logf("seed %d: checked %d acknowledged records over %d partitions after %d SIGKILLs", seed, report.Acked, report.Partitions, rounds)
}
