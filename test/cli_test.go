package e2e

import (
	"encoding/json"
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

// TestCLIBenchProduceMeasuredWindow runs `skein bench produce` as the
// latency benchmarks do: two clients at a fixed rate for a duration after
// a warm-up, with the broker's CPU time. The report must cover the
// measured window only and carry every field the scripts read.
func TestCLIBenchProduceMeasuredWindow(t *testing.T) {
	const (
		rate     = 2000
		warmup   = time.Second
		duration = 2 * time.Second
	)
	c := harness.StartCluster(t, harness.Options{})
	res := c.RunCLI(t, time.Minute, nil, "bench", "produce", "--topic", "bench-window",
		"--partitions", "2", "--replication-factor", "1", "--record-size", "100",
		"--clients", "2", "--warmup", warmup.String(), "--duration", duration.String(),
		"--throughput", fmt.Sprint(rate), "--server-pids", fmt.Sprint(c.Brokers[0].Pid()),
		"--json", "--no-progress", "--log-level", "error")
	if res.Err != nil {
		t.Fatalf("bench produce: %v\nstdout: %s\nstderr: %s", res.Err, res.Stdout, res.Stderr)
	}
	var got struct {
		Records          int64    `json:"records"`
		Failed           int64    `json:"failed"`
		Seconds          float64  `json:"seconds"`
		RecordsPerSec    float64  `json:"records_per_sec"`
		P50Ms            float64  `json:"p50_ms"`
		P99Ms            float64  `json:"p99_ms"`
		P999Ms           float64  `json:"p999_ms"`
		P9999Ms          float64  `json:"p9999_ms"`
		MaxMs            float64  `json:"max_ms"`
		Over50Ms         *int64   `json:"over_50ms"`
		WarmupSeconds    float64  `json:"warmup_seconds"`
		Clients          int      `json:"clients"`
		BehindMsMax      *float64 `json:"behind_ms_max"`
		ClientCPUSeconds float64  `json:"client_cpu_seconds"`
		ServerCPUSeconds float64  `json:"server_cpu_seconds"`
		ServerCPUSPerGB  float64  `json:"server_cpu_s_per_gb"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, res.Stdout)
	}
	t.Logf("report: %s", res.Stdout)
	// The records due in the measured window are rate*duration; a
	// generator that fell behind in the warm-up moves more of them past
	// its end, up to the whole run.
	measured, all := int64(rate*duration.Seconds()), int64(rate*(warmup+duration).Seconds())
	if got.Records < measured || got.Records > all || got.Failed != 0 {
		t.Errorf("records %d (failed %d), want %d..%d, none failed", got.Records, got.Failed, measured, all)
	}
	// The window runs from the end of the warm-up to the last
	// acknowledgement, after the last record's due time.
	if got.Seconds < duration.Seconds()-0.01 || got.RecordsPerSec <= 0 {
		t.Errorf("seconds %v, records/s %v; want at least %v s", got.Seconds, got.RecordsPerSec, duration.Seconds())
	}
	if got.Clients != 2 || got.WarmupSeconds != warmup.Seconds() {
		t.Errorf("clients %d, warmup_seconds %v; want 2 and %v", got.Clients, got.WarmupSeconds, warmup.Seconds())
	}
	if !(0 < got.P50Ms && got.P50Ms <= got.P99Ms && got.P99Ms <= got.P999Ms && got.P999Ms <= got.P9999Ms && got.P9999Ms <= got.MaxMs) {
		t.Errorf("latency quantiles out of order: p50 %v p99 %v p99.9 %v p99.99 %v max %v",
			got.P50Ms, got.P99Ms, got.P999Ms, got.P9999Ms, got.MaxMs)
	}
	if got.Over50Ms == nil || *got.Over50Ms < 0 || *got.Over50Ms > got.Records || got.BehindMsMax == nil || *got.BehindMsMax < 0 {
		t.Errorf("over_50ms %v, behind_ms_max %v: missing or out of range", got.Over50Ms, got.BehindMsMax)
	}
	if got.ServerCPUSeconds <= 0 || got.ServerCPUSPerGB <= 0 || got.ClientCPUSeconds <= 0 {
		t.Errorf("server CPU %v s (%v s/GB), client CPU %v s; want all > 0",
			got.ServerCPUSeconds, got.ServerCPUSPerGB, got.ClientCPUSeconds)
	}

	// A pid that is not running fails before producing anything.
	res = c.RunCLI(t, time.Minute, nil, "bench", "produce", "--topic", "bench-window", "--num-records", "10",
		"--server-pids", "1073741824", "--no-progress", "--log-level", "error")
	if res.Err == nil || !strings.Contains(res.Stderr, "--server-pids") {
		t.Errorf("bench produce with a pid that cannot exist: err %v, stderr %q; want a --server-pids error", res.Err, res.Stderr)
	}
}
