package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/internal/reassign"
)

func TestBrokerSubcommandDispatch(t *testing.T) {
	// Before decommission checked its own arguments, urfave/cli checked
	// `skein broker`'s required flags first: `skein broker decommission
	// x` failed with `Required flags "node-id, data-dir, controllers" not
	// set`.
	_, _, err := runCLI(t, "127.0.0.1:1", "broker", "decommission", "x")
	if err == nil || !strings.Contains(err.Error(), `"x" is not a broker id`) {
		t.Fatalf("skein broker decommission x: %v", err)
	}
	_, _, err = runCLI(t, "127.0.0.1:1", "broker", "decommission", "3", "--throttle", "-1MB/s")
	if err == nil || !strings.Contains(err.Error(), "cannot be negative") {
		t.Fatalf("skein broker decommission 3 --throttle -1MB/s: %v", err)
	}
	// Running a broker still needs its flags.
	app := App()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err = app.RunContext(context.Background(), []string{"skein", "broker", "--data-dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `Required flags "node-id, controllers" not set`) {
		t.Fatalf("skein broker without --node-id: %v", err)
	}
	err = app.RunContext(context.Background(), []string{"skein", "broker", "stray"})
	if err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Fatalf("skein broker stray: %v", err)
	}
}

func TestProgressMath(t *testing.T) {
	if c, n := progressFromSizes(1000, []int64{0, 400}); c != 400 || n != 2000 {
		t.Errorf("sizes: %d/%d", c, n)
	}
	if c, n := progressFromSizes(1000, []int64{1500}); c != 1000 || n != 1000 {
		t.Errorf("an adding replica ahead of the leader counts as done: %d/%d", c, n)
	}
	if c, n := progressFromOffsets(100, 300, []int64{-1, 150, 400}); c != 0+50+200 || n != 600 {
		t.Errorf("offsets: %d/%d", c, n)
	}
	if got := eta(0, 50, 100, 10*time.Second); got != "10s" {
		t.Errorf("eta %s", got)
	}
	if got := eta(50, 50, 100, 10*time.Second); got != "-" {
		t.Errorf("eta without progress %s", got)
	}
	if percent(0, 0) != 100 || percent(1, 4) != 25 {
		t.Errorf("percent")
	}
	m := &meter{}
	moves := []moveProgress{
		{TP: reassign.TopicPartition{Topic: "t", Partition: 0}, Adding: []int32{4}, Copied: 10, ToCopy: 40},
		{TP: reassign.TopicPartition{Topic: "t", Partition: 1}, Adding: []int32{5}, Copied: 40, ToCopy: 40, Done: true},
	}
	got := progressLines(m, moves, 0, 5*time.Second)
	for _, want := range []string{"t-0: adding 4, 10 records of 40 records copied (25%)", "total: 50 records of 80 records copied (62%), 1/2 partitions done, ETA 3s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress lines lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "t-1") {
		t.Errorf("a done partition is still listed:\n%s", got)
	}
	if got := barDescription(m, moves, 1); got != "1/2 partitions done, slowest t-0 25% (30 records left), records" {
		t.Errorf("bar description %q", got)
	}
	if note := m.note(); !strings.Contains(note, "DescribeLogDirs (API 35)") {
		t.Errorf("records note %q", note)
	}
}

