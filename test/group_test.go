package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// Helpers of the consumer-group tests (group_test.go,
// group_coordinator_test.go, kcat_group_test.go).

// groupBrokerArgs are the broker flags of the consumer-group tests: the
// first rebalance of a new group does not wait the default 3 s for more
// members, and __consumer_offsets is small.
var groupBrokerArgs = append([]string{
	"--group-initial-rebalance-delay", "100ms",
	"--offsets-topic-num-partitions", "6",
}, fastFenceBrokerArgs...)

// groupControllerArgs fence a killed broker quickly so leadership of its
// partitions (and of its __consumer_offsets partitions) moves on.
var groupControllerArgs = fastFenceControllerArgs

// printedRecord is one "partition offset value" line a group member
// printed (`skein consume --print-offsets`, `kcat -f '%p %o %s\n'`).
type printedRecord struct {
	Partition int32
	Offset    int64
	Value     string
}

// memberProc is a consumer-group member child process (`skein consume
// --group` or `kcat -G`). It collects the records it prints (stdout) and,
// from its stderr, the partitions it owns and the offsets it committed.
type memberProc struct {
	*harness.Child
	killed atomic.Bool // by the test: not an unexpected exit

	mu struct {
		sync.Mutex
		printed    []printedRecord
		commits    map[int32][]int64 // committed offsets in the order logged
		lastCommit time.Time         // when the last commit line was read
		owned      map[int32]bool    // partitions of the topic owned now
		badLines   []string
	}
}

func newMemberProc() *memberProc {
	p := &memberProc{}
	p.mu.commits = make(map[int32][]int64)
	p.mu.owned = make(map[int32]bool)
	return p
}

// printedLine records one stdout line.
func (p *memberProc) printedLine(line string) {
	f := strings.SplitN(line, " ", 3)
	var rec printedRecord
	part, err1 := strconv.ParseInt(f[0], 10, 32)
	var err2 error
	if len(f) == 3 {
		rec.Offset, err2 = strconv.ParseInt(f[1], 10, 64)
		rec.Value = f[2]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(f) != 3 || err1 != nil || err2 != nil {
		p.mu.badLines = append(p.mu.badLines, line)
		return
	}
	rec.Partition = int32(part)
	p.mu.printed = append(p.mu.printed, rec)
}

// setOwned records that partition part was assigned (owned) or revoked.
func (p *memberProc) setOwned(part int32, owned bool) {
	p.mu.Lock()
	p.mu.owned[part] = owned
	p.mu.Unlock()
}

// printed returns a copy of what the process printed so far.
func (p *memberProc) printed() []printedRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]printedRecord(nil), p.mu.printed...)
}

// commits returns the committed offsets the process logged, per partition,
// in order.
func (p *memberProc) commits() map[int32][]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int32][]int64, len(p.mu.commits))
	for k, v := range p.mu.commits {
		out[k] = append([]int64(nil), v...)
	}
	return out
}

// lastCommits returns the last committed offset the process logged per
// partition.
func (p *memberProc) lastCommits() map[int32]int64 {
	out := make(map[int32]int64)
	for part, offs := range p.commits() {
		out[part] = offs[len(offs)-1]
	}
	return out
}

