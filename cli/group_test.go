package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/test/harness"
)

const (
	groupTestTopic      = "orders"
	groupTestPartitions = 3
	groupTestPerPart    = 10
)

// groupTestCluster starts a one-broker kfake cluster with groupTestTopic
// holding groupTestPerPart records per partition ("p<P>-<i>" at offset
// i), record i timestamped base+i seconds.
func groupTestCluster(t *testing.T) (bootstrap string, adm *kadm.Client, base time.Time) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(groupTestPartitions, groupTestTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bootstrap = c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range groupTestPerPart {
		for p := range int32(groupTestPartitions) {
			r := &kgo.Record{Topic: groupTestTopic, Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i), Timestamp: base.Add(time.Duration(i) * time.Second)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return bootstrap, kadm.NewClient(cl), base
}

// runCLI runs the skein command line with bootstrap appended and returns
// stdout, stderr and the error.
func runCLI(t *testing.T, bootstrap string, args ...string) (string, string, error) {
	t.Helper()
	app := App()
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	app.ExitErrHandler = func(*cli.Context, error) {}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append(append([]string{"skein"}, args...), "--bootstrap-server", bootstrap)
	err := app.RunContext(ctx, interspersed(app, full))
	return stdout.String(), stderr.String(), err
}

// committed returns the group's committed offset per partition of the topic.
func committed(t *testing.T, adm *kadm.Client, group string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := make(map[int32]int64)
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Topic == groupTestTopic {
			out[o.Partition] = o.At
		}
	})
	return out
}

func wantCommitted(t *testing.T, adm *kadm.Client, group string, want map[int32]int64) {
	t.Helper()
	got := committed(t, adm, group)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("committed offsets of %s = %v, want %v", group, got, want)
	}
}

// parseConsumed parses --print-offsets lines into partition -> offsets,
// checking that each value matches its partition.
func parseConsumed(t *testing.T, out string) map[int32][]int64 {
	t.Helper()
	got := make(map[int32][]int64)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("line %q is not 'partition offset value'", line)
		}
		p, _ := strconv.Atoi(f[0])
		o, _ := strconv.ParseInt(f[1], 10, 64)
		if want := fmt.Sprintf("p%d-%d", p, o); f[2] != want {
			t.Fatalf("line %q: value %q, want %q", line, f[2], want)
		}
		got[int32(p)] = append(got[int32(p)], o)
	}
	return got
}

