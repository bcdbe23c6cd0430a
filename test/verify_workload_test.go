package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/internal/workload"
	"github.com/skein-io/skein/test/harness"
)

// verifyWorkloadArgs runs a short, slow workload: a few seconds at 200
// records/s, so the test stays cheap.
func verifyWorkloadArgs(topic, history, duration string) []string {
	return []string{"verify", "workload", "--topic", topic, "--duration", duration,
		"--rate", "200", "--history", history, "--drain-timeout", "45s", "--report-interval", "1s"}
}

// verifyWorkloadBrokerArgs: the brokers start the first rebalance of a
// group at once (no 3 s initial delay), so the group reads during the
// short run too.
var verifyWorkloadBrokerArgs = []string{"--group-initial-rebalance-delay", "0s"}

// TestVerifyWorkload: `skein verify workload` against 3 brokers exits 0,
// prints a row per check with a count of 0, and writes a history that
// parses and that the checker passes, in which records were acknowledged
// and every consumer (two plain, a group of two, the final reader) read
// them all. Then a record written by someone else during a second run is
// reported (unknown-value) and fails the command: the command can fail.
func TestVerifyWorkload(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: verifyWorkloadBrokerArgs})
	history := filepath.Join(t.TempDir(), "history.jsonl")
	res := c.RunCLI(t, 2*time.Minute, nil, verifyWorkloadArgs("verified-workload", history, "3s")...)
	t.Logf("stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	if res.Err != nil {
		t.Fatalf("skein verify workload: %v", res.Err)
	}
	for _, k := range workload.Kinds {
		if !containsRow(res.Stdout, string(k), "0", "-") {
			t.Errorf("no row %q 0 - in the summary", k)
		}
	}
	if !strings.Contains(res.Stdout, "No anomalies.") {
		t.Errorf("no 'No anomalies.' in the summary")
	}
	checkWorkloadHistory(t, history)

	const foreign = "written-by-someone-else"
	history = filepath.Join(t.TempDir(), "foreign.jsonl")
	done := startWorkload(t, c, "foreign-workload", history, "2s")
	waitWorkloadRunning(t, history)
	cl := c.Client(t, kgo.DefaultProduceTopic("foreign-workload"))
	if err := cl.ProduceSync(context.Background(), kgo.StringRecord(foreign)).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", foreign, err)
	}
	res = <-done
	t.Logf("stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	if res.Err == nil {
		t.Fatalf("skein verify workload passed with a record of another writer in the topic")
	}
	if !containsRow(res.Stdout, string(workload.UnknownValue), "1") || !strings.Contains(res.Stdout, foreign) {
		t.Errorf("no row %s 1 naming %q in the summary", workload.UnknownValue, foreign)
	}
	if !strings.Contains(res.Stderr, "1 anomaly found") {
		t.Errorf("stderr does not say '1 anomaly found'")
	}
	if data, err := os.ReadFile(history + ".anomalies.jsonl"); err != nil || !bytes.Contains(data, []byte(foreign)) {
		t.Errorf("anomalies file: %v, %q; want the unknown value in it", err, data)
	}
}

// TestVerifyWorkloadBrokerKill: a run during which the leader of
// partition 0 is killed with SIGKILL and restarted: the producers and
// consumers move to other leaders, and nothing is lost, duplicated or
// skipped.
func TestVerifyWorkloadBrokerKill(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: verifyWorkloadBrokerArgs})
	history := filepath.Join(t.TempDir(), "history.jsonl")
	done := startWorkload(t, c, "verified-workload", history, "8s")
	waitWorkloadRunning(t, history)
	leader := c.Broker(partitionLeader(t, c, "verified-workload", 0))
	t.Logf("killing %s, the leader of partition 0", leader.Name)
	leader.MustKill()
	leader.Restart()
	t.Logf("%s restarted", leader.Name)

	res := <-done
	t.Logf("stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	if res.Err != nil {
		t.Fatalf("skein verify workload: %v", res.Err)
	}
	checkWorkloadHistory(t, history)
}