// owned returns the partitions the process owns now (per its logs).
func (p *memberProc) owned() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int32
	for part, ok := range p.mu.owned {
		if ok {
			out = append(out, part)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// kill SIGKILLs the process and waits until its output was read.
func (p *memberProc) kill(t *testing.T) {
	p.killed.Store(true)
	p.Kill(t)
}

// failIfExited fails the test at once when a member exited that the test
// did not kill.
func failIfExited(t *testing.T, members ...*memberProc) {
	t.Helper()
	for _, m := range members {
		if m.Exited() && !m.killed.Load() {
			t.Fatalf("%s exited:\n%s", m.Name, strings.Join(m.Tail(), "\n"))
		}
	}
}

// stopMembers sends SIGTERM to every member, then fails the test unless
// each exits with status 0 within 30 s having printed only "partition
// offset value" lines.
func stopMembers(t *testing.T, members ...*memberProc) {
	t.Helper()
	for _, m := range members {
		if err := m.Signal(syscall.SIGTERM); err != nil {
			t.Error(err)
		}
	}
	for _, m := range members {
		if err := m.Wait(harness.DefaultStopTimeout); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
		m.mu.Lock()
		bad := m.mu.badLines
		m.mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("%s printed %d lines that are not 'partition offset value', first %q", m.Name, len(bad), bad[0])
		}
	}
}

// assignmentRE matches one topic of formatAssignment: topic[0,1,2].
var assignmentRE = regexp.MustCompile(`(\S+)\[([0-9,]*)\]`)

// startConsumer starts `skein consume TOPIC --group GROUP --print-offsets
// --log-json ...extra` against the cluster.
func startConsumer(t *testing.T, c *harness.Cluster, name, topic, group string, extra ...string) *memberProc {
	t.Helper()
	args := append([]string{"consume", topic, "--group", group, "--print-offsets", "--log-json",
		"--bootstrap-server", c.Bootstrap()}, extra...)
	p := newMemberProc()
	p.Child = harness.StartChild(t, name, harness.Binary(t), args, harness.ChildOutput{
		Stdout: p.printedLine,
		Stderr: func(line string) { p.skeinLogLine(line, topic) },
	})
	return p
}

// skeinLogLine records the commits and assignment changes of a --log-json
// line of `skein consume --group`.
func (p *memberProc) skeinLogLine(line, topic string) {
	var ev struct {
		Message    string `json:"@message"`
		Topic      string `json:"topic"`
		Partition  int32  `json:"partition"`
		Offset     int64  `json:"offset"`
		Partitions string `json:"partitions"`
	}
	if json.Unmarshal([]byte(line), &ev) != nil {
		return
	}
	switch ev.Message {
	case "committed offset":
		if ev.Topic == topic {
			p.mu.Lock()
			p.mu.commits[ev.Partition] = append(p.mu.commits[ev.Partition], ev.Offset)
			p.mu.lastCommit = time.Now()
			p.mu.Unlock()
		}
	case "partitions assigned", "partitions revoked", "partitions lost (no longer a member); uncommitted records will be redelivered":
		for _, m := range assignmentRE.FindAllStringSubmatch(ev.Partitions, -1) {
			if m[1] != topic {
				continue
			}
			for _, s := range strings.Split(m[2], ",") {
				if n, err := strconv.Atoi(s); err == nil {
					p.setOwned(int32(n), ev.Message == "partitions assigned")
				}
			}
		}
	}
}

// waitAssigned waits until every member owns partitions and together
// they own all partitions of the topic; it fails at once if one exited.
func waitAssigned(t *testing.T, timeout time.Duration, partitions int, members ...*memberProc) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		failIfExited(t, members...)
		union := make(map[int32]bool)
		var parts []string
		ok := true
		for _, m := range members {
			owned := m.owned()
			parts = append(parts, fmt.Sprintf("%s %v", m.Name, owned))
			ok = ok && len(owned) > 0
			for _, p := range owned {
				union[p] = true
			}
		}
		return ok && len(union) == partitions, "assignment: " + strings.Join(parts, ", ")
	})
}

// checkCommitsPrinted checks at-least-once on one member's own output:
// every offset c > 0 it committed for a partition follows a record (c-1)
// it printed: it never committed a record it had not printed.
func checkCommitsPrinted(t *testing.T, p *memberProc) {
	t.Helper()
	seen := make(map[int32]map[int64]bool)
	for _, r := range p.printed() {
		if seen[r.Partition] == nil {
			seen[r.Partition] = make(map[int64]bool)
		}
		seen[r.Partition][r.Offset] = true
	}
	for part, offs := range p.commits() {
		for _, c := range offs {
			if c > 0 && !seen[part][c-1] {
				t.Errorf("%s committed offset %d of partition %d without printing offset %d", p.Name, c, part, c-1)
			}
		}
	}
}

// checkPrintedValues fails the test for every record a member printed
// with another value than the one acknowledged at its partition and
// offset.
func checkPrintedValues(t *testing.T, acks []harness.Ack, members ...*memberProc) {
	t.Helper()
	want := make(map[[2]int64]string, len(acks))
	for _, a := range acks {
		want[[2]int64{int64(a.Partition), a.Offset}] = a.Value
	}
	for _, m := range members {
		for _, r := range m.printed() {
			if v, ok := want[[2]int64{int64(r.Partition), r.Offset}]; ok && v != r.Value {
				t.Errorf("%s printed %q at %d/%d, acknowledged there: %q", m.Name, r.Value, r.Partition, r.Offset, v)
			}
		}
	}
}

// unprinted returns the acked records no member printed (at most 5 for
// messages) and how many there are.
func unprinted(acks []harness.Ack, members ...*memberProc) (int, []string) {
	seen := make(map[[2]int64]bool)
	for _, p := range members {
		for _, r := range p.printed() {
			seen[[2]int64{int64(r.Partition), r.Offset}] = true
		}
	}
	var missing []string
	n := 0
	for _, a := range acks {
		if !seen[[2]int64{int64(a.Partition), a.Offset}] {
			n++
			if len(missing) < 5 {
				missing = append(missing, fmt.Sprintf("%d/%d", a.Partition, a.Offset))
			}
		}
	}
	return n, missing
}