func TestGroupConsumeCommitsWhatItPrinted(t *testing.T) {
	bootstrap, adm, _ := groupTestCluster(t)
	const group = "g1"
	total := groupTestPartitions * groupTestPerPart

	// A first member prints 12 records and exits: exactly those are committed.
	out, stderr, err := runCLI(t, bootstrap, "consume", groupTestTopic, "--group", group, "--from-beginning",
		"--max-messages", "12", "--print-offsets", "--session-timeout", "6s", "--balancer", "range")
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, stderr)
	}
	first := parseConsumed(t, out)
	want := make(map[int32]int64)
	n := 0
	for p, offs := range first {
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: offsets %v not from 0 in order", p, offs)
			}
		}
		want[p] = int64(len(offs))
		n += len(offs)
	}
	if n != 12 {
		t.Fatalf("printed %d records, want 12:\n%s", n, out)
	}
	wantCommitted(t, adm, group, want)

	// The next member resumes at the committed offsets (partitions without
	// one at the start): nothing twice.
	out, stderr, err = runCLI(t, bootstrap, "consume", groupTestTopic, "--group", group, "--from-beginning",
		"--max-messages", strconv.Itoa(total-12), "--print-offsets")
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, stderr)
	}
	second := parseConsumed(t, out)
	for p := range int32(groupTestPartitions) {
		all := append(append([]int64(nil), first[p]...), second[p]...)
		if len(all) != groupTestPerPart {
			t.Errorf("partition %d: printed offsets %v + %v, want each of 0..%d once", p, first[p], second[p], groupTestPerPart-1)
			continue
		}
		for i, o := range all {
			if o != int64(i) {
				t.Errorf("partition %d: printed offsets %v + %v, want each of 0..%d once", p, first[p], second[p], groupTestPerPart-1)
				break
			}
		}
	}
	wantCommitted(t, adm, group, map[int32]int64{0: 10, 1: 10, 2: 10})
	if !strings.Contains(stderr, "Processed a total of 18 messages") {
		t.Errorf("stderr lacks the total:\n%s", stderr)
	}

	// describe: every partition at offset 10 of 10, lag 0, no members.
	out, _, err = runCLI(t, bootstrap, "group", "describe", group)
	if err != nil {
		t.Fatalf("group describe: %v", err)
	}
	if !strings.Contains(out, "Consumer group 'g1' has no active members.") {
		t.Errorf("describe lacks the no-members note:\n%s", out)
	}
	header := regexp.MustCompile(`GROUP\s+TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+CONSUMER-ID\s+HOST\s+CLIENT-ID`)
	if !header.MatchString(out) {
		t.Errorf("describe lacks the header:\n%s", out)
	}
	for p := range groupTestPartitions {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^g1\s+orders\s+%d\s+10\s+10\s+0\s+-\s+-\s+-\s*$`, p))
		if !row.MatchString(out) {
			t.Errorf("describe lacks the row of partition %d:\n%s", p, out)
		}
	}

	// list: the group is Empty, consumer protocol, 0 members.
	out, _, err = runCLI(t, bootstrap, "group", "list")
	if err != nil {
		t.Fatalf("group list: %v", err)
	}
	if !regexp.MustCompile(`(?m)^g1\s+Empty\s+consumer\s+0\s*$`).MatchString(out) {
		t.Errorf("list lacks g1 Empty consumer 0:\n%s", out)
	}
}

func TestGroupConsumeFlagErrors(t *testing.T) {
	bootstrap, _, _ := groupTestCluster(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"consume", groupTestTopic, "--group", "g", "--partition", "1"}, "do not go with --group"},
		{[]string{"consume", groupTestTopic, "--session-timeout", "6s"}, "--session-timeout needs --group"},
		{[]string{"consume", groupTestTopic, "--group", "g", "--balancer", "fair"}, "unknown --balancer"},
		{[]string{"consume", groupTestTopic, "--commit-interval", "1s"}, "--commit-interval needs --group"},
		{[]string{"consume", groupTestTopic, "--group", "g", "--commit-interval", "-1s"}, "--commit-interval -1s is negative"},
		{[]string{"group", "describe"}, "missing GROUP"},
		{[]string{"group", "reset-offsets", "g", "--topic", groupTestTopic}, "say where to reset to"},
		{[]string{"group", "reset-offsets", "g", "--to-earliest"}, "--all-topics"},
		{[]string{"group", "reset-offsets", "g", "--topic", groupTestTopic, "--to-earliest", "--to-latest"}, "only one of"},
		{[]string{"group", "reset-offsets", "g", "--topic", groupTestTopic + ":x", "--to-earliest"}, "is not a number"},
		{[]string{"group", "reset-offsets", "g", "--topic", groupTestTopic + ":7", "--to-earliest"}, "has no partition 7"},
		{[]string{"group", "reset-offsets", "g", "--topic", "nope", "--to-earliest"}, "topic nope does not exist"},
		{[]string{"group", "reset-offsets", "g", "--topic", groupTestTopic, "--to-datetime", "yesterday"}, "RFC 3339"},
	} {
		_, _, err := runCLI(t, bootstrap, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}

// activeMember joins group with an in-process consumer and waits until it
// owns every partition; it leaves at cleanup.
func activeMember(t *testing.T, bootstrap, group string) {
	t.Helper()
	assigned := make(chan struct{}, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ClientID("member-test"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(groupTestTopic),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		t.Fatal("the member was not assigned partitions within 30s")
	}
}

func TestGroupResetOffsets(t *testing.T) {
	bootstrap, adm, base := groupTestCluster(t)
	const group = "g2"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := make(kadm.Offsets)
	for p := range int32(groupTestPartitions) {
		start.Add(kadm.Offset{Topic: groupTestTopic, Partition: p, At: 7, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, group, start); err != nil {
		t.Fatal(err)
	}
	seven := map[int32]int64{0: 7, 1: 7, 2: 7}

	// Dry run: the plan is printed, nothing is committed.
	out, stderr, err := runCLI(t, bootstrap, "group", "reset-offsets", group, "--topic", groupTestTopic, "--to-earliest")
	if err != nil {
		t.Fatalf("reset-offsets: %v", err)
	}
	if !strings.Contains(stderr, "Dry run") {
		t.Errorf("dry run not announced on stderr: %q", stderr)
	}
	for p := range groupTestPartitions {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^g2\s+orders\s+%d\s+0\s*$`, p)).MatchString(out) {
			t.Errorf("plan lacks partition %d at 0:\n%s", p, out)
		}
	}
	wantCommitted(t, adm, group, seven)

	for _, tt := range []struct {
		name string
		args []string
		want map[int32]int64
	}{
		{"earliest", []string{"--topic", groupTestTopic, "--to-earliest"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
		{"latest one partition", []string{"--topic", groupTestTopic + ":1", "--to-latest"}, map[int32]int64{0: 0, 1: 10, 2: 0}},
		{"offset clamped", []string{"--topic", groupTestTopic + ":0,2", "--to-offset", "99"}, map[int32]int64{0: 10, 1: 10, 2: 10}},
		{"offset", []string{"--all-topics", "--to-offset", "4"}, map[int32]int64{0: 4, 1: 4, 2: 4}},
		{"datetime", []string{"--topic", groupTestTopic, "--to-datetime", base.Add(3 * time.Second).Format(time.RFC3339)}, map[int32]int64{0: 3, 1: 3, 2: 3}},
		{"datetime after the end", []string{"--topic", groupTestTopic + ":2", "--to-datetime", base.Add(time.Hour).Format(time.RFC3339)}, map[int32]int64{0: 3, 1: 3, 2: 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"group", "reset-offsets", group, "--execute"}, tt.args...)
			if _, stderr, err := runCLI(t, bootstrap, args...); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stderr)
			}
			wantCommitted(t, adm, group, tt.want)
		})
	}

	// A group with an active member is refused, as Kafka does.
	activeMember(t, bootstrap, group)
	before := committed(t, adm, group)
	_, _, err = runCLI(t, bootstrap, "group", "reset-offsets", group, "--topic", groupTestTopic, "--to-earliest", "--execute")
	if err == nil || !strings.Contains(err.Error(), "inactive") || !strings.Contains(err.Error(), "Stable") {
		t.Errorf("reset-offsets of an active group: err = %v, want a refusal naming the state", err)
	}
	wantCommitted(t, adm, group, before)
}

