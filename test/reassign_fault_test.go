package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/internal/reassign"
	"github.com/skein-io/skein/test/harness"
)

// Reassignment under faults and through the CLI planners, on 4 brokers
// (101-104): the partitions' leader SIGKILLed mid-move, __consumer_offsets
// moved while a group commits, and `skein cluster rebalance` / `skein
// broker decommission` carried out with --wait.

// TestReassignLeaderKill: two partitions move from 101-103 to 102-104
// under an idempotent acks=all load; the move is held open (the adding
// broker 104 paused) and the partitions' leader is SIGKILLed; other
// replicas take over while the move waits, 104 resumes, the killed broker
// restarts, and the move completes. Every acknowledged record is at its
// offset, the target replicas are byte-identical and 101 holds no replica
// of the topic any more.
//   - removing-leader: the leader 101 is the replica being removed; the
//     move completes while it is down, and it deletes its stray replicas
//     when it restarts.
//   - staying-leader: the leader 102 is in the target; the move cannot
//     complete (102 is out of the ISR) until 102 is back and caught up.
func TestReassignLeaderKill(t *testing.T) {
	t.Run("removing-leader", func(t *testing.T) {
		testReassignLeaderKill(t, [][]int32{{101, 102, 103}, {101, 103, 102}},
			map[int32][]int32{0: {102, 103, 104}, 1: {103, 104, 102}})
	})
	t.Run("staying-leader", func(t *testing.T) {
		testReassignLeaderKill(t, [][]int32{{102, 101, 103}, {102, 103, 101}},
			map[int32][]int32{0: {102, 103, 104}, 1: {102, 104, 103}})
	})
}

// testReassignLeaderKill moves the partitions of assignment, all led by
// their first replica, to target (from 101-103 to 102-104) and kills
// their leader mid-move.
func testReassignLeaderKill(t *testing.T, assignment [][]int32, target map[int32][]int32) {
	const topic = "leaderkill"
	partitions := len(assignment)
	// The killed leader fenced within 1.5 s.
	c := harness.StartCluster(t, harness.Options{Brokers: 4, ControllerArgs: fastFenceControllerArgs, BrokerArgs: fastFenceBrokerArgs})
	createAssignedConfigs(t, c, topic, assignment, map[string]string{"min.insync.replicas": "2"})
	load := startMoveLoad(t, c, topic)
	load.more(3_000)

	b104 := c.Broker(104)
	resume104 := pauseUntilResumed(t, b104)
	alterAssignments(t, c.Broker(103), topic, target)
	// The move is open: the partitions on the union (target, then 101).
	union := map[int32][]int32{}
	for p, r := range target {
		union[p] = append(slices.Clone(r), 101)
	}
	d := waitAssignment(t, c, topic, union, 30*time.Second, 104)
	leader := assignment[0][0]
	for p, pd := range d.Partitions {
		if pd.Leader != leader {
			t.Fatalf("partition %d led by %d, want %d", p, pd.Leader, leader)
		}
	}
	load.more(1_000)
	victim := c.Broker(leader)
	victim.MustKill()
	t.Logf("SIGKILLed the leader %d of both moving partitions; %d acknowledgements so far", leader, load.ledger.Acked())
	restarted := false
	defer func() {
		if !restarted {
			victim.Restart()
		}
	}()
	// Other replicas take over while the move still waits for 104.
	killed := time.Now()
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		d, err := topicVia(c.Broker(103), topic)
		if err != nil {
			return false, err.Error()
		}
		for p, pd := range d.Partitions {
			if pd.Leader == leader || pd.Leader < 0 || len(pd.Replicas) != 4 {
				return false, fmt.Sprintf("partition %d: leader %d replicas %v", p, pd.Leader, pd.Replicas)
			}
		}
		return true, ""
	})
	t.Logf("new leaders elected %v after the kill, the move still open", time.Since(killed).Round(time.Millisecond))

	// (With 104 paused, the producer may wait on a metadata request to it:
	// the load is checked once 104 is back.)
	resume104()
	load.more(1_000)
	if slices.Contains(target[0], leader) {
		// 104 catches up, but the move waits for the killed target replica.
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			d, err := topicVia(c.Broker(103), topic)
			if err != nil {
				return false, err.Error()
			}
			for p, pd := range d.Partitions {
				if !slices.Contains(pd.ISR, 104) {
					return false, fmt.Sprintf("partition %d: ISR %v without 104", p, pd.ISR)
				}
			}
			return true, ""
		})
		moves, err := ongoingMoves(c.Broker(103))
		if err != nil {
			t.Fatal(err)
		}
		if len(moves) != partitions {
			t.Errorf("%d partitions moving with the target replica %d down, want %d: %v", len(moves), leader, partitions, moves)
		}
		load.more(1_000)
		victim.Restart()
		restarted = true
		waitNoMoves(t, c.Broker(103), time.Minute)
		t.Logf("move completed after %d restarted; %d acknowledgements so far", leader, load.ledger.Acked())
	} else {
		waitNoMoves(t, c.Broker(103), time.Minute)
		t.Logf("move completed with %d down; %d acknowledgements so far", leader, load.ledger.Acked())
		victim.Restart()
		restarted = true
	}
	load.more(1_000)
	load.finish()

	checkMovedOff101(t, c, topic, partitions, target, load)
}