// waitAllPrinted waits until the members together printed every
// acknowledged record; it fails at once if one of them exited unless the
// test killed it.
func waitAllPrinted(t *testing.T, timeout time.Duration, acks []harness.Ack, members ...*memberProc) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		failIfExited(t, members...)
		n, missing := unprinted(acks, members...)
		return n == 0, fmt.Sprintf("%d of %d acknowledged records not printed yet, e.g. %v", n, len(acks), missing)
	})
}

// waitFullISR waits until every partition of topic has a leader and all
// brokers in its ISR.
func waitFullISR(t *testing.T, c *harness.Cluster, topic string) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		adm := liveAdmin(t, c)
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics, err := adm.ListTopicsWithInternal(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d, ok := topics[topic]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false, fmt.Sprintf("%s not in metadata: %v", topic, d.Err)
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 || len(p.ISR) != len(c.Brokers) {
				return false, fmt.Sprintf("%s partition %d: leader %d ISR %v", topic, p.Partition, p.Leader, p.ISR)
			}
		}
		return true, ""
	})
}

// committedOffsets returns the group's committed offsets of topic.
func committedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	resps, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// endOffsets returns topic's end offsets.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// waitCommittedAtEnd waits until the group's committed offset of every
// partition of topic equals the partition's end offset (a partition
// without records may have none), and returns them.
func waitCommittedAtEnd(t *testing.T, adm *kadm.Client, group, topic string, partitions int, timeout time.Duration) map[int32]int64 {
	t.Helper()
	var got map[int32]int64
	harness.WaitFor(t, timeout, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := endOffsets(ctx, adm, topic)
		if err != nil {
			return false, "end offsets: " + err.Error()
		}
		committed, err := committedOffsets(ctx, adm, group, topic)
		if err != nil {
			return false, "committed offsets: " + err.Error()
		}
		if len(ends) != partitions {
			return false, fmt.Sprintf("end offsets of %d partitions, want %d", len(ends), partitions)
		}
		for p, e := range ends {
			if committed[p] != e {
				return false, fmt.Sprintf("committed %v, end offsets %v", committed, ends)
			}
		}
		got = committed
		return true, ""
	})
	return got
}

// liveBrokers are the listeners of the brokers that are running.
func liveBrokers(c *harness.Cluster) []string {
	var out []string
	for _, b := range c.Brokers {
		if b.Running() {
			out = append(out, b.Addr)
		}
	}
	return out
}

// liveAdmin returns an admin client seeded with the running brokers only,
// so that no request waits on a killed broker; close it after use.
func liveAdmin(t *testing.T, c *harness.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(liveBrokers(c)...), kgo.ClientID("group-test-admin"), kgo.RetryTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl)
}

// groupCoordinator waits until group's coordinator is a broker other than
// notOn (-1: any) and returns its node id.
func groupCoordinator(t *testing.T, c *harness.Cluster, group string, notOn int32) int32 {
	t.Helper()
	return waitCoordinator(t, c, group, func(id int32) bool { return id != notOn })
}

// waitCoordinator waits until the running brokers name a coordinator of
// group that accept takes, and returns it.
func waitCoordinator(t *testing.T, c *harness.Cluster, group string, accept func(int32) bool) int32 {
	t.Helper()
	var id int32
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		adm := liveAdmin(t, c)
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, ok := adm.FindGroupCoordinators(ctx, group)[group]
		switch {
		case !ok:
			return false, "no FindCoordinator answer"
		case r.Err != nil:
			return false, "FindCoordinator: " + r.Err.Error()
		case !accept(r.NodeID):
			return false, fmt.Sprintf("coordinator is %d", r.NodeID)
		}
		id = r.NodeID
		return true, ""
	})
	return id
}