// TestVerifyWorkloadUntilSignal: with --duration 0 the workload runs until
// SIGTERM, which ends it normally: the checks run and it exits 0 (the
// fault tests across containers run it so, for as long as a fault and its
// healing take).
func TestVerifyWorkloadUntilSignal(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: verifyWorkloadBrokerArgs})
	history := filepath.Join(t.TempDir(), "history.jsonl")
	var stdout strings.Builder
	var mu sync.Mutex
	w := harness.StartChild(t, "verify workload", harness.Binary(t),
		append(verifyWorkloadArgs("until-signal", history, "0"), "--bootstrap-server", c.Bootstrap()),
		harness.ChildOutput{Stdout: func(line string) {
			mu.Lock()
			defer mu.Unlock()
			stdout.WriteString(line + "\n")
		}})
	waitWorkloadRunning(t, history)
	err := w.Stop(time.Minute)
	mu.Lock()
	t.Logf("stdout:\n%s\nstderr (tail):\n%s", stdout.String(), strings.Join(w.Tail(), "\n"))
	mu.Unlock()
	if err != nil {
		t.Fatalf("skein verify workload --duration 0, stopped with SIGTERM: %v", err)
	}
	checkWorkloadHistory(t, history)
}

// startWorkload runs skein verify workload in the background; its result
// arrives on the channel. The test waits for it to end before it ends.
func startWorkload(t *testing.T, c *harness.Cluster, topic, history, duration string) <-chan harness.CLIResult {
	done := make(chan harness.CLIResult, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- c.RunCLI(t, 2*time.Minute, nil, verifyWorkloadArgs(topic, history, duration)...)
	}()
	t.Cleanup(func() { <-finished }) // the command logs through t: the test must outlive it
	return done
}

// waitWorkloadRunning waits until the history shows records acknowledged
// and read.
func waitWorkloadRunning(t *testing.T, history string) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(history)
		if bytes.Contains(data, []byte(`"type":"ok"`)) && bytes.Contains(data, []byte(`"type":"poll"`)) {
			return true, ""
		}
		return false, "no acknowledged and read record in the history yet"
	})
}

// containsRow reports whether out has a line whose fields start with
// fields.
func containsRow(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

// checkWorkloadHistory parses the history file and checks it again: no
// anomaly, records acknowledged and read by every reader. It returns the
// checker's report.
func checkWorkloadHistory(t *testing.T, path string) *workload.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := workload.ReadHistory(f)
	if err != nil {
		t.Fatalf("history %s: %v", path, err)
	}
	report, err := workload.Check(events)
	if err != nil {
		t.Fatalf("check %s: %v", path, err)
	}
	t.Logf("history: %d events, %d acknowledged, %d indeterminate, final log %d records, reads %v",
		len(events), report.Acknowledged, report.Indeterminate, report.FinalRecords, report.Reads)
	for _, e := range events {
		if e.Type == workload.End || e.Type == workload.Assign || e.Type == workload.Revoke {
			t.Logf("%s after the start: %s %s %v", e.Time.Sub(events[0].Time).Round(time.Millisecond), e.Type, e.Process, e.Offsets)
		}
	}
	t.Logf("%s after the start: last event", events[len(events)-1].Time.Sub(events[0].Time).Round(time.Millisecond))
	for _, a := range report.Anomalies {
		t.Errorf("%s: %s", a.Kind, a)
	}
	if report.Acknowledged == 0 {
		t.Errorf("nothing acknowledged")
	}
	for _, reader := range []string{"c0", "c1", workload.FinalReader} {
		if report.Reads[reader] < report.Acknowledged {
			t.Errorf("%s read %d records, fewer than the %d acknowledged", reader, report.Reads[reader], report.Acknowledged)
		}
	}
	if group := report.Reads["g0"] + report.Reads["g1"]; group < report.Acknowledged {
		t.Errorf("the group read %d records, fewer than the %d acknowledged", group, report.Acknowledged)
	}
	return report
}
