package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestReplication: 1 controller, 3 brokers, a topic with replication
// factor 3 and min.insync.replicas=2. An idempotent acks=all producer
// writes 20,000 records; every acknowledged record must be stored exactly
// once at its acknowledged offset, and once the followers caught up the
// three replicas' segment files must be byte-identical.
func TestReplication(t *testing.T) {
	const (
		topic      = "replicated"
		partitions = 3
		records    = 20_000
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3})
	createTopic(t, c, topic, partitions, 3, map[string]*string{"min.insync.replicas": strPtr("2")})

	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
	)
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "repl", records, &ledger)

	checkReplicasIdentical(t, c, topic, partitions, 30*time.Second)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks())
	report.Check(t)
	if report.Acked != records {
		t.Errorf("checked %d acknowledgements, want %d", report.Acked, records)
	}
	checkLogDirSizes(t, c, topic, partitions)
	t.Logf("checked %d acknowledged records over %d partitions; replicas identical", report.Acked, report.Partitions)
}

// TestReplicationLeaderKill: as TestReplication with one partition, but the
// leader is SIGKILLed mid-stream. The controller fences it after its
// session timeout and elects a new leader from the ISR; the producer
// keeps going on its own retries. The killed broker is restarted: it must
// truncate any tail the new leader does not have and catch up. Every
// acknowledged record must be present exactly once at its offset, and the
// replicas byte-identical at the end.
func TestReplicationLeaderKill(t *testing.T) {
	const topic = "replicated-kill"
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	t.Logf("seed %d (repeat with SKEIN_TEST_SEED=%d)", seed, seed)

	c := harness.StartCluster(t, harness.Options{Brokers: 3, ControllerArgs: fastFenceControllerArgs, BrokerArgs: fastFenceBrokerArgs})
	createTopic(t, c, topic, 1, 3, map[string]*string{"min.insync.replicas": strPtr("2")})

	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(2_000),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.RetryTimeout(time.Minute),
	)
	var ledger harness.Ledger
	stopProducing := harness.ProduceLoop(t, cl, "kill", &ledger, harness.LoadRate)
	waitAcked := func(want int, timeout time.Duration) { t.Helper(); ledger.WaitAcked(t, want, timeout) }

	waitAcked(3_000+rng.IntN(5_000), 30*time.Second)
	leader := c.Broker(partitionLeader(t, c, topic, 0))
	atKill := ledger.Acked()
	leader.MustKill()
	t.Logf("SIGKILLed leader %s after %d acknowledgements", leader.Name, atKill)
	waitAcked(atKill+3_000, 45*time.Second)
	newLeader := partitionLeader(t, c, topic, 0)
	t.Logf("new leader %d; %d acknowledgements; restarting %s", newLeader, ledger.Acked(), leader.Name)
	leader.Restart()
	waitAcked(ledger.Acked()+3_000, 30*time.Second)

	stopProducing()
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if failed, err := ledger.Failed(); failed > 0 {
		t.Errorf("%d records failed; first error: %v", failed, err)
	}
	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks())
	report.Check(t)
	for _, line := range strings.Split(leader.Tail(400), "\n") {
		if strings.Contains(line, "truncat") {
			t.Logf("%s: %s", leader.Name, line)
		}
	}
	t.Logf("seed %d: checked %d acknowledged records after killing leader %s; replicas identical", seed, report.Acked, leader.Name)
}

func strPtr(s string) *string { return &s }

// partitionLeader returns the leader of a partition in Metadata, waiting
// until it has one.
func partitionLeader(t *testing.T, c *harness.Cluster, topic string, part int32) int32 {
	t.Helper()
	adm := c.Admin(t)
	leader := int32(-1)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		p, ok := topics[topic].Partitions[part]
		if !ok || p.Leader < 0 {
			return false, "no leader yet"
		}
		leader = p.Leader
		return true, ""
	})
	return leader
}

// checkReplicasIdentical waits until every broker's replica of each
// partition holds the same bytes (its .log segments concatenated in offset
// order), then checks that the segment files match one by one, by name and
// content.
func checkReplicasIdentical(t *testing.T, c *harness.Cluster, topic string, partitions int, timeout time.Duration) {
	t.Helper()
	checkReplicasIdenticalOn(t, c.Brokers, topic, partitions, timeout)
}