// pacedProducer produces Value(stream, seq) records to topic at about
// perTick records every 10 ms until stop is called; stop waits for every
// outstanding record.
func pacedProducer(t *testing.T, cl *kgo.Client, topic, stream string, perTick int, ledger *harness.Ledger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := int64(0); ; {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for range perTick {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(harness.Value(stream, seq))}, ledger.Promise)
				seq++
			}
		}
	}()
	once := sync.OnceFunc(func() {
		close(quit)
		wg.Wait()
		fctx, fcancel := context.WithTimeout(context.Background(), time.Minute)
		defer fcancel()
		if err := cl.Flush(fctx); err != nil {
			t.Errorf("flush the paced producer: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); once() })
	return once
}

// checkRedeliveredAboveCommits checks that no member printed a record
// below an offset that was committed for it: of the members that printed
// a record, at most one (the last to print it) committed past it. A record
// printed again after a commit past it would have two.
func checkRedeliveredAboveCommits(t *testing.T, members ...*memberProc) {
	t.Helper()
	printers := make(map[[2]int64][]*memberProc)
	maxCommit := make(map[*memberProc]map[int32]int64)
	for _, m := range members {
		maxCommit[m] = make(map[int32]int64)
		for part, offs := range m.commits() {
			for _, o := range offs {
				maxCommit[m][part] = max(maxCommit[m][part], o)
			}
		}
		seen := make(map[[2]int64]bool)
		for _, r := range m.printed() {
			k := [2]int64{int64(r.Partition), r.Offset}
			if !seen[k] {
				seen[k] = true
				printers[k] = append(printers[k], m)
			}
		}
	}
	var bad []string
	for k, ms := range printers {
		var past []string
		for _, m := range ms {
			if maxCommit[m][int32(k[0])] > k[1] {
				past = append(past, m.Name)
			}
		}
		if len(past) > 1 {
			bad = append(bad, fmt.Sprintf("%d/%d (committed past by %v)", k[0], k[1], past))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("%d records printed again below a committed offset, e.g. %v", len(bad), bad[:min(len(bad), 5)])
	}
}

// offsetsText is offs for a message: "[3 4 5]", or "[3..1040] (1038)"
// when long.
func offsetsText(offs []int64) string {
	if len(offs) <= 12 {
		return fmt.Sprint(offs)
	}
	return fmt.Sprintf("[%d..%d] (%d)", offs[0], offs[len(offs)-1], len(offs))
}

// uncommittedWindow returns, per partition, the offsets p printed at or
// above its last logged commit of the partition (all of a partition
// without one).
func uncommittedWindow(p *memberProc) map[int32][]int64 {
	last := p.lastCommits()
	out := make(map[int32][]int64)
	for _, r := range p.printed() {
		if r.Offset >= last[r.Partition] {
			out[r.Partition] = append(out[r.Partition], r.Offset)
		}
	}
	return out
}

// TestGroupFailover: three `skein consume --group --commit-interval 1s`
// processes share a 6-partition RF=3 topic while records keep coming. A
// member is SIGKILLed with a window of printed records not yet committed
// (it commits only once a second), then the group's coordinator broker is
// SIGKILLed (commits stall until the coordinator has moved, the rebalance
// after the member's death happens on the new one), and the broker is
// restarted. The group must print every acknowledged record at least once,
// commit up to the end of every partition and commit only printed records;
// the survivors must print again exactly the killed member's uncommitted
// window (from its last commit to its last printed record, per partition)
// and nothing below a committed offset. Afterwards every broker in turn
// becomes the coordinator (by killing the others) and serves the same
// committed offsets, and a late member gets nothing below them.
func TestGroupFailover(t *testing.T) {
	const (
		topic      = "group-failover"
		group      = "failover-group"
		partitions = 6
		upFront    = 3000
		// commitEvery is the members' --commit-interval; the victim is
		// killed with at least minWindow records printed since its last
		// commit and at most killBefore after that commit was logged, so
		// that its next commit cannot be in flight.
		commitEvery = time.Second
		minWindow   = 20
		killBefore  = 700 * time.Millisecond
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3, ControllerArgs: groupControllerArgs, BrokerArgs: groupBrokerArgs})
	createTopic(t, c, topic, partitions, 3, nil)
	adm := c.Admin(t)
	producer := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, producer, topic, "upfront", upFront, &ledger)

	memberArgs := []string{"--from-beginning", "--session-timeout", "6s", "--commit-interval", commitEvery.String()}
	members := []*memberProc{
		startConsumer(t, c, "member-1", topic, group, memberArgs...),
		startConsumer(t, c, "member-2", topic, group, memberArgs...),
		startConsumer(t, c, "member-3", topic, group, memberArgs...),
	}
	waitAssigned(t, 45*time.Second, partitions, members...)
	stopProducing := pacedProducer(t, producer, topic, "live", 2, &ledger)

	// The victim dies with a real uncommitted window: records it printed
	// since its last commit, which its next commit (not due yet) would
	// have covered.
	victim := members[0]
	var ownedAtKill []int32
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		owned, last := victim.owned(), victim.lastCommits()
		for _, p := range owned {
			if _, ok := last[p]; !ok {
				return false, fmt.Sprintf("%s owns %v, committed %v", victim.Name, owned, last)
			}
		}
		window := 0
		for _, offs := range uncommittedWindow(victim) {
			window += len(offs)
		}
		victim.mu.Lock()
		since := time.Since(victim.mu.lastCommit)
		victim.mu.Unlock()
		if window < minWindow || since > killBefore {
			return false, fmt.Sprintf("%s: %d records printed past its last commits %v (logged %v ago)", victim.Name, window, last, since)
		}
		ownedAtKill = owned
		return true, ""
	})
	printedAtKill := make(map[string]int)
	for _, m := range members[1:] {
		printedAtKill[m.Name] = len(m.printed())
	}
	victim.kill(t)
	victimLast := victim.lastCommits()
	window := uncommittedWindow(victim)
	t.Logf("killed %s owning %v: printed %d records, last commits %v", victim.Name, ownedAtKill, len(victim.printed()), victimLast)
	for _, p := range ownedAtKill {
		t.Logf("partition %d: %s's uncommitted window %s", p, victim.Name, offsetsText(window[p]))
	}

	// The coordinator dies: commits stall until it has moved, while the
	// survivors keep printing.
	coord := groupCoordinator(t, c, group, -1)
	t.Logf("group coordinator: broker %d; killing it", coord)
	c.Broker(coord).MustKill()
	newCoord := groupCoordinator(t, c, group, coord)
	t.Logf("coordinator moved to broker %d; restarting broker %d", newCoord, coord)
	c.Broker(coord).Restart()
	c.WaitForBrokers(30 * time.Second)
	stopProducing()
	if failed, err := ledger.Failed(); failed > 0 {
		t.Logf("%d records were not acknowledged (first error %v); they are not checked", failed, err)
	}

	// The survivors take over and catch up.
	acks := ledger.Acks()
	survivors := members[1:]
	waitAllPrinted(t, 60*time.Second, acks, members...)
	committed := waitCommittedAtEnd(t, adm, group, topic, partitions, 60*time.Second)
	t.Logf("committed at the end: %v (%d acknowledged records)", committed, len(acks))

	checkPrintedValues(t, acks, members...)
	for _, m := range members {
		checkCommitsPrinted(t, m)
	}
	checkRedeliveredAboveCommits(t, members...)

	// Redelivery is exactly the victim's uncommitted window: the
	// survivors resume each of its partitions at its last commit and
	// print again every record it printed from there, nothing below.
	redelivered := 0
	for _, p := range ownedAtKill {
		victimPrinted := make(map[int64]bool)
		for _, r := range victim.printed() {
			if r.Partition == p {
				victimPrinted[r.Offset] = true
			}
		}
		resumed := int64(-1)
		var again []int64
		for _, m := range survivors {
			for _, r := range m.printed()[printedAtKill[m.Name]:] {
				if r.Partition != p {
					continue
				}
				if resumed < 0 || r.Offset < resumed {
					resumed = r.Offset
				}
				if victimPrinted[r.Offset] {
					again = append(again, r.Offset)
				}
			}
		}
		sort.Slice(again, func(i, j int) bool { return again[i] < again[j] })
		redelivered += len(again)
		if resumed != victimLast[p] {
			t.Errorf("partition %d: the survivors resumed at offset %d, %s had last committed %d", p, resumed, victim.Name, victimLast[p])
		}
		if fmt.Sprint(again) != fmt.Sprint(window[p]) {
			t.Errorf("partition %d: printed again %s, want exactly %s's uncommitted window %s", p, offsetsText(again), victim.Name, offsetsText(window[p]))
		}
	}
	if redelivered < minWindow {
		t.Errorf("%d records of %s printed again, want its whole window (>= %d)", redelivered, victim.Name, minWindow)
	}
	t.Logf("%d records of %s's uncommitted window printed again", redelivered, victim.Name)

	stopMembers(t, survivors...)

	// The committed offsets survive more coordinator failovers: every
	// broker that becomes the coordinator (leader of the group's
	// __consumer_offsets partition) serves the same offsets.
	before := committed
	coord = groupCoordinator(t, c, group, -1)
	checkCommitted := func(on int32) {
		t.Helper()
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			adm := liveAdmin(t, c)
			defer adm.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			after, err := committedOffsets(ctx, adm, group, topic)
			if err != nil {
				return false, err.Error()
			}
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("committed offsets served by coordinator %d: %v, before: %v", on, after, before)
			}
			return true, ""
		})
	}
	checkCommitted(coord)
	served := map[int32]bool{coord: true}
	waitFullISR(t, c, "__consumer_offsets")
	t.Logf("killing the coordinator: broker %d", coord)
	c.Broker(coord).MustKill()
	next := groupCoordinator(t, c, group, coord)
	checkCommitted(next)
	served[next] = true
	c.Broker(coord).Restart()
	c.WaitForBrokers(30 * time.Second)
	// A broker that has not been the coordinator yet becomes it once the
	// others are down.
	for _, b := range c.Brokers {
		if served[b.ID] {
			continue
		}
		waitFullISR(t, c, "__consumer_offsets")
		var others []*harness.Node
		for _, o := range c.Brokers {
			if o != b {
				others = append(others, o)
				o.MustKill()
			}
		}
		t.Logf("killed every broker but %d", b.ID)
		waitCoordinator(t, c, group, func(id int32) bool { return id == b.ID })
		checkCommitted(b.ID)
		served[b.ID] = true
		for _, o := range others {
			o.Restart()
		}
		c.WaitForBrokers(30 * time.Second)
	}
	t.Logf("brokers that served the committed offsets as coordinator: %v", served)

	// A late member starts at the committed offsets, not below.
	late := startConsumer(t, c, "member-late", topic, group, memberArgs...)
	harness.WaitFor(t, 45*time.Second, func() (bool, string) {
		failIfExited(t, late)
		owned := late.owned()
		return len(owned) == partitions, fmt.Sprintf("%s owns %v", late.Name, owned)
	})
	var lateLedger harness.Ledger
	produceNumbered(t, producer, topic, "late", 60, &lateLedger)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		n, missing := unprinted(lateLedger.Acks(), late)
		return n == 0, fmt.Sprintf("%s has not printed %d new records, e.g. %v", late.Name, n, missing)
	})
	for _, r := range late.printed() {
		if r.Offset < before[r.Partition] {
			t.Errorf("%s printed %d/%d below the committed offset %d", late.Name, r.Partition, r.Offset, before[r.Partition])
		}
	}
	if got := len(late.printed()); got != 60 {
		t.Errorf("%s printed %d records, want the 60 new ones", late.Name, got)
	}
	stopMembers(t, late)
	waitCommittedAtEnd(t, adm, group, topic, partitions, 30*time.Second)
}

