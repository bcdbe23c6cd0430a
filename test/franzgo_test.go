package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestFranzGoProduceConsume produces 100k records with franz-go (acks=all,
// idempotent: the client's defaults) to an auto-created topic and to a
// topic created by `skein topic create`, then reads both back and checks
// that every record is stored exactly once, at its acknowledged offset, in
// order per partition.
func TestFranzGoProduceConsume(t *testing.T) {
	const records = 100_000
	c := harness.StartCluster(t, harness.Options{})

	cases := []struct {
		topic  string
		create func(t *testing.T)
	}{
		{topic: "auto-created", create: func(*testing.T) {}},
		{topic: "cli-created", create: func(t *testing.T) {
			res := c.RunCLI(t, 30*time.Second, nil, "topic", "create", "cli-created", "--partitions", "3", "--replication-factor", "1")
			if res.Err != nil {
				t.Fatalf("skein topic create: %v\nstdout: %s\nstderr: %s", res.Err, res.Stdout, res.Stderr)
			}
			waitForLeaders(t, c, "cli-created", 3)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.topic, func(t *testing.T) {
			tc.create(t)
			cl := c.Client(t,
				kgo.RequiredAcks(kgo.AllISRAcks()), // the default, stated
				kgo.AllowAutoTopicCreation(),
				kgo.DefaultProduceTopic(tc.topic),
			)
			var ledger harness.Ledger
			produceNumbered(t, cl, tc.topic, "franz", records, &ledger)

			stored := c.ReadAll(t, tc.topic, time.Minute)
			report := harness.Verify(stored, ledger.Acks())
			report.Check(t)
			if report.Records != records || report.Acked != records {
				t.Errorf("read %d records, %d acknowledged; want %d of each", report.Records, report.Acked, records)
			}
			if strings.HasPrefix(tc.topic, "cli") && report.Partitions != 3 {
				t.Errorf("topic has %d partitions, want 3", report.Partitions)
			}
		})
	}
}
