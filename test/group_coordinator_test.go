package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestGroupCoordinator runs group consumers against the brokers' group
// coordinator (3 brokers, __consumer_offsets with 3 replicas):
//   - kcat: kcat -G consumes a topic in a group and commits on exit.
//   - cooperative-sticky, range: two franz-go members share a 6-partition
//     topic of 10k records and commit; the committed offsets (kadm) reach
//     the end offsets. Then the group's coordinator is SIGKILLed: another
//     broker loads the group from __consumer_offsets and reports the same
//     offsets, and a new member resumes there (nothing below a committed
//     offset comes back).
//   - failover-while-consuming: the coordinator is SIGKILLed while two
//     members consume and commit; they carry on with the new coordinator.
func TestGroupCoordinator(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{
		Brokers: 3,
		// No 3 s wait for more members before the first rebalance; a
		// small __consumer_offsets; a killed broker fenced within 1.5 s.
		BrokerArgs:     append([]string{"--group-initial-rebalance-delay", "100ms", "--offsets-topic-num-partitions", "10"}, fastFenceBrokerArgs...),
		ControllerArgs: fastFenceControllerArgs,
	})
	// A Metadata request that auto-creates __consumer_offsets gets the
	// coordinator's settings (10 partitions, compacted), not num.partitions.
	{
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("__consumer_offsets")
		req.Topics = append(req.Topics, rt)
		cl := c.Client(t)
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				return false, err.Error()
			}
			mt := resp.Topics[0]
			return mt.ErrorCode == 0 && len(mt.Partitions) == 10 && mt.IsInternal,
				fmt.Sprintf("__consumer_offsets: error %d, %d partitions, internal %v", mt.ErrorCode, len(mt.Partitions), mt.IsInternal)
		})
		// The admin client may ask another broker, which learns of the
		// topic a moment later (UNKNOWN_TOPIC_OR_PARTITION until then).
		adm := c.Admin(t)
		harness.WaitFor(t, 10*time.Second, func() (bool, string) {
			rc, err := adm.DescribeTopicConfigs(context.Background(), "__consumer_offsets")
			if err != nil {
				return false, err.Error()
			}
			v, err := rc.On("__consumer_offsets", nil)
			if err == nil {
				err = v.Err
			}
			if err != nil {
				return false, "describe __consumer_offsets: " + err.Error()
			}
			if p := configValue(v.Configs, "cleanup.policy"); p != "compact" {
				t.Fatalf("__consumer_offsets cleanup.policy = %q, want compact", p)
			}
			return true, ""
		})
	}
	// Every topic is created and filled while the three brokers are up
	// (the subtests kill brokers).
	const kcatTopic, kcatRecords = "gc-kcat", 200
	topics := []struct {
		topic string
		n     int
	}{{"gc-cooperative-sticky", groupRecords}, {"gc-range", groupRecords}, {activeTopic, activeRecords}, {kcatTopic, kcatRecords}}
	var names []string
	for _, tp := range topics {
		names = append(names, tp.topic)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	created, err := c.Admin(t).CreateTopics(cctx, 6, 3, nil, names...)
	ccancel()
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for _, tp := range topics {
		waitForLeaders(t, c, tp.topic, 6)
		var ledger harness.Ledger
		produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic(tp.topic)), tp.topic, tp.topic, tp.n, &ledger)
	}
	t.Run("kcat", func(t *testing.T) {
		kcat := kcatBinary(t)
		res := harness.RunCommand(t, 60*time.Second, nil, kcat, "-b", c.Bootstrap(), "-G", "kcat-group",
			"-X", "auto.offset.reset=earliest", "-c", fmt.Sprint(kcatRecords), "-f", "%p %o %s\n", kcatTopic)
		if res.Err != nil {
			t.Fatalf("kcat -G: %v\nstderr: %s", res.Err, res.Stderr)
		}
		if lines := strings.Count(res.Stdout, "\n"); lines != kcatRecords {
			t.Fatalf("kcat -G read %d records, want %d\nstderr: %s", lines, kcatRecords, res.Stderr)
		}
		// kcat committed what it read (auto commit on close).
		adm := c.Admin(t)
		harness.WaitFor(t, 20*time.Second, func() (bool, string) {
			offs, err := adm.FetchOffsets(context.Background(), "kcat-group")
			if err != nil {
				return false, err.Error()
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			return sum == kcatRecords, fmt.Sprintf("committed offsets sum to %d, want %d", sum, kcatRecords)
		})
	})
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, group := "gc-"+tc.name, "group-"+tc.name
			testGroupFailover(t, c, topic, group, tc.balancer)
		})
	}
	t.Run("failover-while-consuming", func(t *testing.T) {
		testGroupFailoverActive(t, c)
	})
}

// Records per topic of the subtests.
const (
	groupRecords  = 10_000
	activeTopic   = "gc-active"
	activeRecords = 6000
)

