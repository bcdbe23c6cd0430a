package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// sumMetric sums the series of name (with labels) over the running nodes'
// /metrics; it fails the wait (ok false, why) when a scrape fails.
func sumMetric(nodes []*harness.Node, name string, labels map[string]string) (float64, string) {
	total := 0.0
	for _, n := range nodes {
		if !n.Running() {
			continue
		}
		fams, err := n.Metrics()
		if err != nil {
			return 0, err.Error()
		}
		v, ok := harness.MetricValue(fams, name, labels)
		if !ok {
			return 0, fmt.Sprintf("%s has no %s%v", n.Name, name, labels)
		}
		total += v
	}
	return total, ""
}

// waitMetricSum waits until the sum of name over the running brokers
// satisfies ok.
func waitMetricSum(t *testing.T, c *harness.Cluster, timeout time.Duration, name, want string, ok func(float64) bool) float64 {
	t.Helper()
	var last float64
	harness.WaitFor(t, timeout, func() (bool, string) {
		v, why := sumMetric(c.Brokers, name, nil)
		if why != "" {
			return false, why
		}
		last = v
		return ok(v), fmt.Sprintf("%s summed over the running brokers is %v, want %s", name, v, want)
	})
	return last
}

// TestMetricsUnderReplicated: 1 controller and 3 brokers serving HTTP,
// a topic of 3 partitions with 3 replicas. Every node is ready and the
// brokers report no under-replicated partition; a broker stopped cleanly
// leaves every ISR (the controller takes it out), so the leaders report
// under-replicated partitions; restarted, it catches up, rejoins, and the
// count is back to 0, with the ISR shrinks and expansions counted. A
// group's committed offsets and lag show on its coordinator, including
// for partitions other brokers lead (asked with ListOffsets).
func TestMetricsUnderReplicated(t *testing.T) {
	const topic = "metrics-urp"
	c := harness.StartCluster(t, harness.Options{Brokers: 3, HTTP: true})
	for _, n := range append(append([]*harness.Node(nil), c.Controllers...), c.Brokers...) {
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			code, body, err := n.Readyz()
			if err != nil {
				return false, err.Error()
			}
			return code == http.StatusOK, fmt.Sprintf("%s /readyz: %d %s", n.Name, code, body)
		})
	}
	createTopic(t, c, topic, 3, 3, nil)

	// Records in every partition: 5 in partition 0, 6 in 1, 7 in 2.
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends := map[int32]int64{0: 5, 1: 6, 2: 7}
	for p, n := range ends {
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(int(i)))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d: %v", p, err)
			}
		}
	}
	waitMetricSum(t, c, 30*time.Second, "skein_broker_under_replicated_partitions", "0", func(v float64) bool { return v == 0 })
	if v, why := sumMetric(c.Brokers, "skein_broker_leader_partitions", nil); why != "" || v != 3 {
		t.Fatalf("leader partitions summed over the brokers: %v %s, want 3", v, why)
	}
	if v, why := sumMetric(c.Brokers, "skein_topic_records_in_total", map[string]string{"topic": topic}); why != "" || v != 18 {
		t.Fatalf("records in: %v %s, want 18", v, why)
	}

	// A group's committed offsets (1 in each partition) and lag, on its
	// coordinator: the high watermark of each partition minus 1.
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	for p := range ends {
		offsets.AddOffset(topic, p, 1, -1)
	}
	if resp, err := adm.CommitOffsets(ctx, "metrics-readers", offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	coord := adm.FindGroupCoordinators(ctx, "metrics-readers")
	if err := coord.Error(); err != nil || len(coord) != 1 {
		t.Fatalf("group coordinator: %v %v", coord, err)
	}
	coordinator := c.Broker(coord["metrics-readers"].NodeID)
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		fams, err := coordinator.Metrics()
		if err != nil {
			return false, err.Error()
		}
		for p, end := range ends {
			labels := map[string]string{"group": "metrics-readers", "topic": topic, "partition": strconv.Itoa(int(p))}
			committed, _ := harness.MetricValue(fams, "skein_group_committed_offset", labels)
			lag, ok := harness.MetricValue(fams, "skein_group_lag", labels)
			if !ok || committed != 1 || lag != float64(end-1) {
				return false, fmt.Sprintf("%s: partition %d committed %v, lag %v (%v), want 1 and %d", coordinator.Name, p, committed, lag, ok, end-1)
			}
		}
		return true, ""
	})

	shrinks0, _ := sumMetric(c.Brokers, "skein_broker_isr_shrinks_total", nil)
	expands0, _ := sumMetric(c.Brokers, "skein_broker_isr_expands_total", nil)
	stopped := c.Brokers[2]
	stopped.MustStop()
	urp := waitMetricSum(t, c, 30*time.Second, "skein_broker_under_replicated_partitions", "> 0", func(v float64) bool { return v > 0 })
	t.Logf("%s stopped: %v under-replicated partitions", stopped.Name, urp)
	waitMetricSum(t, c, 10*time.Second, "skein_broker_isr_shrinks_total", fmt.Sprintf("> %v", shrinks0), func(v float64) bool { return v > shrinks0 })

	stopped.Restart()
	waitMetricSum(t, c, 60*time.Second, "skein_broker_under_replicated_partitions", "0", func(v float64) bool { return v == 0 })
	waitMetricSum(t, c, 10*time.Second, "skein_broker_isr_expands_total", fmt.Sprintf("> %v", expands0), func(v float64) bool { return v > expands0 })
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		code, body, err := stopped.Readyz()
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%s /readyz after restart: %d %s", stopped.Name, code, body)
	})
}