// checkReplicasIdenticalOn is checkReplicasIdentical over the given brokers
// only.
func checkReplicasIdenticalOn(t *testing.T, brokers []*harness.Node, topic string, partitions int, timeout time.Duration) {
	t.Helper()
	for p := range partitions {
		dirs := make([]string, len(brokers))
		for i, b := range brokers {
			dirs[i] = filepath.Join(b.DataDir, topic+"-"+strconv.Itoa(p))
		}
		var segs [][]segmentFile
		harness.WaitFor(t, timeout, func() (bool, string) {
			segs = segs[:0]
			var sums []string
			for _, dir := range dirs {
				s, err := readSegments(dir)
				if err != nil {
					return false, err.Error()
				}
				segs = append(segs, s)
				sums = append(sums, digest(s))
			}
			for _, s := range sums[1:] {
				if s != sums[0] {
					return false, fmt.Sprintf("partition %d replicas differ: %s", p, strings.Join(sums, " | "))
				}
			}
			return true, ""
		})
		for i := 1; i < len(segs); i++ {
			if len(segs[i]) != len(segs[0]) {
				t.Errorf("partition %d: %s has %d segments, %s has %d", p, dirs[0], len(segs[0]), dirs[i], len(segs[i]))
				continue
			}
			for j := range segs[i] {
				a, b := segs[0][j], segs[i][j]
				if a.name != b.name || !bytes.Equal(a.data, b.data) {
					t.Errorf("partition %d: segment %s (%d bytes) of %s differs from %s (%d bytes) of %s",
						p, a.name, len(a.data), dirs[0], b.name, len(b.data), dirs[i])
				}
			}
		}
		if len(segs) > 0 {
			var size int
			for _, s := range segs[0] {
				size += len(s.data)
			}
			t.Logf("partition %d: %d replicas identical (%d segment files, %d bytes)", p, len(segs), len(segs[0]), size)
		}
	}
}

type segmentFile struct {
	name string
	data []byte
}

func readSegments(dir string) ([]segmentFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names) // zero-padded base offsets sort in offset order
	var out []segmentFile
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 && len(names) > 1 {
			continue // an empty active segment right after a roll
		}
		out = append(out, segmentFile{name: filepath.Base(n), data: b})
	}
	return out, nil
}

// digest is the size and SHA-256 of the segments' concatenated bytes.
func digest(segs []segmentFile) string {
	h := sha256.New()
	n := 0
	for _, s := range segs {
		h.Write(s.data)
		n += len(s.data)
	}
	return fmt.Sprintf("%d bytes %x", n, h.Sum(nil)[:6])
}

// checkLogDirSizes asks every broker for its log dirs (DescribeLogDirs,
// kadm's DescribeAllLogDirs): each must report every partition of topic
// with a size above zero, the same on every broker (identical replicas).
func checkLogDirSizes(t *testing.T, c *harness.Cluster, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dirs, err := c.Admin(t).DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	sizes := map[int32]int64{}
	for _, b := range c.Brokers {
		bd, ok := dirs[b.ID]
		if !ok || len(bd) != 1 {
			t.Fatalf("broker %d: %d log dirs in %v, want 1", b.ID, len(bd), dirs)
		}
		for _, d := range bd {
			if d.Err != nil {
				t.Fatalf("broker %d: log dir %s: %v", b.ID, d.Dir, d.Err)
			}
			for p := range int32(partitions) {
				lp, ok := d.Topics[topic][p]
				if !ok || lp.Size <= 0 {
					t.Fatalf("broker %d: %s-%d: %+v, want a size > 0", b.ID, topic, p, lp)
				}
				if want, seen := sizes[p]; seen && want != lp.Size {
					t.Errorf("broker %d: %s-%d is %d bytes, another replica %d", b.ID, topic, p, lp.Size, want)
				}
				sizes[p] = lp.Size
			}
		}
	}
	t.Logf("DescribeLogDirs: %s sizes %v on every broker", topic, sizes)
}