func TestGroupDescribeMembersStateAndDelete(t *testing.T) {
	bootstrap, adm, _ := groupTestCluster(t)
	const group = "g3"
	activeMember(t, bootstrap, group)

	out, _, err := runCLI(t, bootstrap, "group", "describe", group, "--members")
	if err != nil {
		t.Fatalf("describe --members: %v", err)
	}
	if !regexp.MustCompile(`(?m)^g3\s+\S+\s+-\s+\S+\s+member-test\s+3\s+orders\[0,1,2\]\s*$`).MatchString(out) {
		t.Errorf("describe --members:\n%s", out)
	}
	out, _, err = runCLI(t, bootstrap, "group", "describe", group, "--state")
	if err != nil {
		t.Fatalf("describe --state: %v", err)
	}
	if !regexp.MustCompile(`(?m)^g3\s+\S+:\d+ \(\d+\)\s+cooperative-sticky\s+Stable\s+1\s*$`).MatchString(out) {
		t.Errorf("describe --state:\n%s", out)
	}
	out, _, err = runCLI(t, bootstrap, "group", "describe", group)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if !regexp.MustCompile(`(?m)^g3\s+orders\s+0\s+\S+\s+10\s+\S+\s+\S+\s+\S+\s+member-test\s*$`).MatchString(out) {
		t.Errorf("describe of an active group lacks partition 0 owned by member-test:\n%s", out)
	}

	// An active group cannot be deleted.
	if _, _, err := runCLI(t, bootstrap, "group", "delete", group); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("delete of an active group: err = %v, want 'not empty'", err)
	}

	// An empty group with offsets can: delete-offsets first, then delete.
	const idle = "g4"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs := make(kadm.Offsets)
	for p := range int32(groupTestPartitions) {
		offs.Add(kadm.Offset{Topic: groupTestTopic, Partition: p, At: 5, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, idle, offs); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, bootstrap, "group", "delete-offsets", idle, "--topic", groupTestTopic+":1")
	if err != nil {
		t.Fatalf("delete-offsets: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^orders\s+1\s+Successful\s*$`).MatchString(out) {
		t.Errorf("delete-offsets output:\n%s", out)
	}
	wantCommitted(t, adm, idle, map[int32]int64{0: 5, 2: 5})

	out, _, err = runCLI(t, bootstrap, "group", "delete", idle)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if !strings.Contains(out, "Deletion of requested consumer groups ('g4') was successful.") {
		t.Errorf("delete output: %q", out)
	}
	out, _, _ = runCLI(t, bootstrap, "group", "list")
	if strings.Contains(out, idle) {
		t.Errorf("deleted group still listed:\n%s", out)
	}
	out, _, err = runCLI(t, bootstrap, "group", "describe", idle)
	if err == nil || !strings.Contains(out, "Consumer group 'g4' does not exist.") {
		t.Errorf("describe of a deleted group: err %v, out:\n%s", err, out)
	}
	if _, _, err := runCLI(t, bootstrap, "group", "delete", idle); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("delete of a missing group: err = %v", err)
	}
}

