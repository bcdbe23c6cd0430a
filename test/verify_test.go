package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestReplicasVerify: 1 controller, 3 brokers, a topic with 3 partitions
// and replication factor 3. After an acks=all producer wrote to every
// partition, `skein replicas verify` must list every replica of every
// partition with a non-empty, matching checksum and exit 0. With one
// broker stopped, its replicas cannot be read: the command must report
// them and exit non-zero. (Comparison of differing digests is unit-tested
// in cli/replicas_test.go.)
func TestReplicasVerify(t *testing.T) {
	const (
		topic      = "verified"
		partitions = 3
		records    = 3000
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3})
	createTopic(t, c, topic, partitions, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "verify", records, &ledger)

	res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic)
	if res.Err != nil {
		t.Fatalf("skein replicas verify: %v\nstdout:\n%s\nstderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("skein replicas verify:\n%s", res.Stdout)
	rows := verifyRows(t, res.Stdout)
	if len(rows) != partitions*3 {
		t.Fatalf("%d rows, want one per replica (%d)", len(rows), partitions*3)
	}
	seen := map[string]int{}
	for _, r := range rows {
		// TOPIC PARTITION REPLICA [(leader)] HW BYTES CHECKSUM MATCH
		if r[0] != topic || r[len(r)-1] != "yes" || r[len(r)-3] == "0" {
			t.Errorf("row %q: want topic %s, bytes > 0 and MATCH yes", strings.Join(r, " "), topic)
		}
		seen[r[1]]++
	}
	for p := range partitions {
		if n := seen[strconv.Itoa(p)]; n != 3 {
			t.Errorf("partition %d: %d rows, want 3", p, n)
		}
	}

	c.Brokers[2].MustStop()
	res = c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic, "--hw-wait", "1s", "--timeout", "30s")
	t.Logf("skein replicas verify with broker %d stopped:\n%s%s", c.Brokers[2].ID, res.Stdout, res.Stderr)
	if res.Err == nil {
		t.Fatalf("verify succeeded with broker %d stopped", c.Brokers[2].ID)
	}
	if n := strings.Count(res.Stdout, "ERROR"); n != partitions {
		t.Errorf("%d ERROR rows, want one per partition (%d)", n, partitions)
	}

	res = c.RunCLI(t, 30*time.Second, nil, "replicas", "verify", "no-such-topic")
	if res.Err == nil || !strings.Contains(res.Stderr, "does not exist") {
		t.Errorf("verify of a missing topic: err %v, stderr %q; want a 'does not exist' failure", res.Err, res.Stderr)
	}
}

// verifyRows splits the table rows (header excluded) into fields.
func verifyRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "TOPIC") {
		t.Fatalf("no table header in %q", out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}
