package e2e

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// quorumState is the metadata partition of a DescribeQuorum answer.
type quorumState = kmsg.DescribeQuorumResponseTopicPartition

// describeQuorum sends DescribeQuorum to the given controller listeners
// (any of them may answer: followers forward) and returns the metadata
// partition, or an error.
func describeQuorum(addrs ...string) (*quorumState, []kmsg.DescribeQuorumResponseNode, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{rt}
	var last error
	for _, seed := range cl.SeedBrokers() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		kresp, err := seed.Request(ctx, req)
		cancel()
		if err != nil {
			last = err
			continue
		}
		resp := kresp.(*kmsg.DescribeQuorumResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			last = err
			continue
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, nil, fmt.Errorf("describe quorum: unexpected answer %+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return nil, nil, err
		}
		return &p, resp.Nodes, nil
	}
	return nil, nil, fmt.Errorf("no controller described the quorum: %v", last)
}

func runningControllerAddrs(c *harness.Cluster) []string {
	var addrs []string
	for _, n := range c.Controllers {
		if n.Running() {
			addrs = append(addrs, n.Addr)
		}
	}
	return addrs
}

func voterIDs(q *quorumState) []int32 {
	var ids []int32
	for _, v := range q.CurrentVoters {
		ids = append(ids, v.ReplicaID)
	}
	slices.Sort(ids)
	return ids
}

// maxHealthyLag is how far (in metadata offsets) a voter may trail the
// active controller's high watermark and still count as caught up: the
// leader's view is from its last poll (every 250 ms) while topics are being
// created.
const maxHealthyLag = 100

// waitQuorumHealthy waits until the running controllers report a leader
// and exactly the voters want, each caught up (lag <= maxHealthyLag) and
// heard from within the last 2 s.
func waitQuorumHealthy(t *testing.T, c *harness.Cluster, timeout time.Duration, want ...int32) *quorumState {
	t.Helper()
	var q *quorumState
	harness.WaitFor(t, timeout, func() (bool, string) {
		var err error
		q, _, err = describeQuorum(runningControllerAddrs(c)...)
		if err != nil {
			return false, err.Error()
		}
		if got := voterIDs(q); !slices.Equal(got, want) {
			return false, fmt.Sprintf("voters %v, want %v", got, want)
		}
		now := time.Now().UnixMilli()
		for _, v := range q.CurrentVoters {
			if v.LogEndOffset < 0 || q.HighWatermark-v.LogEndOffset > maxHealthyLag || now-v.LastFetchTimestamp > 2000 {
				return false, fmt.Sprintf("voter %d: log end %d of %d, last contact %d ms ago",
					v.ReplicaID, v.LogEndOffset, q.HighWatermark, now-v.LastFetchTimestamp)
			}
		}
		return true, ""
	})
	return q
}

// TestQuorumKillEachControllerDuringTopicCreation: with 3 controllers and 1
// broker, a goroutine creates topics one after the other through the broker
// (kadm); each controller in turn is SIGKILLed (the active one at least
// once), creations must go on, and it is restarted and caught up before the
// next. Every creation must eventually succeed exactly once
// (TOPIC_ALREADY_EXISTS on a retry of one that went through counts), and the
// final topic list holds each name once.
func TestQuorumKillEachControllerDuringTopicCreation(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Controllers: 3})
	waitQuorumHealthy(t, c, 20*time.Second, 1, 2, 3)
	adm := c.Admin(t)

	var mu sync.Mutex
	var created []string
	var createErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			name := fmt.Sprintf("quorum-kill-%03d", i)
			start := time.Now()
			for attempt := 1; ; attempt++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := adm.CreateTopic(ctx, 1, 1, nil, name)
				cancel()
				if err == nil {
					err = resp.Err
				}
				// TOPIC_ALREADY_EXISTS: an earlier attempt (ours, or one of
				// kgo's own retries) went through; names are never reused.
				if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
					break
				}
				t.Logf("create %s attempt %d after %v: %v", name, attempt, time.Since(start).Round(time.Millisecond), err)
				if time.Since(start) > 30*time.Second {
					mu.Lock()
					createErr = fmt.Errorf("topic %s not created after %d attempts in 30s: %v", name, attempt, err)
					mu.Unlock()
					return
				}
				select { // retry backoff
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Logf("created %s in %v", name, d.Round(time.Millisecond))
			}
			mu.Lock()
			created = append(created, name)
			mu.Unlock()
		}
	}()
	stopCreating := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(stopCreating)

	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(created)
	}
	waitMore := func(n int, why string) {
		t.Helper()
		target := count() + n
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			if createErr != nil {
				t.Fatalf("%s: %v", why, createErr)
			}
			return len(created) >= target, fmt.Sprintf("%s: %d topics created, want %d", why, len(created), target)
		})
	}

	waitMore(3, "before the first kill")
	// Each controller once: the active one first, then a follower, then the
	// last one (whatever its role is by then).
	killed := map[int32]bool{}
	for round := 1; round <= 3; round++ {
		cur, _, err := describeQuorum(runningControllerAddrs(c)...)
		if err != nil {
			t.Fatal(err)
		}
		var n *harness.Node
		for _, cand := range c.Controllers {
			if killed[cand.ID] || (round == 1) != (cand.ID == cur.LeaderID) && round != 3 {
				continue
			}
			n = cand
			break
		}
		killed[n.ID] = true
		id := n.ID
		before := count()
		killedAt := time.Now()
		n.MustKill()
		waitMore(3, fmt.Sprintf("with %s killed", n.Name))
		t.Logf("%s SIGKILLed (active controller: %t): 3 more topics created within %v (%d before the kill)",
			n.Name, id == cur.LeaderID, time.Since(killedAt).Round(time.Millisecond), before)
		n.Restart()
		waitQuorumHealthy(t, c, 30*time.Second, 1, 2, 3)
		waitMore(2, fmt.Sprintf("after %s restarted", n.Name))
	}
	stopCreating()
	mu.Lock()
	defer mu.Unlock()
	if createErr != nil {
		t.Fatal(createErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "quorum-kill-") {
			listed = append(listed, name)
			if n := len(topics[name].Partitions); n != 1 {
				t.Errorf("topic %s has %d partitions, want 1", name, n)
			}
		}
	}
	// The last attempt may have been cut short by stop after the controller
	// accepted it: a listed name beyond the created ones is allowed.
	// Both sorted by name: past quorum-kill-999 the names are not in
	// creation order.
	want := append([]string(nil), created...)
	if extra := fmt.Sprintf("quorum-kill-%03d", len(want)); len(listed) == len(want)+1 && slices.Contains(listed, extra) {
		listed = slices.DeleteFunc(listed, func(s string) bool { return s == extra })
	}
	sort.Strings(listed)
	sort.Strings(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("topics listed %v\nwant (created) %v", listed, want)
	}
	t.Logf("%d topics created exactly once while each of the 3 controllers was killed in turn", len(want))
}