// TestReassignConsumerOffsets moves every partition of __consumer_offsets
// (3, with 3 replicas) off the broker coordinating a group while the
// group's member consumes and commits (explicit CommitRecords) and a
// producer writes. The group's partition is held on the union (the broker
// it is copied to paused) while 5 more commits succeed; once the move
// completes the group's coordinator has moved, the member finds the new
// one and its commits go on succeeding, the committed offsets read back
// afterwards are at least those committed before the move, and the old
// coordinator holds no __consumer_offsets directory any more.
func TestReassignConsumerOffsets(t *testing.T) {
	const topic, groupID, offsetsPartitions = "committed", "movers", 3
	c := harness.StartCluster(t, harness.Options{
		Brokers: 4,
		// No 3 s wait for more members before the first rebalance; a
		// small __consumer_offsets (3 replicas, the default).
		BrokerArgs: []string{"--group-initial-rebalance-delay", "100ms", "--offsets-topic-num-partitions", fmt.Sprint(offsetsPartitions), "--heartbeat-interval", "500ms"},
	})
	// FindCoordinator creates __consumer_offsets; the broker the next
	// Metadata request goes to may learn of it a moment later.
	coord := groupCoordinator(t, c, groupID, -1)
	waitForLeaders(t, c, "__consumer_offsets", offsetsPartitions)
	current := clusterAssignment(t, c, "__consumer_offsets")
	if len(current) != offsetsPartitions {
		t.Fatalf("__consumer_offsets has %d partitions, want %d: %v", len(current), offsetsPartitions, current)
	}
	// Every partition onto the three other brokers, leaders spread.
	var others []int32
	for _, b := range c.Brokers {
		if b.ID != coord {
			others = append(others, b.ID)
		}
	}
	target := map[int32][]int32{}
	for tp := range current {
		i := int(tp.Partition) % len(others)
		target[tp.Partition] = append(slices.Clone(others[i:]), others[:i]...)
	}
	// The move of the group's partition is held open by pausing the
	// broker it is copied to; the topic the member reads is kept off that
	// broker, so that the load and the commits go on meanwhile.
	gp := group.PartitionFor(groupID, offsetsPartitions)
	var adding *harness.Node
	for _, id := range target[gp] {
		if !slices.Contains(current[reassign.TopicPartition{Topic: "__consumer_offsets", Partition: gp}], id) {
			adding = c.Broker(id)
		}
	}
	if adding == nil {
		t.Fatalf("__consumer_offsets-%d: nothing to copy from %v to %v", gp, current, target)
	}
	var rest []int32
	for _, b := range c.Brokers {
		if b.ID != adding.ID {
			rest = append(rest, b.ID)
		}
	}
	createAssignedConfigs(t, c, topic, [][]int32{rest, {rest[1], rest[2], rest[0]}}, map[string]string{"min.insync.replicas": "2"})
	load := startMoveLoad(t, c, topic)
	load.more(1_000)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	member := c.Client(t,
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
	)
	var (
		mu         sync.Mutex
		commits    int // successful CommitRecords calls
		commitErrs []error
	)
	pollCtx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pollCtx.Err() == nil {
			recs := member.PollRecords(pollCtx, 500).Records()
			if len(recs) == 0 {
				continue
			}
			err := member.CommitRecords(pollCtx, recs...)
			if pollCtx.Err() != nil {
				return
			}
			mu.Lock()
			if err != nil {
				commitErrs = append(commitErrs, err)
			} else {
				commits++
			}
			mu.Unlock()
		}
	}()
	defer func() {
		stopPolling()
		wg.Wait()
	}()
	committedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return commits
	}
	waitCommits := func(n int, timeout time.Duration) {
		t.Helper()
		want := committedCount() + n
		harness.WaitFor(t, timeout, func() (bool, string) {
			got := committedCount()
			return got >= want, fmt.Sprintf("%d successful commits, want %d", got, want)
		})
	}
	waitCommits(5, 30*time.Second)

	adm := c.Admin(t)
	fetchCommitted := func() map[int32]int64 {
		t.Helper()
		offs, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		out := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				out[o.Partition] = o.At
			}
		})
		return out
	}
	before := fetchCommitted()
	if got := groupCoordinator(t, c, groupID, -1); got != coord {
		t.Fatalf("the coordinator of %s moved from %d to %d before the reassignment", groupID, coord, got)
	}
	resumeAdding := pauseUntilResumed(t, adding)
	t.Logf("moving __consumer_offsets %v off the coordinator %d of %s (partition %d) to %v, %d paused; committed so far %v",
		current, coord, groupID, gp, target, adding.ID, before)
	start := time.Now()
	alterAssignments(t, c.Broker(coord), "__consumer_offsets", target)
	waitCommits(5, 30*time.Second) // commits go on while it moves
	moves, err := ongoingMoves(c.Broker(coord))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := moves[fmt.Sprintf("__consumer_offsets-%d", gp)]; !ok {
		t.Fatalf("__consumer_offsets-%d is not moving while %d is paused: %v", gp, adding.ID, moves)
	}
	resumeAdding()
	waitNoMoves(t, c.Broker(coord), time.Minute)
	t.Logf("__consumer_offsets moved in %v; %d successful commits so far", time.Since(start).Round(time.Millisecond), committedCount())
	waitAssignment(t, c, "__consumer_offsets", target, 30*time.Second)
	newCoord := groupCoordinator(t, c, groupID, coord)
	// The member carries on committing, through the new coordinator.
	waitCommits(5, 30*time.Second)
	t.Logf("%s is coordinated by %d now; %d successful commits", groupID, newCoord, committedCount())

	stopPolling()
	wg.Wait()
	after := fetchCommitted()
	for p, off := range before {
		if after[p] < off {
			t.Errorf("partition %d: committed offset %d after the move, %d before", p, after[p], off)
		}
	}
	if len(after) == 0 {
		t.Errorf("no committed offsets after the move")
	}
	mu.Lock()
	t.Logf("committed offsets before %v, after %v; commit errors (retried by the next commit): %v", before, after, commitErrs)
	mu.Unlock()
	waitDirsGone(t, c.Broker(coord), "__consumer_offsets", offsetsPartitions, 30*time.Second)
	load.finish()
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), load.ledger.Acks())
	report.Check(t)
}

