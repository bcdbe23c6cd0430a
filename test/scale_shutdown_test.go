package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestScaleBrokerShutdown is a measurement, not a timed test (skipped
// unless SKEIN_SCALE_PARTITIONS is set): one controller and three brokers,
// SKEIN_SCALE_PARTITIONS partitions of RF 3 in topics of 100, no data. It
// stops one broker cleanly (SIGTERM: controlled shutdown, then storage
// closed) and restarts it, and logs how long each took, with the broker's
// own "storage opened" and "storage closed" lines. It checks only that the
// stop was clean and that the restart found the clean-shutdown marker.
//
//	make build && SKEIN_BIN=$PWD/bin/skein SKEIN_SCALE_PARTITIONS=3000 \
//	  go test -count=1 -v -timeout 20m -run TestScaleBrokerShutdown ./test/
func TestScaleBrokerShutdown(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SKEIN_SCALE_PARTITIONS"))
	if n <= 0 {
		t.Skip("set SKEIN_SCALE_PARTITIONS (e.g. 3000) to run this measurement")
	}
	const perTopic = 100
	c := harness.StartCluster(t, harness.Options{Brokers: 3, StartTimeout: 5 * time.Minute})
	adm := kadm.NewClient(c.Client(t, kgo.MetadataMinAge(50*time.Millisecond)))
	var topics []string
	for i := 0; i*perTopic < n; i++ {
		topics = append(topics, fmt.Sprintf("scale-%03d", i))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, perTopic, 3, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	harness.WaitFor(t, 5*time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		md, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return false, err.Error()
		}
		for _, name := range topics {
			d, ok := md[name]
			if !ok || d.Err != nil || len(d.Partitions) != perTopic {
				return false, name + " not complete in metadata"
			}
			for _, p := range d.Partitions {
				if p.Leader < 0 || len(p.ISR) != 3 {
					return false, fmt.Sprintf("%s-%d: leader %d ISR %v", name, p.Partition, p.Leader, p.ISR)
				}
			}
		}
		return true, ""
	})
	t.Logf("created %d partitions (RF 3, %d topics) with full ISRs in %v", len(topics)*perTopic, len(topics),
		time.Since(start).Round(time.Millisecond))

	b := c.Broker(harness.FirstBrokerID)
	start = time.Now()
	if err := b.Stop(5 * time.Minute); err != nil {
		t.Fatalf("stop %s: %v", b.Name, err)
	}
	t.Logf("broker %d (hosting %d replicas) stopped cleanly in %v", b.ID, len(topics)*perTopic,
		time.Since(start).Round(time.Millisecond))
	logText := func() []string {
		raw, err := os.ReadFile(b.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(raw), "\n")
	}
	for _, line := range logText() {
		if strings.Contains(line, "controlled shutdown") || strings.Contains(line, "storage closed") ||
			strings.Contains(line, "broker stopped") {
			t.Logf("  %s", line)
		}
	}
	start = time.Now()
	b.Restart()
	t.Logf("broker %d restarted (ready) in %v", b.ID, time.Since(start).Round(time.Millisecond))
	found := false
	for _, line := range logText() {
		if strings.Contains(line, "storage opened") {
			t.Logf("  %s", line)
			found = strings.Contains(line, "clean_shutdown=true")
		}
	}
	if !found {
		t.Fatalf("the restart did not log a clean storage open")
	}
}