func TestGroupConsumeFailsOnInvalidSessionTimeout(t *testing.T) {
	bootstrap, _, _ := groupTestCluster(t)
	// kfake, as Kafka, rejects sessions below group.min.session.timeout.ms (6s).
	_, stderr, err := runCLI(t, bootstrap, "consume", groupTestTopic, "--group", "g5", "--session-timeout", "1s", "--timeout", "20s")
	if err == nil || !strings.Contains(err.Error(), "INVALID_SESSION_TIMEOUT") {
		t.Fatalf("err = %v, want INVALID_SESSION_TIMEOUT\n%s", err, stderr)
	}
}

func TestGroupConsumeStaticMember(t *testing.T) {
	bootstrap, adm, _ := groupTestCluster(t)
	const group = "g6"
	done := make(chan error, 1)
	go func() {
		// Exits once idle for 8s after the 30 records: a CI run once
		// saw a loaded machine's first fetch of two of the partitions take
		// more than 3s (committed map[1:10]).
		_, _, err := runCLI(t, bootstrap, "consume", groupTestTopic, "--group", group, "--from-beginning",
			"--group-instance-id", "static-1", "--balancer", "roundrobin", "--timeout", "8s")
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil && len(d[group].Members) == 1 && d[group].State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the static member did not join within 20s: %v %+v", err, d[group])
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	out, _, err := runCLI(t, bootstrap, "group", "describe", group, "--members")
	if err != nil {
		t.Fatalf("describe --members: %v", err)
	}
	if !regexp.MustCompile(`(?m)^g6\s+\S+\s+static-1\s+\S+\s+skein-cli\s+3\s+orders\[0,1,2\]\s*$`).MatchString(out) {
		t.Errorf("describe --members:\n%s", out)
	}
	out, _, _ = runCLI(t, bootstrap, "group", "describe", group, "--state")
	if !regexp.MustCompile(`(?m)^g6\s+\S+ \(\d+\)\s+roundrobin\s+Stable\s+1\s*$`).MatchString(out) {
		t.Errorf("describe --state:\n%s", out)
	}
	if err := <-done; err != nil {
		t.Fatalf("consume: %v", err)
	}
	wantCommitted(t, adm, group, map[int32]int64{0: 10, 1: 10, 2: 10})
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCLI runs the skein command line with bootstrap appended in the
// background until stop is called; stop returns its error.
func startCLI(t *testing.T, bootstrap string, stdout io.Writer, args ...string) (stop func() error) {
	t.Helper()
	app := App()
	app.Writer, app.ErrWriter = stdout, io.Discard
	app.ExitErrHandler = func(*cli.Context, error) {}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	full := append(append([]string{"skein"}, args...), "--bootstrap-server", bootstrap)
	go func() { done <- app.RunContext(ctx, interspersed(app, full)) }()
	stopped := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stopped() })
	return stopped
}