// coopTracker is the shared view of the in-process members of
// TestGroupCooperativeSticky: who owns which partition, what each
// consumed, what was committed.
type coopTracker struct {
	t  *testing.T
	mu struct {
		sync.Mutex
		owner       map[int32]string
		committed   map[int32]int64
		consumed    map[[2]int64]int
		revocations []string // "member: revoked N of M" for rebalances
		problems    []string
		redelivered int
	}
}

func newCoopTracker(t *testing.T) *coopTracker {
	k := &coopTracker{t: t}
	k.mu.owner = make(map[int32]string)
	k.mu.committed = make(map[int32]int64)
	k.mu.consumed = make(map[[2]int64]int)
	return k
}

func (k *coopTracker) problem(format string, args ...any) {
	k.mu.problems = append(k.mu.problems, fmt.Sprintf(format, args...))
}

func (k *coopTracker) assigned(member string, ps []int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range ps {
		if o, ok := k.mu.owner[p]; ok && o != member {
			k.problem("partition %d assigned to %s while %s still owns it", p, member, o)
		}
		k.mu.owner[p] = member
	}
}

// revoked records a revocation; closing ones (a member leaving) are not
// rebalance revocations.
func (k *coopTracker) revoked(member string, ps []int32, closing bool) {
	if len(ps) == 0 {
		return // a cooperative rebalance that takes nothing from member
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	owned := 0
	for _, o := range k.mu.owner {
		if o == member {
			owned++
		}
	}
	if !closing {
		k.mu.revocations = append(k.mu.revocations, fmt.Sprintf("%s: revoked %d of %d", member, len(ps), owned))
		if len(ps) >= owned {
			k.problem("%s: a join revoked all its %d partitions (%v): not incremental", member, owned, ps)
		}
	}
	for _, p := range ps {
		if k.mu.owner[p] == member {
			delete(k.mu.owner, p)
		}
	}
}

func (k *coopTracker) consumed(member string, r *kgo.Record) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o := k.mu.owner[r.Partition]; o != member {
		k.problem("%s consumed %d/%d, owned by %q", member, r.Partition, r.Offset, o)
	}
	key := [2]int64{int64(r.Partition), r.Offset}
	k.mu.consumed[key]++
	if k.mu.consumed[key] > 1 {
		k.mu.redelivered++
		if c := k.mu.committed[r.Partition]; r.Offset < c {
			k.problem("%s consumed %d/%d again although offset %d was committed", member, r.Partition, r.Offset, c)
		}
	}
}

