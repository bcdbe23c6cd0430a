package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// Broker membership and elections with real processes: one controller with
// a short session timeout, three brokers heartbeating often. Partition
// data is not replicated yet (followers hold nothing), so these tests check
// the metadata decisions and what clients see, not the data.

// membershipSessionTimeout is the controller's --session-timeout; brokers
// heartbeat every fastFenceHeartbeat. It stays above the one second in
// which a controlled shutdown must show (a fence after the exit would come
// at least 1.75 s after the last heartbeat).
const membershipSessionTimeout = 2 * time.Second

func membershipCluster(t *testing.T, rebalanceInterval time.Duration) *harness.Cluster {
	t.Helper()
	return harness.StartCluster(t, harness.Options{
		Brokers: 3,
		ControllerArgs: []string{
			"--session-timeout", membershipSessionTimeout.String(),
			"--leader-imbalance-check-interval", rebalanceInterval.String(),
		},
		BrokerArgs: fastFenceBrokerArgs,
	})
}

// fenceDeadline is how long fencing may take after a SIGKILL: the session
// timeout plus a few seconds, as the acceptance criteria say.
const fenceDeadline = membershipSessionTimeout + 5*time.Second

// liveAddrs lists the Kafka listeners of the running brokers.
func liveAddrs(c *harness.Cluster) []string {
	var out []string
	for _, b := range c.Brokers {
		if b.Running() {
			out = append(out, b.Addr)
		}
	}
	return out
}