// TestGroupConsumeCommitInterval: with --commit-interval a member commits
// the printed records when the interval is due, also while no more records
// come, and not before; on exit it commits the rest.
func TestGroupConsumeCommitInterval(t *testing.T) {
	bootstrap, adm, _ := groupTestCluster(t)
	total := groupTestPartitions * groupTestPerPart
	all := map[int32]int64{0: 10, 1: 10, 2: 10}
	printedAll := func(out *lockedBuffer) func() (bool, string) {
		return func() (bool, string) {
			n := strings.Count(out.String(), "\n")
			return n == total, fmt.Sprintf("printed %d of %d records", n, total)
		}
	}

	// A long interval: everything printed, nothing committed until exit.
	var out lockedBuffer
	stop := startCLI(t, bootstrap, &out, "consume", groupTestTopic, "--group", "g7", "--from-beginning",
		"--print-offsets", "--commit-interval", "1h")
	harness.WaitFor(t, 30*time.Second, printedAll(&out))
	wantCommitted(t, adm, "g7", map[int32]int64{})
	if err := stop(); err != nil {
		t.Fatalf("consume: %v", err)
	}
	parseConsumed(t, out.String())
	wantCommitted(t, adm, "g7", all)

	// A short interval: the printed records are committed while the
	// member runs and waits for more.
	var out2 lockedBuffer
	stop = startCLI(t, bootstrap, &out2, "consume", groupTestTopic, "--group", "g8", "--from-beginning",
		"--print-offsets", "--commit-interval", "300ms")
	harness.WaitFor(t, 30*time.Second, printedAll(&out2))
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		got := committed(t, adm, "g8")
		return fmt.Sprint(got) == fmt.Sprint(all), fmt.Sprintf("committed %v while running, want %v", got, all)
	})
	if err := stop(); err != nil {
		t.Fatalf("consume: %v", err)
	}
}

// gateWriter blocks every Write until release; entered is closed at the
// first Write.
type gateWriter struct {
	entered, open chan struct{}
	enter, rel    sync.Once
	buf           lockedBuffer
}

func (w *gateWriter) release() { w.rel.Do(func() { close(w.open) }) }

func (w *gateWriter) Write(p []byte) (int, error) {
	w.enter.Do(func() { close(w.entered) })
	<-w.open
	return w.buf.Write(p)
}

// TestGroupConsumeCommitsOnlyWritten: while stdout does not take the
// records (a slow reader of a pipe), nothing of them is committed, with
// commits after every batch or on an interval that is due; once they are
// written, they are.
func TestGroupConsumeCommitsOnlyWritten(t *testing.T) {
	bootstrap, adm, _ := groupTestCluster(t)
	total := groupTestPartitions * groupTestPerPart
	for i, every := range []string{"0", "10ms"} {
		group := fmt.Sprintf("g-written-%d", i)
		w := &gateWriter{entered: make(chan struct{}), open: make(chan struct{})}
		stop := startCLI(t, bootstrap, w, "consume", groupTestTopic, "--group", group, "--from-beginning",
			"--print-offsets", "--commit-interval", every, "--max-messages", strconv.Itoa(total))
		t.Cleanup(w.release) // before stop: the command cannot end while blocked
		select {
		case <-w.entered:
		case <-time.After(30 * time.Second):
			t.Fatalf("--commit-interval %s: nothing written within 30s", every)
		}
		// The member is blocked writing its first records: none of them
		// may be committed.
		wantCommitted(t, adm, group, map[int32]int64{})
		w.release()
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			n := strings.Count(w.buf.String(), "\n")
			return n == total, fmt.Sprintf("--commit-interval %s: printed %d of %d records", every, n, total)
		})
		if err := stop(); err != nil {
			t.Fatalf("--commit-interval %s: consume: %v", every, err)
		}
		wantCommitted(t, adm, group, map[int32]int64{0: 10, 1: 10, 2: 10})
	}
}
