package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestScaleBrokerRestartISR: one controller and three brokers hosting a
// few thousand partitions (SKEIN_SCALE_RESTART_PARTITIONS, default 2,000;
// RF 3 in topics of 100, min.insync.replicas 2). One acknowledged
// (acks=all) record goes to every partition; a broker is SIGKILLed and
// restarted (an unclean restart: the controller takes it out of every
// ISR) and the test waits until every partition's ISR is full again. Then
// a second record goes to every partition. Every acknowledged record must
// be stored at its offset, and the replicas of the first topic must be
// byte-identical. The time to full ISRs is logged; it is bounded only by
// the test's deadline (figures come from `make bench-scale`).
func TestScaleBrokerRestartISR(t *testing.T) {
	n := 2000
	if s := os.Getenv("SKEIN_SCALE_RESTART_PARTITIONS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			t.Fatalf("SKEIN_SCALE_RESTART_PARTITIONS=%q: want a positive number", s)
		}
	}
	c := harness.StartCluster(t, harness.Options{Brokers: 3, StartTimeout: 2 * time.Minute})
	sc := createScaleTopics(t, c, "restart", n, map[string]*string{"min.insync.replicas": strPtr("2")}, 3*time.Minute)
	topics := sc.topics
	sc.waitFullISRs(t, "created", 3*time.Minute)

	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute))
	var ledger harness.Ledger
	produceEach := func(round int) {
		t.Helper()
		for _, name := range topics {
			for p := range int32(scalePerTopic) {
				r := &kgo.Record{Topic: name, Partition: p,
					Value: []byte(harness.Value(fmt.Sprintf("%s-%d", name, p), int64(round)))}
				cl.Produce(context.Background(), r, ledger.Promise)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("round %d: flush: %v", round, err)
		}
		if failed, err := ledger.Failed(); failed > 0 {
			t.Fatalf("round %d: %d records failed, first: %v", round, failed, err)
		}
	}
	produceEach(0)

	b := c.Broker(harness.FirstBrokerID)
	b.MustKill()
	sc.start = time.Now()
	b.Restart()
	sc.waitFullISRs(t, fmt.Sprintf("broker %d SIGKILLed and restarted", b.ID), 3*time.Minute)
	produceEach(1)
	if got, want := ledger.Acked(), 2*len(topics)*scalePerTopic; got != want {
		t.Fatalf("%d records acknowledged, want %d", got, want)
	}

	acks := ledger.Acks()
	for _, name := range topics {
		var mine []harness.Ack
		for _, a := range acks {
			if s, _, ok := harness.ParseValue(a.Value); ok && len(s) > len(name) && s[:len(name)+1] == name+"-" {
				mine = append(mine, a)
			}
		}
		report := harness.Verify(c.ReadAll(t, name, time.Minute), mine)
		report.Check(t)
	}
	checkReplicasIdentical(t, c, topics[0], scalePerTopic, time.Minute)
}

// scaleTopics are topics of scalePerTopic partitions, RF 3, created at once.
type scaleTopics struct {
	adm    *kadm.Client
	topics []string
	// start is when the creation began; waitFullISRs logs the time since.
	start time.Time
}

const scalePerTopic = 100

// createScaleTopics creates topics named "<prefix>-NNN" holding n
// partitions in all (RF 3, the configs) with one CreateTopics request.
func createScaleTopics(t *testing.T, c *harness.Cluster, prefix string, n int, configs map[string]*string, timeout time.Duration) *scaleTopics {
	t.Helper()
	sc := &scaleTopics{adm: kadm.NewClient(c.Client(t, kgo.MetadataMinAge(50*time.Millisecond))), start: time.Now()}
	for i := 0; i*scalePerTopic < n; i++ {
		sc.topics = append(sc.topics, fmt.Sprintf("%s-%03d", prefix, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := sc.adm.CreateTopics(ctx, scalePerTopic, 3, configs, sc.topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	return sc
}

// waitFullISRs waits until every partition has a leader and all three
// replicas in its ISR, and logs how long that took since sc.start.
func (sc *scaleTopics) waitFullISRs(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		md, err := sc.adm.ListTopics(ctx, sc.topics...)
		if err != nil {
			return false, err.Error()
		}
		short := 0
		example := ""
		for _, name := range sc.topics {
			d, ok := md[name]
			if !ok || d.Err != nil || len(d.Partitions) != scalePerTopic {
				return false, name + " not complete in metadata"
			}
			for _, p := range d.Partitions {
				if p.Leader < 0 || len(p.ISR) != 3 {
					if short++; example == "" {
						example = fmt.Sprintf("%s-%d: leader %d ISR %v", name, p.Partition, p.Leader, p.ISR)
					}
				}
			}
		}
		if short > 0 {
			return false, fmt.Sprintf("%d partitions without a full ISR, e.g. %s", short, example)
		}
		return true, ""
	})
	t.Logf("%s: %d partitions (RF 3, %d topics) with full ISRs after %v", what, len(sc.topics)*scalePerTopic,
		len(sc.topics), time.Since(sc.start).Round(time.Millisecond))
}
