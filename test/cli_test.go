package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/test/harness"
)

// TestCLIProduceConsumeTopicCommands drives the skein CLI as a user would:
// topic create/list/describe/delete must show what kafka-topics.sh shows,
// and lines piped through `skein produce` come back from `skein consume`.
func TestCLIProduceConsumeTopicCommands(t *testing.T) {
	const (
		topic = "cli-topic"
		lines = 1000
	)
	c := harness.StartCluster(t, harness.Options{})
	broker := fmt.Sprint(c.Brokers[0].ID)
	run := func(stdin string, args ...string) harness.CLIResult {
		t.Helper()
		var in *strings.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		if in == nil {
			return c.RunCLI(t, time.Minute, nil, args...)
		}
		return c.RunCLI(t, time.Minute, in, args...)
	}
	mustRun := func(stdin string, args ...string) harness.CLIResult {
		t.Helper()
		res := run(stdin, args...)
		if res.Err != nil {
			t.Fatalf("skein %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
		}
		return res
	}
	wantContains := func(what, out string, subs ...string) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(out, s) {
				t.Errorf("%s output lacks %q:\n%s", what, s, out)
			}
		}
	}

	res := mustRun("", "topic", "create", topic, "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000")
	wantContains("create", res.Stdout, topic)
	waitForLeaders(t, c, topic, 3)

	if res := run("", "topic", "create", topic, "--partitions", "3", "--replication-factor", "1"); res.Err == nil {
		t.Errorf("creating %s twice succeeded; want an error\nstdout: %s", topic, res.Stdout)
	} else {
		wantContains("second create", res.Stderr, "already exists")
	}

	res = mustRun("", "topic", "list")
	wantContains("list", res.Stdout, topic)

	res = mustRun("", "topic", "describe", topic)
	wantContains("describe", res.Stdout,
		"Topic: "+topic, "PartitionCount: 3", "ReplicationFactor: 1", "retention.ms=3600000",
		"Partition: 0", "Partition: 1", "Partition: 2",
		"Leader: "+broker, "Replicas: "+broker, "Isr: "+broker, "Elr: ", "LastKnownElr: ")

	// Produce lines, consume them back.
	want := make([]string, lines)
	for i := range want {
		want[i] = harness.Value("cli", int64(i))
	}
	mustRun(strings.Join(want, "\n")+"\n", "produce", topic)
	res = mustRun("", "consume", topic, "--from-beginning", "--max-messages", fmt.Sprint(lines), "--timeout", "20s")
	got := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	if len(got) != lines {
		t.Errorf("consumed %d lines, want %d", len(got), lines)
	}
	gotSorted := slices.Clone(got)
	slices.Sort(gotSorted)
	if !slices.Equal(gotSorted, want) { // want is sorted: zero-padded seqs
		t.Errorf("consumed lines differ from produced ones; first consumed: %q", first(got, 5))
	}
	// The lines of each partition must keep the order they were read from
	// stdin: check the stored log directly.
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), nil)
	report.Check(t)
	if report.Records != lines {
		t.Errorf("topic holds %d records, want %d", report.Records, lines)
	}
	// The producer's sticky partitioner may leave partitions empty: read
	// one record from a partition that has some.
	part := nonEmptyPartition(t, c.Admin(t), topic)
	res = mustRun("", "consume", topic, "--partition", itoa(int(part)), "--offset", "0", "--max-messages", "1", "--timeout", "20s")
	if strings.Count(res.Stdout, "\n") != 1 {
		t.Errorf("consume --partition %d --offset 0 --max-messages 1 printed %q; want one line", part, res.Stdout)
	}

	res = mustRun("", "topic", "delete", topic)
	wantContains("delete", res.Stdout, topic)
	adm := c.Admin(t)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		res := run("", "topic", "list")
		if res.Err != nil {
			return false, res.Err.Error()
		}
		if strings.Contains(res.Stdout, topic) {
			return false, "still listed:\n" + res.Stdout
		}
		return true, ""
	})
	if n := partitionCount(t, adm, topic); n != 0 {
		t.Errorf("deleted topic still has %d partitions in metadata", n)
	}
	if res := run("", "topic", "describe", topic); res.Err == nil {
		t.Errorf("describe of deleted topic succeeded:\n%s", res.Stdout)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