func TestVerifyRowsAndTables(t *testing.T) {
	tp := func(p int32) reassign.TopicPartition { return reassign.TopicPartition{Topic: "t", Partition: p} }
	target := reassign.Assignment{tp(0): {1, 2}, tp(1): {2, 3}, tp(2): {3, 1}}
	current := reassign.Assignment{tp(0): {1, 2}, tp(1): {2, 1}, tp(2): {1, 3}}
	ongoing := kadm.ListPartitionReassignmentsResponses{"t": {1: {Topic: "t", Partition: 1, Replicas: []int32{2, 1, 3},
		AddingReplicas: []int32{3}, RemovingReplicas: []int32{1}}}}
	rows, moving, wrong := verifyRows(target, current, ongoing)
	if moving != 1 || wrong != 1 || len(rows) != 3 {
		t.Fatalf("moving %d wrong %d rows %v", moving, wrong, rows)
	}
	for i, want := range []string{"t\t0\t1,2\t1,2\tcomplete", "t\t1\t2,3\t2,1\tin progress (adding 3, removing 1)", "t\t2\t3,1\t1,3\tNOT AS PLANNED"} {
		if rows[i] != want {
			t.Errorf("row %d %q, want %q", i, rows[i], want)
		}
	}
	var b bytes.Buffer
	if err := writePlanTable(&b, current, reassign.Assignment{tp(1): {2, 3}}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`TOPIC\s+PARTITION\s+CURRENT\s+TARGET\nt\s+1\s+2,1\s+2,3\n`).MatchString(b.String()) {
		t.Errorf("plan table:\n%s", b.String())
	}
	b.Reset()
	m := &meter{bytes: true}
	moves := []moveProgress{{TP: tp(1), Adding: []int32{3}, Copied: 1 << 20, ToCopy: 3 << 20}}
	if err := writeReassignmentList(&b, ongoing, moves, m); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`TOPIC\s+PARTITION\s+REPLICAS\s+ADDING\s+REMOVING\s+LEFT\nt\s+1\s+2,1,3\s+3\s+1\s+2\.0 MiB\n`).MatchString(b.String()) {
		t.Errorf("list table:\n%s", b.String())
	}
}

func TestParseIDsAndCheckBrokers(t *testing.T) {
	if ids, err := parseIDs(" 101, 102,104 ", "brokers"); err != nil || fmt.Sprint(ids) != "[101 102 104]" {
		t.Errorf("parseIDs: %v %v", ids, err)
	}
	for in, want := range map[string]string{
		"":            "--brokers is empty",
		"101,x":       `"x" is not a broker id`,
		"101,-2":      `"-2" is not a broker id`,
		"1,2,1":       "broker 1 is listed twice",
		"99999999999": "is not a broker id",
	} {
		if _, err := parseIDs(in, "brokers"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseIDs(%q): %v, want %q", in, err, want)
		}
	}
	all := map[int32]brokerState{1: {ID: 1}, 2: {ID: 2, Fenced: true}, 3: {ID: 3, Rack: "a"}}
	if err := checkBrokers(all, []int32{1, 3}, "--brokers"); err != nil {
		t.Error(err)
	}
	if err := checkBrokers(all, []int32{1, 9}, "--brokers"); err == nil ||
		!strings.Contains(err.Error(), "broker 9 (in --brokers) is not in the cluster, whose brokers are 1,2,3") {
		t.Errorf("unknown broker: %v", err)
	}
	if err := checkBrokers(all, []int32{2}, "--brokers"); err == nil || !strings.Contains(err.Error(), "broker 2 (in --brokers) is fenced") {
		t.Errorf("fenced broker: %v", err)
	}
	if live := liveBrokers(all); len(live) != 2 || live[0].ID != 1 || live[1].Rack != "a" {
		t.Errorf("live brokers %v", live)
	}
	for _, err := range []error{kerr.UnsupportedVersion, errors.New("broker is too old; the broker has already indicated it will not know how to handle the request")} {
		if got := reassignError("AlterPartitionReassignments", err); !errors.Is(got, errNoReassignment) ||
			!strings.Contains(got.Error(), "does not support partition reassignment (AlterPartitionReassignments)") {
			t.Errorf("reassignError(%v) = %v", err, got)
		}
	}
	if got := reassignError("X", kerr.NotController); errors.Is(got, errNoReassignment) {
		t.Errorf("NOT_CONTROLLER read as unsupported: %v", got)
	}
}