// metadataSnapshot is what must survive a full controller restart: every
// topic's partitions (leader, leader epoch, replicas, ISR) and configs.
type metadataSnapshot struct {
	Partitions map[string]string
	Configs    map[string]string
}

func snapshotMetadata(t *testing.T, adm *kadm.Client, topics ...string) metadataSnapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	s := metadataSnapshot{Partitions: map[string]string{}, Configs: map[string]string{}}
	for _, name := range topics {
		d, ok := md.Topics[name]
		if !ok || d.Err != nil {
			t.Fatalf("metadata: topic %s missing (%v)", name, d.Err)
		}
		for _, p := range d.Partitions.Sorted() {
			s.Partitions[fmt.Sprintf("%s-%d", name, p.Partition)] = fmt.Sprintf("id=%x leader=%d epoch=%d replicas=%v isr=%v offline=%v",
				d.ID, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.OfflineReplicas)
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe configs %s: %v", rc.Name, rc.Err)
		}
		for _, cfg := range rc.Configs {
			s.Configs[rc.Name+"/"+cfg.Key] = fmt.Sprintf("%s (%s)", cfg.MaybeValue(), cfg.Source)
		}
	}
	return s
}

// TestQuorumFullRestartKeepsMetadata: SIGKILL all three controllers, start
// them again on their data dirs: topics, partitions, leaders, epochs,
// replicas, ISRs and configs are what they were, and metadata can change
// again.
func TestQuorumFullRestartKeepsMetadata(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Controllers: 3})
	waitQuorumHealthy(t, c, 20*time.Second, 1, 2, 3)
	retention := "3600000"
	createTopic(t, c, "restart-a", 3, 1, nil)
	createTopic(t, c, "restart-b", 1, 1, map[string]*string{"retention.ms": &retention, "cleanup.policy": kadmStr("compact")})
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: kadmStr("60000")}}, "restart-a"); err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		s := snapshotMetadata(t, adm, "restart-a")
		v := s.Configs["restart-a/segment.ms"]
		return strings.HasPrefix(v, "60000 "), "segment.ms of restart-a is " + v
	})
	before := snapshotMetadata(t, adm, "restart-a", "restart-b")

	for _, n := range c.Controllers {
		n.MustKill()
	}
	t.Logf("all 3 controllers SIGKILLed")
	for _, n := range c.Controllers {
		n.Restart()
	}
	q := waitQuorumHealthy(t, c, 30*time.Second, 1, 2, 3)
	t.Logf("quorum back: leader %d, term %d, high watermark %d", q.LeaderID, q.LeaderEpoch, q.HighWatermark)

	// A change after the restart proves the quorum works and that the
	// broker follows it again; the old topics must be unchanged.
	createTopic(t, c, "restart-c", 1, 1, nil)
	after := snapshotMetadata(t, adm, "restart-a", "restart-b")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("metadata changed across the full controller restart:\nbefore %+v\nafter  %+v", before, after)
	}
	t.Logf("%d partitions and %d config entries identical after the restart", len(after.Partitions), len(after.Configs))
}