// metadataVia asks one of the running brokers for the cluster's metadata:
// the unfenced brokers and topic's partitions.
func metadataVia(c *harness.Cluster, topic string) (kadm.Metadata, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(liveAddrs(c)...), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		return kadm.Metadata{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err == nil {
		err = m.Topics[topic].Err
	}
	return m, err
}

// partitionsOf returns the partitions of topic in m, sorted.
func partitionsOf(m kadm.Metadata, topic string) []kadm.PartitionDetail {
	return m.Topics[topic].Partitions.Sorted()
}

// waitMetadata waits until cond holds for topic's metadata as a running
// broker serves it, and returns that metadata.
func waitMetadata(t *testing.T, c *harness.Cluster, topic string, timeout time.Duration, cond func(kadm.Metadata) (bool, string)) kadm.Metadata {
	t.Helper()
	var last kadm.Metadata
	harness.WaitFor(t, timeout, func() (bool, string) {
		m, err := metadataVia(c, topic)
		if err != nil {
			return false, err.Error()
		}
		last = m
		return cond(m)
	})
	return last
}

// fencedEverywhere is the condition after broker id lost its session: not
// listed among the brokers, leading nothing, in no ISR of a partition with
// other members, and reported as an offline replica where it is one.
func fencedEverywhere(topic string, id int32) func(kadm.Metadata) (bool, string) {
	return func(m kadm.Metadata) (bool, string) {
		if slices.Contains(m.Brokers.NodeIDs(), id) {
			return false, fmt.Sprintf("broker %d still listed (brokers %v)", id, m.Brokers.NodeIDs())
		}
		for _, p := range partitionsOf(m, topic) {
			switch {
			case p.Leader == id:
				return false, fmt.Sprintf("partition %d still led by %d", p.Partition, id)
			case slices.Contains(p.ISR, id) && len(p.ISR) > 1:
				return false, fmt.Sprintf("partition %d: %d still in ISR %v", p.Partition, id, p.ISR)
			case slices.Contains(p.Replicas, id) && !slices.Contains(p.OfflineReplicas, id):
				return false, fmt.Sprintf("partition %d: offline replicas %v lack %d", p.Partition, p.OfflineReplicas, id)
			}
		}
		return true, ""
	}
}

// ledByPreferred says every partition of topic is led by its first replica.
func ledByPreferred(topic string) func(kadm.Metadata) (bool, string) {
	return func(m kadm.Metadata) (bool, string) {
		for _, p := range partitionsOf(m, topic) {
			if len(p.Replicas) == 0 || p.Leader != p.Replicas[0] {
				return false, fmt.Sprintf("partition %d led by %d, replicas %v, ISR %v", p.Partition, p.Leader, p.Replicas, p.ISR)
			}
		}
		return true, ""
	}
}

// preferredOf lists the partitions of topic whose first replica is id.
func preferredOf(m kadm.Metadata, topic string, id int32) []int32 {
	var out []int32
	for _, p := range partitionsOf(m, topic) {
		if p.Replicas[0] == id {
			out = append(out, p.Partition)
		}
	}
	return out
}

// createAssigned creates topic with an explicit replica assignment (one
// replica list per partition) and waits for the leaders.
func createAssigned(t *testing.T, c *harness.Cluster, topic string, assignment ...[]int32) {
	t.Helper()
	cl := c.Client(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, replicas := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && resp.Topics[0].ErrorCode != 0 {
		err = fmt.Errorf("error code %d: %v", resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage)
	}
	if err != nil {
		t.Fatalf("create %s with assignment %v: %v", topic, assignment, err)
	}
	waitForLeaders(t, c, topic, len(assignment))
}

// runCLIVia runs the skein CLI against the running brokers only.
func runCLIVia(t *testing.T, c *harness.Cluster, args ...string) harness.CLIResult {
	t.Helper()
	return harness.RunCommand(t, time.Minute, nil, harness.Binary(t), append(args, "--bootstrap-server", strings.Join(liveAddrs(c), ","))...)
}

// TestMembershipKillRejoinPreferredElection: a SIGKILLed broker is fenced
// within the session timeout plus a few seconds and disappears from every
// leadership and ISR of an RF=3 topic; producers carry on against the new
// leaders; a preferred election cannot give it its partitions back while it
// is down (PREFERRED_LEADER_NOT_AVAILABLE); restarted, it is unfenced and
// rejoins, and `skein leader elect --preferred` restores every preferred
// leader (automatic rebalancing is slowed down here so the CLI does it).
func TestMembershipKillRejoinPreferredElection(t *testing.T) {
	const topic = "members"
	c := membershipCluster(t, time.Hour)
	createTopic(t, c, topic, 6, 3, nil)
	before := waitMetadata(t, c, topic, 10*time.Second, ledByPreferred(topic))
	victim := c.Brokers[0]
	owned := preferredOf(before, topic, victim.ID)
	if len(owned) == 0 {
		t.Fatalf("broker %d prefers no partition of %s: %v", victim.ID, topic, partitionsOf(before, topic))
	}

	victim.MustKill()
	killed := time.Now()
	m := waitMetadata(t, c, topic, fenceDeadline, fencedEverywhere(topic, victim.ID))
	t.Logf("broker %d fenced and out of every ISR %v after SIGKILL", victim.ID, time.Since(killed).Round(time.Millisecond))
	for _, p := range partitionsOf(m, topic) {
		old := before.Topics[topic].Partitions[p.Partition]
		if slices.Contains(owned, p.Partition) && (p.Leader < 0 || p.LeaderEpoch <= old.LeaderEpoch) {
			t.Errorf("partition %d: leader %d epoch %d after its leader died (was epoch %d)", p.Partition, p.Leader, p.LeaderEpoch, old.LeaderEpoch)
		}
	}

	// Clients carry on against the new leaders (acks=1: followers do not
	// fetch yet, so an RF=3 high watermark stays put).
	cl := c.Client(t, kgo.SeedBrokers(liveAddrs(c)...), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, part := range owned {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte("after-kill")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d after its leader died: %v", part, err)
		}
	}

	res := runCLIVia(t, c, "topic", "describe", topic)
	if res.Err != nil || !strings.Contains(res.Stdout, fmt.Sprintf("Offline: %d", victim.ID)) {
		t.Errorf("topic describe should list %d offline: %v\n%s%s", victim.ID, res.Err, res.Stdout, res.Stderr)
	}
	res = runCLIVia(t, c, "leader", "elect", "--preferred", "--topic", topic)
	if res.Err == nil || !strings.Contains(res.Stdout, "PREFERRED_LEADER_NOT_AVAILABLE") {
		t.Errorf("preferred election with broker %d down: want PREFERRED_LEADER_NOT_AVAILABLE and a failure, got %v\n%s%s", victim.ID, res.Err, res.Stdout, res.Stderr)
	}

	victim.Restart() // waits until it is listed again: unfenced
	waitMetadata(t, c, topic, 10*time.Second, func(m kadm.Metadata) (bool, string) {
		for _, p := range partitionsOf(m, topic) {
			if !slices.Contains(p.ISR, victim.ID) || len(p.OfflineReplicas) > 0 {
				return false, fmt.Sprintf("partition %d: ISR %v, offline %v", p.Partition, p.ISR, p.OfflineReplicas)
			}
		}
		return true, ""
	})
	m, err := metadataVia(c, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range owned {
		if l := m.Topics[topic].Partitions[part].Leader; l == victim.ID {
			t.Fatalf("partition %d went back to %d without an election", part, l)
		}
	}

	res = runCLIVia(t, c, "leader", "elect", "--preferred", "--topic", topic)
	if res.Err != nil {
		t.Fatalf("skein leader elect --preferred: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("skein leader elect --preferred --topic %s:\n%s", topic, res.Stdout)
	if got := strings.Count(res.Stdout, "elected"); got != len(owned) {
		t.Errorf("want %d partitions elected, got:\n%s", len(owned), res.Stdout)
	}
	waitMetadata(t, c, topic, 5*time.Second, ledByPreferred(topic))

	// Nothing left to do: every partition is led by its preferred replica.
	res = runCLIVia(t, c, "leader", "elect", "--preferred")
	if res.Err != nil || !strings.Contains(res.Stdout, "No partition needed an election") {
		t.Errorf("second election: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	res = runCLIVia(t, c, "leader", "elect", "--preferred", "--topic", topic, "--partition", "0")
	if res.Err != nil || !strings.Contains(res.Stdout, "not needed") {
		t.Errorf("election of a partition led by its preferred replica: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
}

// TestMembershipControlledShutdownAndUncleanElection:
//
//   - SIGTERM: the broker's leaderships move to other ISR members before it
//     exits (the controller grants the shutdown only then), and a producer
//     writing meanwhile to an RF=1 topic on another broker sees no failure;
//     restarted, automatic leader rebalancing gives it its partitions back.
//   - A partition whose only in-sync replica is dead stays offline (that
//     replica moved to the eligible leader replicas), even with
//     out-of-sync replicas live again, until unclean leader election is
//     enabled for its topic; then the first live replica leads.
func TestMembershipControlledShutdownAndUncleanElection(t *testing.T) {
	const (
		topic   = "moving"
		steady  = "steady"
		unclean = "unclean"
	)
	c := membershipCluster(t, time.Second)
	b1, b2, b3 := c.Brokers[0], c.Brokers[1], c.Brokers[2]
	createTopic(t, c, topic, 6, 3, nil)
	createAssigned(t, c, steady, []int32{b3.ID}, []int32{b3.ID})
	before := waitMetadata(t, c, topic, 10*time.Second, ledByPreferred(topic))
	if len(preferredOf(before, topic, b2.ID)) == 0 {
		t.Fatalf("broker %d prefers no partition of %s", b2.ID, topic)
	}

	// A producer on the RF=1 topic led by b3, running through b2's shutdown.
	cl := c.Client(t, kgo.DefaultProduceTopic(steady), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	var ledger harness.Ledger
	// produceCtx ends only when the test ends early; a record handed to the
	// client is otherwise only acknowledged or failed, never cancelled.
	produceCtx, cancelProduce := context.WithCancel(context.Background())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := int64(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			cl.Produce(produceCtx, &kgo.Record{Value: []byte(harness.Value("steady", seq))}, ledger.Promise)
			if seq%100 == 99 {
				time.Sleep(time.Millisecond) // pace it: a few thousand records, not millions
			}
		}
	}()
	stopProducer := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(func() { cancelProduce(); stopProducer() })
	waitAcked := func(n int) {
		t.Helper()
		harness.WaitFor(t, 20*time.Second, func() (bool, string) {
			failed, err := ledger.Failed()
			return ledger.Acked() >= n || failed > 0, fmt.Sprintf("acked %d, failed %d (%v)", ledger.Acked(), failed, err)
		})
	}
	waitAcked(500)

	start := time.Now()
	b2.MustStop() // SIGTERM, and a clean exit
	t.Logf("broker %d stopped %v after SIGTERM", b2.ID, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(b2.Tail(200), "controlled shutdown granted") {
		t.Errorf("broker %d exited without the controller granting its controlled shutdown:\n%s", b2.ID, b2.Tail(30))
	}
	// The move was committed before the exit; other brokers learn of it
	// within a second (well below the session timeout, so this is not a
	// fence after the exit).
	waitMetadata(t, c, topic, time.Second, fencedEverywhere(topic, b2.ID))
	atStop := ledger.Acked()
	waitAcked(atStop + 500)
	stopProducer()
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if failed, err := ledger.Failed(); failed > 0 {
		t.Fatalf("%d produce requests to %s failed during the controlled shutdown of %d; first error: %v", failed, steady, b2.ID, err)
	}
	t.Logf("%d records acknowledged on %s, none failed", ledger.Acked(), steady)

	// Back, b2 rejoins and the rebalance returns its preferred leaderships.
	b2.Restart()
	waitMetadata(t, c, topic, 10*time.Second, ledByPreferred(topic))

	// Unclean election: the ISR of a partition shrinks to b3, then b3 dies.
	createAssigned(t, c, unclean, []int32{b1.ID, b2.ID, b3.ID})
	b1.MustKill()
	waitMetadata(t, c, unclean, fenceDeadline, fencedEverywhere(unclean, b1.ID))
	b2.MustKill()
	m := waitMetadata(t, c, unclean, fenceDeadline, fencedEverywhere(unclean, b2.ID))
	if p := partitionsOf(m, unclean)[0]; p.Leader != b3.ID || !slices.Equal(p.ISR, []int32{b3.ID}) {
		t.Fatalf("with %d and %d dead: leader %d ISR %v, want %d and [%d]", b1.ID, b2.ID, p.Leader, p.ISR, b3.ID, b3.ID)
	}
	// b3 dies too, while b1 and b2 are down: no broker is left to ask, so
	// its fence is read from the controller's log. Only then do b1 and b2
	// come back: had they come back while b3 led, they would have rejoined
	// the ISR (catching up from b3).
	b3.MustKill()
	harness.WaitFor(t, fenceDeadline, func() (bool, string) {
		for _, line := range strings.Split(c.Controllers[0].Tail(400), "\n") {
			if strings.Contains(line, "session timed out") && strings.Contains(line, fmt.Sprintf("broker=%d ", b3.ID)) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("the controller has not logged the fence of %d", b3.ID)
	})
	b1.Restart()
	b2.Restart()
	m = waitMetadata(t, c, unclean, 10*time.Second, func(m kadm.Metadata) (bool, string) {
		ids := m.Brokers.NodeIDs()
		if !slices.Contains(ids, b1.ID) || !slices.Contains(ids, b2.ID) {
			return false, fmt.Sprintf("brokers %v: want %d and %d", ids, b1.ID, b2.ID)
		}
		return true, ""
	})
	// Fenced, the last ISR member left the ISR for the eligible leader
	// replicas (KIP-966; Metadata does not show the ELR); b1 and b2,
	// restarted without a clean shutdown, are in neither.
	p := partitionsOf(m, unclean)[0]
	if p.Leader != -1 || len(p.ISR) != 0 {
		t.Fatalf("only in-sync replica %d dead: leader %d ISR %v; want offline (-1) with ISR [] (%d in the ELR)", b3.ID, p.Leader, p.ISR, b3.ID)
	}
	t.Logf("partition %s-0 offline (ISR [], ELR [%d]) while %d and %d are live", unclean, b3.ID, b1.ID, b2.ID)

	adm := kadm.NewClient(c.Client(t, kgo.SeedBrokers(liveAddrs(c)...)))
	ctx, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "unclean.leader.election.enable", Value: kmsg.StringPtr("true")}}, unclean)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = rs.On(unclean, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("enable unclean leader election on %s: %v", unclean, err)
	}
	waitMetadata(t, c, unclean, 5*time.Second, func(m kadm.Metadata) (bool, string) {
		p := partitionsOf(m, unclean)[0]
		// The ISR restarts as [b1]; b2, live and caught up with the new
		// leader, may already have been added back by b1.
		if p.Leader != b1.ID || !slices.Contains(p.ISR, b1.ID) || slices.Contains(p.ISR, b3.ID) {
			return false, fmt.Sprintf("leader %d ISR %v; want the first live replica %d leading, ISR [%d] (plus %d once caught up)", p.Leader, p.ISR, b1.ID, b1.ID, b2.ID)
		}
		return true, ""
	})
}