// TestReassignCommandsOnKfake runs the commands that send
// AlterPartitionReassignments and ListPartitionReassignments against
// franz-go's kfake, which accepts reassignments without moving anything
// and never lists one as ongoing.
func TestReassignCommandsOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bootstrap := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	current := assignmentOf(topics)
	dir := t.TempDir()
	write := func(name string, a reassign.Assignment) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(a.Plan().Format()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	same := write("same.json", current)

	stdout, stderr, err := runCLI(t, bootstrap, "reassign", "list")
	if err != nil || !regexp.MustCompile(`^TOPIC\s+PARTITION\s+REPLICAS\s+ADDING\s+REMOVING\s+LEFT\s*\n$`).MatchString(stdout) ||
		!strings.Contains(stderr, "No partition is being reassigned") {
		t.Fatalf("list: %v\n%q\n%s", err, stdout, stderr)
	}

	stdout, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", same, "--wait", "--interval", "10ms", "--no-progress")
	if err != nil {
		t.Fatalf("execute --wait: %v\n%s", err, stdout)
	}
	for _, want := range []string{"Current partition replica assignment", current.Plan().Format(), "Started the reassignment of 4 partition(s)", "Reassignment of 4 partition(s) complete."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("execute output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, err = runCLI(t, bootstrap, "reassign", "verify", "--plan", same)
	if err != nil || !strings.Contains(stdout, "Reassignment of 4 partition(s) is complete.") {
		t.Errorf("verify of the current assignment: %v\n%s", err, stdout)
	}

	// A plan kfake accepts but never carries out: verify says so.
	moved := reassign.Assignment{}
	for tp, r := range current {
		if len(r) < 2 {
			t.Fatalf("kfake gave %s one replica: %v", tp, r)
		}
		moved[tp] = r[:len(r)-1] // drop a replica: the throttle covers its partition
		break
	}
	other := write("other.json", moved)
	_, _, err = runCLI(t, bootstrap, "reassign", "verify", "--plan", other)
	if err == nil || !strings.Contains(err.Error(), "not on their planned replicas and not moving") {
		t.Errorf("verify of a plan not carried out: %v", err)
	}

	// --wait ends (kfake lists nothing as moving) but the partition is not
	// where the plan puts it: execute says so.
	if _, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", other, "--wait", "--interval", "10ms"); err == nil ||
		!strings.Contains(err.Error(), "ended with 1 of 1 partition(s) not on their planned replicas") {
		t.Errorf("execute --wait of a plan not carried out: %v", err)
	}

	// A throttled execute sets the KIP-73 configs; verify keeps them while
	// the plan is not carried out, cancel removes them.
	var tp reassign.TopicPartition
	for tp = range moved {
	}
	wantLeader := ""
	for i, id := range current[tp] {
		if i > 0 {
			wantLeader += ","
		}
		wantLeader += fmt.Sprintf("%d:%d", tp.Partition, id)
	}
	stdout, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", other, "--throttle", "1MiB/s")
	if err != nil || !strings.Contains(stdout, "Throttle: 1.0 MiB/s (1048576 bytes/s) on brokers "+formatNodes(slices.Sorted(slices.Values(current[tp])))) {
		t.Errorf("execute --throttle: %v\n%s", err, stdout)
	}
	adm := kadm.NewClient(cl)
	throttles := func() (topic map[string]string, brokers map[string]string) {
		t.Helper()
		topic, brokers = map[string]string{}, map[string]string{}
		rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if strings.Contains(c.Key, "throttled") && c.MaybeValue() != "" {
					topic[c.Key] = c.MaybeValue()
				}
			}
		}
		rcs, err = adm.DescribeBrokerConfigs(ctx, 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if strings.Contains(c.Key, "throttled") && c.MaybeValue() != "" {
					brokers[rc.Name+" "+c.Key] = c.MaybeValue()
				}
			}
		}
		return topic, brokers
	}
	topicCfg, brokerCfg := throttles()
	if topicCfg[reassign.LeaderReplicasConfig] != wantLeader || topicCfg[reassign.FollowerReplicasConfig] != "" {
		t.Errorf("topic throttle configs %v, want leader %q and no follower (nothing added)", topicCfg, wantLeader)
	}
	if len(brokerCfg) != 2*len(current[tp]) || brokerCfg["0 "+reassign.LeaderRateConfig] != "1048576" {
		t.Errorf("broker throttle configs %v", brokerCfg)
	}
	if _, _, err = runCLI(t, bootstrap, "reassign", "verify", "--plan", other); err == nil {
		t.Error("verify of a plan not carried out succeeded")
	}
	if topicCfg, _ = throttles(); len(topicCfg) == 0 {
		t.Error("verify removed the throttle of an incomplete reassignment")
	}
	stdout, _, err = runCLI(t, bootstrap, "reassign", "cancel", "--plan", other)
	if err != nil || !strings.Contains(stdout, "Throttle removed") {
		t.Errorf("cancel --plan: %v\n%s", err, stdout)
	}
	if topicCfg, brokerCfg = throttles(); len(topicCfg)+len(brokerCfg) != 0 {
		t.Errorf("throttles left after cancel: %v %v", topicCfg, brokerCfg)
	}

	stdout, _, err = runCLI(t, bootstrap, "reassign", "cancel", "--all")
	if err != nil || !strings.Contains(stdout, "nothing to cancel") {
		t.Errorf("cancel --all: %v\n%s", err, stdout)
	}
	stdout, _, err = runCLI(t, bootstrap, "reassign", "cancel", "--plan", same)
	if err != nil || strings.Count(stdout, "not moving") != 4 {
		t.Errorf("cancel --plan: %v\n%s", err, stdout)
	}
	if _, _, err = runCLI(t, bootstrap, "reassign", "cancel"); err == nil || !strings.Contains(err.Error(), "exactly one of --plan FILE and --all") {
		t.Errorf("cancel without a choice: %v", err)
	}

	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"version":1,"partitions":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", empty); err == nil || !strings.Contains(err.Error(), "lists no partitions") {
		t.Errorf("execute of an empty plan: %v", err)
	}
	unknown := write("unknown.json", reassign.Assignment{{Topic: "nope", Partition: 0}: {0}})
	if _, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", unknown); err == nil || !strings.Contains(err.Error(), "topic nope does not exist") {
		t.Errorf("execute of a plan with an unknown topic: %v", err)
	}
	badBroker := write("broker.json", reassign.Assignment{{Topic: "orders", Partition: 0}: {0, 7}})
	if _, _, err = runCLI(t, bootstrap, "reassign", "execute", "--plan", badBroker); err == nil ||
		!strings.Contains(err.Error(), "broker 7 (in the replicas of orders-0") {
		t.Errorf("execute of a plan with an unknown broker: %v", err)
	}
}