// TestReassignCLIDecommission runs the planners for real on 4 brokers
// (TestCLIReassign runs rebalance on 3 and decommission only as a dry
// run): with every replica on 101-103 and 104 empty, `skein cluster
// rebalance --wait` leaves replica counts within one of each other over
// the four; then `skein broker decommission 101 --wait` leaves nothing on
// 101, `skein reassign list` is empty and every record is still there.
func TestReassignCLIDecommission(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	topics := map[string][][]int32{
		"spread-a": {{101, 102}, {102, 103}, {103, 101}, {101, 103}},
		"spread-b": {{101, 102, 103}, {102, 103, 101}},
	}
	ledgers := map[string]*harness.Ledger{}
	for topic, assignment := range topics {
		createAssignedConfigs(t, c, topic, assignment, nil)
		ledgers[topic] = &harness.Ledger{}
		produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic(topic)), topic, topic, 500, ledgers[topic])
	}
	mustRun := func(args ...string) harness.CLIResult {
		t.Helper()
		res := c.RunCLI(t, time.Minute, nil, args...)
		if res.Err != nil {
			t.Fatalf("skein %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
		}
		return res
	}
	all := []int32{101, 102, 103, 104}

	res := mustRun("cluster", "rebalance", "--wait", "--interval", "200ms")
	if !strings.Contains(res.Stdout, "complete") {
		t.Errorf("rebalance --wait:\n%s\n%s", res.Stdout, res.Stderr)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		replicas, _ := reassign.Loads(clusterAssignment(t, c))
		if spreadOf(replicas, all...) > 1 {
			return false, fmt.Sprintf("after rebalance: replicas per broker %v", replicas)
		}
		t.Logf("after rebalance: replicas per broker %v", replicas)
		return true, ""
	})

	res = mustRun("broker", "decommission", "101", "--wait", "--interval", "200ms")
	if !strings.Contains(res.Stdout, "complete") {
		t.Errorf("decommission --wait:\n%s\n%s", res.Stdout, res.Stderr)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		a := clusterAssignment(t, c)
		for tp, r := range a {
			if slices.Contains(r, 101) {
				return false, fmt.Sprintf("%s still on %v", tp, r)
			}
		}
		replicas, _ := reassign.Loads(a)
		t.Logf("after decommissioning 101: replicas per broker %v", replicas)
		return true, ""
	})
	res = mustRun("reassign", "list")
	if !regexp.MustCompile(`^TOPIC\s+PARTITION\s+REPLICAS\s+ADDING\s+REMOVING\s+LEFT\s*\n$`).MatchString(res.Stdout) {
		t.Errorf("reassign list after the decommission is not an empty table:\n%q", res.Stdout)
	}
	for topic, assignment := range topics {
		waitDirsGone(t, c.Broker(101), topic, len(assignment), 30*time.Second)
		report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledgers[topic].Acks())
		report.Check(t)
	}
}
