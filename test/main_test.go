package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// The fast fencing of the tests that kill brokers and wait for the
// cluster to move on: the controller fences a broker fastFenceSession
// after its last heartbeat, and brokers heartbeat every
// fastFenceHeartbeat, so a killed broker is fenced 1.25-1.5 s after the
// kill (with the default heartbeat, 2 s, against a 3 s session: 1-3 s).
// A live broker is fenced only if six heartbeats in a row are late.
const (
	fastFenceSession   = 1500 * time.Millisecond
	fastFenceHeartbeat = 250 * time.Millisecond
)

var (
	fastFenceControllerArgs = []string{"--session-timeout", fastFenceSession.String()}
	fastFenceBrokerArgs     = []string{"--heartbeat-interval", fastFenceHeartbeat.String()}
)

// produceNumbered produces n records Value(stream, 0..n-1) to topic,
// waits for every acknowledgement, and fails the test unless all n were
// acknowledged.
func produceNumbered(t *testing.T, cl *kgo.Client, topic, stream string, n int, ledger *harness.Ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(harness.Value(stream, int64(i)))}, ledger.Promise)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush %d records to %s: %v (acked %d)", n, topic, err, ledger.Acked())
	}
	if failed, err := ledger.Failed(); failed > 0 {
		t.Fatalf("%d of %d records to %s failed; first error: %v", failed, n, topic, err)
	}
	t.Logf("produced %d records to %s in %v", n, topic, time.Since(start).Round(time.Millisecond))
}

// createTopic creates topic with kadm and waits until every partition has
// a leader.
func createTopic(t *testing.T, c *harness.Cluster, topic string, partitions int32, rf int16, configs map[string]*string) {
	t.Helper()
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}
	waitForLeaders(t, c, topic, int(partitions))
}

// waitForLeaders waits until topic has partitions partitions, each with a
// leader, in the cluster's Metadata.
func waitForLeaders(t *testing.T, c *harness.Cluster, topic string, partitions int) {
	t.Helper()
	// A short metadata min age: franz-go keeps an answer (also "unknown
	// topic", from a broker a few ms behind the controller) for that long.
	adm := kadm.NewClient(c.Client(t, kgo.MetadataMinAge(50*time.Millisecond)))
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d, ok := topics[topic]
		if !ok || d.Err != nil {
			return false, "topic not in metadata: " + errString(d.Err)
		}
		if len(d.Partitions) != partitions {
			return false, "partitions: " + itoa(len(d.Partitions))
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return false, "partition " + itoa(int(p.Partition)) + " has no leader: " + errString(p.Err)
			}
		}
		// Every running broker must know the topic too: a client that
		// asks one a few ms behind the controller is told "unknown topic"
		// (kcat then exits).
		for _, b := range c.Brokers {
			if !b.Running() {
				continue
			}
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := b.Request(req, 5*time.Second)
			if err != nil {
				return false, b.Name + ": " + err.Error()
			}
			for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
				if mt.ErrorCode != 0 || len(mt.Partitions) != partitions {
					return false, b.Name + " does not know the topic yet"
				}
				for _, p := range mt.Partitions {
					if p.Leader < 0 {
						return false, b.Name + ": partition " + itoa(int(p.Partition)) + " has no leader"
					}
				}
			}
		}
		return true, ""
	})
}

// partitionCount returns how many partitions topic has.
func partitionCount(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("list %s: %v", topic, err)
	}
	return len(topics[topic].Partitions)
}

// nonEmptyPartition returns a partition of topic whose end offset is above 0.
func nonEmptyPartition(t *testing.T, adm *kadm.Client, topic string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	part := int32(-1)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 && part < 0 {
			part = o.Partition
		}
	})
	if part < 0 {
		t.Fatalf("every partition of %s is empty", topic)
	}
	return part
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func itoa(i int) string { return strconv.Itoa(i) }