// TestMeterOnKfake measures a partition's progress both ways on kfake:
// bytes (DescribeLogDirs) and records (ListOffsets and the adding
// replica's high watermark). kfake keeps one copy of the data, so every
// broker reports the leader's log: an "adding" replica looks complete.
func TestMeterOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "m"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("m"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("v", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	m := newMeter(ctx, cl, adm, topics)
	if !m.bytes || m.unit() != "bytes" || m.note() != "" {
		t.Fatalf("kfake has DescribeLogDirs: meter counts %s", m.unit())
	}
	p := topics["m"].Partitions[0]
	adding := []int32{(p.Leader + 1) % 3}
	moves := []moveProgress{{TP: reassign.TopicPartition{Topic: "m", Partition: 0}, Adding: adding}}
	m.measure(ctx, moves)
	if moves[0].Err != nil || moves[0].ToCopy <= 0 || moves[0].Copied != moves[0].ToCopy {
		t.Errorf("bytes: %+v", moves[0])
	}
	m.bytes = false
	moves[0].Copied, moves[0].ToCopy = 0, 0
	m.measure(ctx, moves)
	if moves[0].Err != nil || moves[0].ToCopy != 10 {
		t.Errorf("records: %+v, want 10 to copy", moves[0])
	}
}

func TestExecuteHint(t *testing.T) {
	if got := executeHint("p.json", true); got != "Follow it with `skein reassign list`; `skein reassign verify --plan p.json` says when it is complete and removes the throttle." {
		t.Errorf("hint %q", got)
	}
	if got := executeHint("", false); !strings.Contains(got, "skein reassign list") || strings.Contains(got, "verify") {
		t.Errorf("hint without a plan file %q", got)
	}
}

// TestDecommissionAndRebalanceOnKfake runs `skein broker decommission` and
// `skein cluster rebalance` against kfake (which accepts reassignments
// without carrying them out).
func TestDecommissionAndRebalanceOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bootstrap := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "d"); err != nil {
		t.Fatal(err)
	}
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current := assignmentOf(topics)
	on0 := 0
	for _, r := range current {
		if slices.Contains(r, 0) {
			on0++
		}
	}

	stdout, _, err := runCLI(t, bootstrap, "broker", "decommission", "0", "--dry-run")
	if err != nil {
		t.Fatalf("decommission --dry-run: %v", err)
	}
	if on0 == 0 {
		if !strings.Contains(stdout, "holds no replica") {
			t.Fatalf("decommission of an empty broker:\n%s", stdout)
		}
		t.Skip("kfake put no replica on broker 0")
	}
	if got := strings.Count(stdout, "\n") - 2; got != on0 || !strings.Contains(stdout, fmt.Sprintf("%d replica(s) to copy", on0)) {
		t.Errorf("decommission --dry-run lists %d partitions, want %d:\n%s", got, on0, stdout)
	}

	if _, _, err = runCLI(t, bootstrap, "broker", "decommission", "0", "--throttle", "1MB/s"); err == nil ||
		!strings.Contains(err.Error(), "--throttle without --wait needs --plan-out FILE") {
		t.Errorf("decommission --throttle without --wait or --plan-out: %v", err)
	}
	planOut := filepath.Join(t.TempDir(), "decommission.json")
	stdout, _, err = runCLI(t, bootstrap, "broker", "decommission", "0", "--throttle", "1MB/s", "--plan-out", planOut)
	if err != nil || !strings.Contains(stdout, "Plan written to "+planOut) || !strings.Contains(stdout, "verify --plan "+planOut) {
		t.Fatalf("decommission --plan-out: %v\n%s", err, stdout)
	}
	data, err := os.ReadFile(planOut)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := reassign.ParsePlan(data)
	if err != nil {
		t.Fatalf("--plan-out wrote no valid plan: %v\n%s", err, data)
	}
	if len(plan.Partitions) != on0 {
		t.Errorf("plan has %d partitions, want %d", len(plan.Partitions), on0)
	}
	for _, pp := range plan.Partitions {
		if slices.Contains(pp.Replicas, 0) {
			t.Errorf("plan keeps %s on broker 0: %v", pp.TP(), pp.Replicas)
		}
	}
	// kfake did not move anything: cancel, which also removes the throttle.
	if stdout, _, err = runCLI(t, bootstrap, "reassign", "cancel", "--plan", planOut); err != nil || !strings.Contains(stdout, "Throttle removed") {
		t.Errorf("cancel: %v\n%s", err, stdout)
	}

	stdout, _, err = runCLI(t, bootstrap, "cluster", "rebalance", "--dry-run")
	if err != nil {
		t.Fatalf("rebalance --dry-run: %v", err)
	}
	after := current
	if !strings.Contains(stdout, "The cluster is balanced") {
		if !strings.Contains(stdout, "replica(s) to copy") {
			t.Fatalf("rebalance --dry-run:\n%s", stdout)
		}
		after = reassign.Merge(current, reassign.Assignment{})
		for _, line := range strings.Split(stdout, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) != 4 {
				break
			}
			var p int32
			fmt.Sscan(f[1], &p)
			ids, err := parseIDs(f[3], "target")
			if err != nil {
				t.Fatal(err)
			}
			after[reassign.TopicPartition{Topic: f[0], Partition: p}] = ids
		}
	}
	replicas, leaders := reassign.Loads(after)
	for _, counts := range []map[int32]int{replicas, leaders} {
		lo, hi := counts[0], counts[0]
		for id := range int32(3) {
			lo, hi = min(lo, counts[id]), max(hi, counts[id])
		}
		if hi-lo > 1 {
			t.Errorf("after rebalance: replicas %v leaders %v\n%s", replicas, leaders, stdout)
		}
	}
}

// TestWaiterBarOnKfake: kfake lists no reassignment, so the wait ends at
// the first poll, with every partition done and the bar finished.
func TestWaiterBarOnKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "w"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	current := assignmentOf(topics)
	var out bytes.Buffer
	wt := &waiter{adm: adm, meter: newMeter(ctx, cl, adm, topics), w: &out, bar: true, interval: 10 * time.Millisecond}
	if err := wt.wait(ctx, current, current); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"w-0: done, replicas", "w-1: done, replicas", "2/2 partitions done"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