func kadmStr(s string) *string { return &s }

// TestQuorumDataPlaneWithoutControllers: with every controller down, an
// existing RF=1 partition keeps taking acks=all produces and serving
// fetches.
func TestQuorumDataPlaneWithoutControllers(t *testing.T) {
	const topic = "no-controllers"
	c := harness.StartCluster(t, harness.Options{Controllers: 3})
	createTopic(t, c, topic, 2, 1, nil)
	// The idempotent producer gets its producer id while the controllers
	// are up (the broker allocates ids in blocks from the controller); it
	// is an existing client that must keep working through the outage.
	producer := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const records = 200
	want := map[string]bool{"before": true}
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce with the controllers up: %v", err)
	}
	for _, n := range c.Controllers {
		n.MustKill()
	}
	for i := range records {
		v := fmt.Sprintf("v-%03d", i)
		want[v] = true
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %d with no controller up: %v", i, err)
		}
	}
	consumer := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	for len(got) < len(want) {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("fetched %d of %d records with no controller up: %v", len(got), len(want), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fetched %d distinct records, want %d", len(got), len(want))
	}
	t.Logf("produced (acks=all) and fetched %d records with all 3 controllers down", records)
	// Bring the quorum back so that the broker's controlled shutdown at
	// cleanup does not wait for it in vain.
	for _, n := range c.Controllers {
		n.Restart()
	}
	waitQuorumHealthy(t, c, 30*time.Second, 1, 2, 3)
}

// TestQuorumAddRemoveVoter: a 4th controller started without
// --initial-controllers waits (it does not bootstrap a quorum of its own);
// `skein controller add-voter` makes it a voter once caught up, `skein
// cluster describe` shows it, `skein controller remove-voter` removes it.
func TestQuorumAddRemoveVoter(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Controllers: 3})
	waitQuorumHealthy(t, c, 20*time.Second, 1, 2, 3)
	createTopic(t, c, "voters-a", 1, 1, nil)

	n4 := c.AddController()
	if _, _, err := describeQuorum(n4.Addr); !errors.Is(err, kerr.NotController) && (err == nil || !strings.Contains(err.Error(), kerr.NotController.Message)) {
		t.Fatalf("a controller waiting to be added answered DescribeQuorum with %v, want NOT_CONTROLLER", err)
	}

	res := c.RunControllerCLI(t, 40*time.Second, nil, "controller", "add-voter", "--node-id", "4", "--raft-address", n4.RaftAddr)
	if res.Err != nil {
		t.Fatalf("add-voter: %v\nstdout: %s\nstderr: %s", res.Err, res.Stdout, res.Stderr)
	}
	q := waitQuorumHealthy(t, c, 20*time.Second, 1, 2, 3, 4)
	t.Logf("4 voters: leader %d, term %d", q.LeaderID, q.LeaderEpoch)
	// The new voter serves requests too (forwarding to the active one).
	if q4, _, err := describeQuorum(n4.Addr); err != nil || !slices.Equal(voterIDs(q4), []int32{1, 2, 3, 4}) {
		t.Fatalf("DescribeQuorum through the new voter: %v %v", q4, err)
	}
	createTopic(t, c, "voters-b", 1, 1, nil)

	res = harness.RunCommand(t, 20*time.Second, nil, harness.Binary(t), "cluster", "describe",
		"--bootstrap-server", c.Bootstrap(), "--bootstrap-controller", c.Controllers[0].Addr)
	if res.Err != nil {
		t.Fatalf("cluster describe: %v\n%s", res.Err, res.Stderr)
	}
	t.Logf("skein cluster describe:\n%s", res.Stdout)
	for _, want := range []string{n4.RaftAddr, n4.Addr, "leader", "follower", c.Brokers[0].Addr, "false"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("cluster describe output lacks %q", want)
		}
	}
	// Without --bootstrap-controller the quorum comes through the broker.
	res = c.RunCLI(t, 20*time.Second, nil, "cluster", "describe")
	if res.Err != nil || !strings.Contains(res.Stdout, n4.RaftAddr) {
		t.Errorf("cluster describe through the broker: %v\n%s\n%s", res.Err, res.Stdout, res.Stderr)
	}

	res = c.RunControllerCLI(t, 40*time.Second, nil, "controller", "remove-voter", "--node-id", "4")
	if res.Err != nil {
		t.Fatalf("remove-voter: %v\nstdout: %s\nstderr: %s", res.Err, res.Stdout, res.Stderr)
	}
	n4.MustStop()
	waitQuorumHealthy(t, c, 20*time.Second, 1, 2, 3)
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, nodes, err := describeQuorum(runningControllerAddrs(c)...)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if n.NodeID == 4 {
				return false, "node 4 still listed"
			}
		}
		return true, ""
	})
	createTopic(t, c, "voters-c", 1, 1, nil)
}
