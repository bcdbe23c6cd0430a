package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestFollowerNotHeldByParkedFetch (issue 13): a follower whose fetch is
// parked at a leader on other partitions starts fetching a partition it
// must now follow from that leader without waiting out the parked fetch.
//
// The brokers run with a replica fetch max wait of 20 s, so a follower
// that waited out its parked fetch would hold an acks=all write for up to
// 20 s. Every broker leads a partition of an idle topic and follows the
// other two, so each broker's fetchers to the other two are parked when:
//
//   - a new topic of RF 3 is created: the first acks=all write to each of
//     its partitions must be answered within a quarter of the max wait
//     (not a measure of speed: only of not waiting out the parked fetch);
//   - the leader of one of its partitions shuts down (controlled shutdown
//     moves the leadership to another ISR member, whose remaining
//     follower is parked there on the idle topic): the first acks=all
//     write to the new leader likewise.
func TestFollowerNotHeldByParkedFetch(t *testing.T) {
	const (
		maxWait = 20 * time.Second
		within  = maxWait / 4
		idle    = "idle"
		fresh   = "fresh"
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3,
		BrokerArgs: []string{"--replica-fetch-wait-max", maxWait.String()}})
	createTopic(t, c, idle, 3, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	producer := []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RecordDeliveryTimeout(2 * maxWait),
	}
	cl := c.Client(t, producer...)
	// The fetchers of a new topic start with a full fetch; once a write to
	// each partition is acknowledged by every replica, each follower's next
	// fetch finds nothing new and parks at its leader.
	leaders := map[int32]bool{}
	for p := range int32(3) {
		leaders[partitionLeader(t, c, idle, p)] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("the idle topic's partitions are led by %v, want one on each broker", slices.Collect(maps.Keys(leaders)))
	}
	firstWrites(t, cl, idle, []int32{0, 1, 2}, 2*maxWait)

	createTopic(t, c, fresh, 3, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	took := firstWrites(t, cl, fresh, []int32{0, 1, 2}, within)
	t.Logf("first acks=all write to each new partition answered after %v (replica fetch max wait %v)", took, maxWait)

	// Leadership of fresh-0 moves: its leader shuts down cleanly.
	old := c.Broker(partitionLeader(t, c, fresh, 0))
	old.MustStop()
	var moved int32
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		moved = partitionLeader(t, c, fresh, 0)
		return moved != old.ID, fmt.Sprintf("%s still leads %s-0", old.Name, fresh)
	})
	t.Logf("%s stopped; %s-0 is led by broker %d", old.Name, fresh, moved)
	// A new producer, which learns the new leader from its first metadata
	// and knows only the running brokers (no dial retries to the stopped
	// one): the time taken is the brokers'.
	var running []string
	for _, b := range c.Brokers {
		if b != old {
			running = append(running, b.Addr)
		}
	}
	took = firstWrites(t, c.Client(t, append(producer, kgo.SeedBrokers(running...))...), fresh, []int32{0}, within)
	t.Logf("first acks=all write to %s-0 after the leader change answered after %v", fresh, took)
}

// firstWrites produces one record with acks=all to each partition of
// topic at once and fails the test unless every one is acknowledged within
// limit (it then waits for the rest); it returns how long the slowest
// took.
func firstWrites(t *testing.T, cl *kgo.Client, topic string, partitions []int32, limit time.Duration) time.Duration {
	t.Helper()
	type result struct {
		partition int32
		err       error
		took      time.Duration
	}
	results := make(chan result, len(partitions))
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range partitions {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(harness.Value("first", int64(p)))}
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			results <- result{p, err, time.Since(start)}
		})
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var slowest time.Duration
	answered := map[int32]bool{}
	for len(answered) < len(partitions) {
		select {
		case r := <-results:
			answered[r.partition] = true
			if r.err != nil {
				t.Errorf("first write to %s-%d failed after %v: %v", topic, r.partition, r.took.Round(time.Millisecond), r.err)
			}
			slowest = max(slowest, r.took)
		case <-timer.C:
			var waiting []int32
			for _, p := range partitions {
				if !answered[p] {
					waiting = append(waiting, p)
				}
			}
			t.Errorf("first acks=all writes to %s partitions %v not answered within %v: a follower waited out a parked fetch",
				topic, waiting, limit)
			wg.Wait()
			for len(results) > 0 {
				r := <-results
				t.Logf("first write to %s-%d answered after %v (error %v)", topic, r.partition, r.took.Round(time.Millisecond), r.err)
				slowest = max(slowest, r.took)
			}
			return slowest.Round(time.Millisecond)
		}
	}
	return slowest.Round(time.Millisecond)
}