// commit commits what member consumed (everything it polled) and records
// the committed offsets.
func (k *coopTracker) commit(ctx context.Context, member string, cl *kgo.Client) {
	offsets := cl.UncommittedOffsets()
	if len(offsets) == 0 {
		return
	}
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			k.t.Logf("%s: commit failed: %v", member, err)
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 {
					if at, ok := offsets[tp.Topic][p.Partition]; ok && at.Offset > k.mu.committed[p.Partition] {
						k.mu.committed[p.Partition] = at.Offset
					}
				}
			}
		}
	})
}

func (k *coopTracker) ownedBy(member string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, o := range k.mu.owner {
		if o == member {
			n++
		}
	}
	return n
}

// coopMember is an in-process franz-go group member of the cooperative
// test: poll, consume, commit, then allow rebalancing.
type coopMember struct {
	name    string
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	closing atomic.Bool
}

func startCoopMember(t *testing.T, c *harness.Cluster, k *coopTracker, name, topic, group string) *coopMember {
	t.Helper()
	m := &coopMember{name: name, done: make(chan struct{})}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			k.assigned(name, a[topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			k.commit(ctx, name, cl)
			k.revoked(name, r[topic], m.closing.Load())
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			k.mu.Lock()
			k.problem("%s lost partitions %v", name, l[topic])
			k.mu.Unlock()
			k.revoked(name, l[topic], true)
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			fetches.EachRecord(func(r *kgo.Record) { k.consumed(name, r) })
			k.commit(ctx, name, cl)
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the poll loop and leaves the group (committing on revoke).
func (m *coopMember) stop() {
	if m.closing.Swap(true) {
		return
	}
	m.cancel()
	<-m.done
	m.cl.CloseAllowingRebalance()
}

// TestGroupCooperativeSticky: franz-go members with the cooperative-sticky
// balancer join a group one at a time (1 -> 2 -> 3) while records keep
// coming. Every join is an incremental rebalance: a member gives up only
// the partitions that move, never all of them, and no partition is owned
// by two members at once. Every record is consumed; a record is consumed
// again only above the committed offset of its partition (never a
// committed one), and the group's committed offsets reach the end.
func TestGroupCooperativeSticky(t *testing.T) {
	const (
		topic      = "group-coop"
		group      = "coop-group"
		partitions = 6
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 1, BrokerArgs: groupBrokerArgs})
	createTopic(t, c, topic, partitions, 1, nil)
	producer := c.Client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, producer, topic, "upfront", 3000, &ledger)
	stopProducing := pacedProducer(t, producer, topic, "live", 2, &ledger)

	k := newCoopTracker(t)
	var members []*coopMember
	for i := 1; i <= 3; i++ {
		k.mu.Lock()
		revocationsBefore := len(k.mu.revocations)
		k.mu.Unlock()
		members = append(members, startCoopMember(t, c, k, fmt.Sprintf("coop-%d", i), topic, group))
		// The join has settled: every member owns its share.
		harness.WaitFor(t, 45*time.Second, func() (bool, string) {
			var counts []string
			total := 0
			ok := true
			for _, m := range members {
				n := k.ownedBy(m.name)
				total += n
				counts = append(counts, fmt.Sprintf("%s %d", m.name, n))
				if n != partitions/len(members) {
					ok = false
				}
			}
			return ok && total == partitions, "owned: " + strings.Join(counts, ", ")
		})
		t.Logf("%d member(s) share the partitions", len(members))
		k.mu.Lock()
		if i > 1 && len(k.mu.revocations) == revocationsBefore {
			t.Errorf("member %d joined without a revocation: partitions moved without a rebalance?", i)
		}
		k.mu.Unlock()
	}
	stopProducing()
	acks := ledger.Acks()
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		k.mu.Lock()
		defer k.mu.Unlock()
		missing := 0
		for _, a := range acks {
			if k.mu.consumed[[2]int64{int64(a.Partition), a.Offset}] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d acknowledged records not consumed", missing, len(acks))
	})
	waitCommittedAtEnd(t, c.Admin(t), group, topic, partitions, 30*time.Second)
	for _, m := range members {
		m.stop()
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	t.Logf("revocations: %v; %d records consumed again", k.mu.revocations, k.mu.redelivered)
	for i, p := range k.mu.problems {
		if i == 20 {
			t.Errorf("... and %d more", len(k.mu.problems)-20)
			break
		}
		t.Error(p)
	}
}

// TestGroupCLI drives `skein consume --group` and `skein group` against
// real brokers: consume commits what it printed; list, describe, a dry and
// an executed reset, the refusal while a member is active, delete-offsets
// and delete show and do what kafka-consumer-groups.sh would.
func TestGroupCLI(t *testing.T) {
	const (
		topic      = "group-cli"
		group      = "cli-group"
		partitions = 3
		records    = 300
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 1, BrokerArgs: groupBrokerArgs})
	createTopic(t, c, topic, partitions, 1, nil)
	var ledger harness.Ledger
	produceNumbered(t, c.Client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner())), topic, "cli", records, &ledger)
	run := func(args ...string) harness.CLIResult {
		t.Helper()
		res := c.RunCLI(t, 60*time.Second, nil, args...)
		if res.Err != nil {
			t.Fatalf("skein %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
		}
		return res
	}
	match := func(what, out, re string) {
		t.Helper()
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("%s: no line matches %s:\n%s", what, re, out)
		}
	}

	res := run("consume", topic, "--group", group, "--from-beginning", "--max-messages", "120", "--print-offsets")
	if n := strings.Count(res.Stdout, "\n"); n != 120 {
		t.Fatalf("consume printed %d lines, want 120", n)
	}
	res = run("consume", topic, "--group", group, "--from-beginning", "--max-messages", strconv.Itoa(records-120), "--print-offsets")
	if n := strings.Count(res.Stdout, "\n"); n != records-120 {
		t.Fatalf("consume printed %d lines, want %d", n, records-120)
	}
	waitCommittedAtEnd(t, c.Admin(t), group, topic, partitions, 10*time.Second)

	match("group list", run("group", "list").Stdout, `(?m)^cli-group\s+Empty\s+consumer\s+0\s*$`)
	out := run("group", "describe", group).Stdout
	for p := range partitions {
		match("group describe", out, fmt.Sprintf(`(?m)^cli-group\s+group-cli\s+%d\s+100\s+100\s+0\s+-\s+-\s+-\s*$`, p))
	}
	match("group describe --state", run("group", "describe", group, "--state").Stdout, `(?m)^cli-group\s+\S+ \(101\)\s+\S+\s+Empty\s+0\s*$`)

	res = run("group", "reset-offsets", group, "--topic", topic+":1", "--to-offset", "40")
	match("dry run", res.Stdout, `(?m)^cli-group\s+group-cli\s+1\s+40\s*$`)
	run("group", "reset-offsets", group, "--all-topics", "--to-earliest", "--execute")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := committedOffsets(ctx, c.Admin(t), group, topic)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(map[int32]int64{0: 0, 1: 0, 2: 0}) {
		t.Fatalf("committed after --to-earliest --execute: %v, %v", got, err)
	}

	// An active member blocks resets and deletes.
	member := startConsumer(t, c, "cli-member", topic, group, "--from-beginning", "--commit-interval", "200ms")
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		return len(member.owned()) == partitions, fmt.Sprintf("member owns %v", member.owned())
	})
	res = c.RunCLI(t, 30*time.Second, nil, "group", "reset-offsets", group, "--all-topics", "--to-latest", "--execute")
	if res.Err == nil || !strings.Contains(res.Stderr, "inactive") {
		t.Errorf("reset-offsets of an active group: %v\n%s", res.Err, res.Stderr)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "group", "delete", group)
	if res.Err == nil || !strings.Contains(res.Stderr, "not empty") {
		t.Errorf("delete of an active group: %v\n%s", res.Err, res.Stderr)
	}
	match("group describe --members", run("group", "describe", group, "--members").Stdout,
		`(?m)^cli-group\s+\S+\s+-\s+\S+\s+skein-cli\s+3\s+group-cli\[0,1,2\]\s*$`)
	waitCommittedAtEnd(t, c.Admin(t), group, topic, partitions, 30*time.Second)
	stopMembers(t, member)

	out = run("group", "delete-offsets", group, "--topic", topic+":2").Stdout
	match("delete-offsets", out, `(?m)^group-cli\s+2\s+Successful\s*$`)
	got, err = committedOffsets(ctx, c.Admin(t), group, topic)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(map[int32]int64{0: 100, 1: 100}) {
		t.Errorf("committed after delete-offsets of partition 2: %v, %v", got, err)
	}
	match("group delete", run("group", "delete", group).Stdout, `Deletion of requested consumer groups \('cli-group'\) was successful\.`)
	if out := run("group", "list").Stdout; strings.Contains(out, group) {
		t.Errorf("deleted group still listed:\n%s", out)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "group", "describe", group)
	if res.Err == nil || !strings.Contains(res.Stdout, "Consumer group 'cli-group' does not exist.") {
		t.Errorf("describe of a deleted group: %v\n%s", res.Err, res.Stdout)
	}
}