func testGroupFailover(t *testing.T, c *harness.Cluster, topic, group string, balancer kgo.GroupBalancer) {
	const records = groupRecords
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Two members share the topic; each record is counted once.
	var mu sync.Mutex
	seen := map[string]bool{}
	consumer := func() *kgo.Client {
		return c.Client(t,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.Balancers(balancer),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond),
		)
	}
	members := []*kgo.Client{consumer(), consumer()}
	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	for _, cl := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = true })
				mu.Unlock()
			}
		}()
	}
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == records, fmt.Sprintf("consumed %d of %d distinct records", len(seen), records)
	})
	// The group settles with both members sharing all 6 partitions
	// (cooperative-sticky gets there over consecutive rebalances).
	adm := c.Admin(t)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		d := dg[group]
		if d.State != "Stable" || len(d.Members) != 2 {
			return false, fmt.Sprintf("group %s with %d members", d.State, len(d.Members))
		}
		for _, m := range d.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) == 0 {
				return false, fmt.Sprintf("member %s assigned %+v", m.MemberID, a)
			}
		}
		if n := len(d.AssignedPartitions().Sorted()); n != 1 || len(d.AssignedPartitions()[topic]) != 6 {
			return false, fmt.Sprintf("assigned %v", d.AssignedPartitions().Sorted())
		}
		return true, ""
	})
	stopPolling()
	wg.Wait()
	for i, cl := range members {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("member %d commit: %v", i, err)
		}
	}

	ends := waitCommittedAtEnd(t, adm, group, topic, 6, 20*time.Second)
	t.Logf("%d records consumed and committed by 2 members", records)
	for _, cl := range members {
		cl.Close() // leaves the group
	}

	// Kill the group's coordinator.
	coord := groupCoordinator(t, c, group, -1)
	victim := c.Broker(coord)
	t.Logf("killing coordinator broker %d of %s", coord, group)
	victim.MustKill()
	t.Cleanup(func() {
		if !victim.Running() {
			victim.Restart()
		}
	})

	// A surviving broker takes over: same committed offsets, loaded from
	// __consumer_offsets.
	newCoord := groupCoordinator(t, c, group, coord)
	adm2 := liveAdmin(t, c)
	defer adm2.Close()
	if got := waitCommittedAtEnd(t, adm2, group, topic, 6, 60*time.Second); fmt.Sprint(got) != fmt.Sprint(ends) {
		t.Fatalf("new coordinator %d serves committed offsets %v, before the failover %v", newCoord, got, ends)
	}
	t.Logf("new coordinator %d has the committed offsets", newCoord)

	// More records, then a new member: it resumes at the committed offsets
	// and sees exactly the new records.
	const more = 1000
	var ledger harness.Ledger
	produceNumbered(t, c.Client(t, kgo.SeedBrokers(liveBrokers(c)...), kgo.DefaultProduceTopic(topic)), topic, "gc-more", more, &ledger)
	cl := c.Client(t,
		kgo.SeedBrokers(liveBrokers(c)...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < more && time.Now().Before(deadline) {
		pctx, pcancel := context.WithDeadline(ctx, deadline)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if end := ends[r.Partition]; r.Offset < end {
				t.Errorf("redelivered p%d offset %d below the committed offset %d", r.Partition, r.Offset, end)
			}
			got++
		})
	}
	if got != more {
		t.Fatalf("new member consumed %d records, want %d", got, more)
	}
	victim.Restart()
}

// testGroupFailoverActive kills the coordinator while two members consume
// and commit: the new coordinator restores the group (members, generation,
// assignment) from __consumer_offsets, the members carry on committing to
// it, and every record is consumed with the final commits at the end.
func testGroupFailoverActive(t *testing.T, c *harness.Cluster) {
	const records = activeRecords
	const topic, group = activeTopic, "group-active"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	seen := map[string]bool{}
	killed := make(chan struct{})
	var commitErrs []error
	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var members []*kgo.Client
	for range 2 {
		cl := c.Client(t,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond),
		)
		members = append(members, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollRecords(pollCtx, 200)
				recs := fs.Records()
				if len(recs) == 0 {
					continue
				}
				mu.Lock()
				for _, r := range recs {
					seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = true
				}
				half := len(seen) >= records/2
				mu.Unlock()
				if err := cl.CommitRecords(pollCtx, recs...); err != nil && pollCtx.Err() == nil {
					mu.Lock()
					commitErrs = append(commitErrs, err)
					mu.Unlock()
				}
				if half {
					// Hold here until the coordinator is gone, so the rest
					// is consumed and committed through the new one.
					select {
					case <-killed:
					case <-pollCtx.Done():
					}
				}
			}
		}()
	}
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= records/2, fmt.Sprintf("consumed %d of %d", len(seen), records)
	})
	coord := groupCoordinator(t, c, group, -1)
	victim := c.Broker(coord)
	t.Logf("killing coordinator broker %d of %s while its members consume", coord, group)
	victim.MustKill() // the last subtest: the broker stays down
	close(killed)
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == records, fmt.Sprintf("consumed %d of %d distinct records", len(seen), records)
	})
	stopPolling()
	wg.Wait()
	for i, cl := range members {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("member %d final commit: %v", i, err)
		}
	}
	adm := liveAdmin(t, c)
	defer adm.Close()
	waitCommittedAtEnd(t, adm, group, topic, 6, 30*time.Second)
	mu.Lock()
	t.Logf("commit errors during the failover (retried by the next commit): %v", commitErrs)
	mu.Unlock()
}

// configValue is the value of config key in cs, "" when absent.
func configValue(cs []kadm.Config, key string) string {
	for _, c := range cs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}
