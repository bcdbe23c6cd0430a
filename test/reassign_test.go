package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/reassign"
	"github.com/skein-io/skein/test/harness"
)

// TestCLIReassign drives the partition reassignment commands on a real
// 3-broker cluster: `skein reassign generate` prints a valid plan that
// moves every replica off the broker left out; the planners' dry runs
// (`skein broker decommission --dry-run`, `skein cluster rebalance
// --dry-run`) print plans that hold their promises against the cluster's
// real assignment; validation errors say what to do. The commands that
// need AlterPartitionReassignments / ListPartitionReassignments (API 45 /
// 46) must either work (list prints an empty table) or, on a cluster
// without them, fail with a clear "does not support partition
// reassignment" error.
func TestCLIReassign(t *testing.T) {
	const topic = "reassign-t"
	c := harness.StartCluster(t, harness.Options{Brokers: 3})
	b0, b1, b2 := c.Brokers[0].ID, c.Brokers[1].ID, c.Brokers[2].ID
	run := func(args ...string) harness.CLIResult {
		t.Helper()
		return c.RunCLI(t, time.Minute, nil, args...)
	}
	mustRun := func(args ...string) harness.CLIResult {
		t.Helper()
		res := run(args...)
		if res.Err != nil {
			t.Fatalf("skein %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
		}
		return res
	}
	mustFail := func(want string, args ...string) harness.CLIResult {
		t.Helper()
		res := run(args...)
		if res.Err == nil {
			t.Errorf("skein %s succeeded; want an error with %q\nstdout: %s", strings.Join(args, " "), want, res.Stdout)
		} else if !strings.Contains(res.Stderr, want) {
			t.Errorf("skein %s: stderr lacks %q:\n%s", strings.Join(args, " "), want, res.Stderr)
		}
		return res
	}

	mustRun("topic", "create", topic, "--partitions", "6", "--replication-factor", "2")
	waitForLeaders(t, c, topic, 6)
	current := clusterAssignment(t, c, topic)

	// generate: everything onto b0,b1.
	res := mustRun("reassign", "generate", "--topics", topic, "--brokers", fmt.Sprintf("%d,%d", b0, b1))
	plan, err := reassign.ParsePlan([]byte(res.Stdout))
	if err != nil {
		t.Fatalf("generate printed no valid plan: %v\n%s", err, res.Stdout)
	}
	onB2 := 0
	for _, r := range current {
		if slices.Contains(r, b2) {
			onB2++
		}
	}
	if onB2 == 0 {
		t.Fatalf("no replica on broker %d to move: %v", b2, current)
	}
	target := plan.Assignment()
	for tp, r := range current {
		got, planned := target[tp]
		if slices.Contains(r, b2) && !planned {
			t.Errorf("%s on %v is not in the plan", tp, r)
		}
		if planned && (len(got) != len(r) || slices.Contains(got, b2)) {
			t.Errorf("%s: planned %v from %v", tp, got, r)
		}
	}
	if got := reassign.Moves(current, target); got != onB2 {
		t.Errorf("the plan copies %d replicas, want %d (those on %d)", got, onB2, b2)
	}
	if !strings.Contains(res.Stderr, "Current partition replica assignment") || !strings.Contains(res.Stderr, "replica(s) to copy") {
		t.Errorf("generate's stderr lacks the current assignment or the summary:\n%s", res.Stderr)
	}
	// The same cluster gives the same plan.
	if again := mustRun("reassign", "generate", "--topics", topic, "--brokers", fmt.Sprintf("%d,%d", b0, b1)); again.Stdout != res.Stdout {
		t.Errorf("generate is not deterministic:\n%s\n%s", res.Stdout, again.Stdout)
	}

	mustFail("topic nope does not exist", "reassign", "generate", "--topics", "nope", "--brokers", fmt.Sprint(b0))
	mustFail("broker 999 (in --brokers) is not in the cluster", "reassign", "generate", "--topics", topic, "--brokers", fmt.Sprintf("%d,999", b0))
	mustFail(fmt.Sprintf("broker %d is listed twice", b0), "reassign", "generate", "--topics", topic, "--brokers", fmt.Sprintf("%d,%d,%d", b0, b1, b0))
	mustFail("has 2 replicas but only 1 broker(s)", "reassign", "generate", "--topics", topic, "--brokers", fmt.Sprint(b0))
	mustFail("rack-aware placement needs a rack on every broker", "reassign", "generate", "--topics", topic, "--brokers", fmt.Sprintf("%d,%d", b0, b1), "--rack-aware")

	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, []byte(res.Stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\"version\":1,\n\"partitions\":[{\"topic\":\"t\" \"partition\":0}]}"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustFail("malformed plan JSON at line 2", "reassign", "execute", "--plan", bad)
	unknown := filepath.Join(dir, "unknown.json")
	if err := os.WriteFile(unknown, []byte(`{"version":1,"partitions":[{"topic":"`+topic+`","partition":9,"replicas":[`+fmt.Sprint(b0)+`]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustFail("throttle", "reassign", "execute", "--plan", planFile, "--throttle", "fast")

	// decommission --dry-run: every partition on b2, and only those, moves
	// off it.
	res = mustRun("broker", "decommission", fmt.Sprint(b2), "--dry-run")
	rows := planTableRows(t, res.Stdout)
	if len(rows) != onB2 {
		t.Errorf("decommission plans %d partitions, want %d:\n%s", len(rows), onB2, res.Stdout)
	}
	for tp, r := range rows {
		if slices.Contains(r, b2) || !slices.Contains(current[tp], b2) || len(r) != len(current[tp]) {
			t.Errorf("decommission %s: %v -> %v", tp, current[tp], r)
		}
	}
	mustFail("broker 999 is not in the cluster", "broker", "decommission", "999", "--dry-run")

	// rebalance --dry-run: after the plan, replica and preferred-leader
	// counts are within one over the three brokers.
	res = mustRun("cluster", "rebalance", "--dry-run")
	everything := clusterAssignment(t, c)
	after := reassign.Merge(everything, planTableRows(t, res.Stdout))
	replicas, leaders := reassign.Loads(after)
	if spreadOf(replicas, b0, b1, b2) > 1 || spreadOf(leaders, b0, b1, b2) > 1 {
		t.Errorf("after rebalance's plan: replicas %v, leaders %v\n%s", replicas, leaders, res.Stdout)
	}
	if !strings.Contains(res.Stdout, "The cluster is balanced") && !strings.Contains(res.Stdout, "replica(s) to copy") {
		t.Errorf("rebalance --dry-run printed no summary:\n%s", res.Stdout)
	}

	// The commands that need API 45/46.
	if !clusterSupports(t, c, kmsg.AlterPartitionAssignments, kmsg.ListPartitionReassignments) {
		t.Log("the cluster has no AlterPartitionReassignments/ListPartitionReassignments: checking the error only")
		mustFail("this cluster does not support partition reassignment (ListPartitionReassignments", "reassign", "list")
		mustFail("this cluster does not support partition reassignment (AlterPartitionReassignments", "reassign", "execute", "--plan", planFile)
		mustFail("this cluster does not support partition reassignment (AlterPartitionReassignments", "reassign", "cancel", "--all")
		mustFail("this cluster does not support partition reassignment (AlterPartitionReassignments", "broker", "decommission", fmt.Sprint(b2))
		mustFail("this cluster does not support partition reassignment (ListPartitionReassignments", "reassign", "verify", "--plan", planFile)
		return
	}
	res = mustRun("reassign", "list")
	if !regexp.MustCompile(`^TOPIC\s+PARTITION\s+REPLICAS\s+ADDING\s+REMOVING\s+LEFT\s*\n$`).MatchString(res.Stdout) {
		t.Errorf("list on an idle cluster is not an empty table:\n%q", res.Stdout)
	}
	mustFail("topic "+topic+" has no partition 9", "reassign", "execute", "--plan", unknown)
	res = mustRun("reassign", "execute", "--plan", planFile, "--wait", "--interval", "200ms")
	if !strings.Contains(res.Stdout, "Current partition replica assignment") || !strings.Contains(res.Stdout, "complete") {
		t.Errorf("execute --wait output:\n%s\n%s", res.Stdout, res.Stderr)
	}
	res = mustRun("reassign", "verify", "--plan", planFile)
	if !strings.Contains(res.Stdout, "is complete") {
		t.Errorf("verify:\n%s", res.Stdout)
	}
	// The brokers' metadata follows the controller's.
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		moved := clusterAssignment(t, c, topic)
		for tp, r := range target {
			if !slices.Equal(moved[tp], r) {
				return false, fmt.Sprintf("%s is on %v after the reassignment, planned %v", tp, moved[tp], r)
			}
		}
		return true, ""
	})

	// Broker b2 is empty now; rebalance fills it again, throttled.
	res = mustRun("broker", "decommission", fmt.Sprint(b2), "--dry-run")
	if !strings.Contains(res.Stdout, "holds no replica") {
		t.Errorf("decommission of the emptied broker:\n%s", res.Stdout)
	}
	res = mustRun("cluster", "rebalance", "--throttle", "10MB/s", "--wait", "--interval", "200ms")
	if !strings.Contains(res.Stdout, "complete") || !strings.Contains(res.Stdout, "Throttle removed") {
		t.Errorf("rebalance --wait:\n%s\n%s", res.Stdout, res.Stderr)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		replicas, leaders := reassign.Loads(clusterAssignment(t, c))
		if spreadOf(replicas, b0, b1, b2) > 1 || spreadOf(leaders, b0, b1, b2) > 1 {
			return false, fmt.Sprintf("after rebalance: replicas %v, leaders %v", replicas, leaders)
		}
		return true, ""
	})
}

// clusterAssignment reads the replicas of the topics (every topic,
// internal ones included, when none is named).
func clusterAssignment(t *testing.T, c *harness.Cluster, topics ...string) reassign.Assignment {
	t.Helper()
	adm := kadm.NewClient(c.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	a := reassign.Assignment{}
	for _, d := range details {
		for _, p := range d.Partitions {
			a[reassign.TopicPartition{Topic: d.Topic, Partition: p.Partition}] = p.Replicas
		}
	}
	return a
}

// planTableRows reads the TOPIC PARTITION CURRENT TARGET table of a dry
// run into the target assignment.
func planTableRows(t *testing.T, out string) reassign.Assignment {
	t.Helper()
	a := reassign.Assignment{}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if !inTable {
			inTable = len(f) == 4 && f[0] == "TOPIC" && f[3] == "TARGET"
			continue
		}
		if len(f) != 4 {
			break
		}
		var p int32
		if _, err := fmt.Sscan(f[1], &p); err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		var ids []int32
		for _, s := range strings.Split(f[3], ",") {
			var id int32
			if _, err := fmt.Sscan(s, &id); err != nil {
				t.Fatalf("row %q: %v", line, err)
			}
			ids = append(ids, id)
		}
		a[reassign.TopicPartition{Topic: f[0], Partition: p}] = ids
	}
	return a
}

func spreadOf(counts map[int32]int, ids ...int32) int {
	lo, hi := counts[ids[0]], counts[ids[0]]
	for _, id := range ids {
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	return hi - lo
}

// clusterSupports reports whether every broker offers the API keys.
func clusterSupports(t *testing.T, c *harness.Cluster, keys ...kmsg.Key) bool {
	t.Helper()
	adm := kadm.NewClient(c.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	for _, v := range vs {
		for _, k := range keys {
			if _, ok := v.KeyMaxVersion(int16(k)); v.Err != nil || !ok {
				return false
			}
		}
	}
	return true
}
