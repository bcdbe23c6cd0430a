package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/test/harness"
)

// confluentKafkaPython returns a python3 that imports confluent_kafka
// (Debian's python3-confluent-kafka, over librdkafka). Without one the test
// is skipped, except under CI=true, where it fails: CI installs it.
func confluentKafkaPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import confluent_kafka").Run() == nil {
			return py
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("python3 with confluent_kafka is missing; CI must install it (apt-get install python3-confluent-kafka)")
	}
	t.Skip("python3 with confluent_kafka is missing; install python3-confluent-kafka to run this test")
	return ""
}

// TestTransactionsLibrdkafka: librdkafka's transactional producer
// (confluent-kafka-python) commits one transaction and aborts another; a
// read_committed consumer sees only the committed records, a
// read_uncommitted one sees them all.
func TestTransactionsLibrdkafka(t *testing.T) {
	py := confluentKafkaPython(t)
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: txnBrokerArgs, ControllerArgs: fastFenceControllerArgs})
	const topic = "txn-rdkafka"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Admin(t).CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("testdata/txn_librdkafka.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, py, script, c.Bootstrap(), topic)
	out, err := cmd.CombinedOutput()
	t.Logf("confluent-kafka-python:\n%s", out)
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			lines[k] = v
		}
	}
	if got, want := lines["read_committed"], "c0 c1 c2 c3 c4 c5"; got != want {
		t.Fatalf("read_committed read %q, want %q", got, want)
	}
	if got, want := lines["read_uncommitted"], "c0 c1 c2 c3 c4 a0 a1 a2 a3 a4 c5"; got != want {
		t.Fatalf("read_uncommitted read %q, want %q", got, want)
	}
	if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic); res.Err != nil {
		t.Fatalf("skein replicas verify %s: %v\n%s%s", topic, res.Err, res.Stdout, res.Stderr)
	}
}
