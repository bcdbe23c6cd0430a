package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

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
	c := harness.StartCluster(t, harness.Options{Brokers: 3, StartTimeout: 5 * time.Minute})
	sc := createScaleTopics(t, c, "scale", n, nil, 5*time.Minute)
	sc.waitFullISRs(t, "created", 5*time.Minute)
	topics := sc.topics

	b := c.Broker(harness.FirstBrokerID)
	start := time.Now()
	if err := b.Stop(5 * time.Minute); err != nil {
		t.Fatalf("stop %s: %v", b.Name, err)
	}
	t.Logf("broker %d (hosting %d replicas) stopped cleanly in %v", b.ID, len(topics)*scalePerTopic,
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
