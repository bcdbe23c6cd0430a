package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestThrottleFollowerCatchUp exercises the KIP-73 replication throttle as
// `skein reassign execute --throttle` sets it, with kadm: per-broker rates
// of 1 MB/s (leader and follower side) on brokers 101 and 102, and topic
// "throttled" (one partition on 101 and 102, led by 101) listing 0:101 on
// the leader side and 0:102 on the follower side.
//
// Broker 102 is stopped, ~6.3 MB (6,144 incompressible 1 KiB values) are
// produced, and 102 restarted: its catch-up must take at least 70% of what
// the rate allows past the throttle's 1 MiB burst (about 5 s at 1 MB/s;
// unthrottled, it takes well under a second), while acks=all produces to
// "free" (same brokers, unthrottled) keep working and 102 rejoins free's
// ISR long before. Then 102 is stopped again, another ~6.3 MB produced,
// 102 restarted, and the throttle configs removed (as `reassign verify`
// does) once it is catching up: the rest follows in a fraction of the time
// the rate would allow. The replicas end byte-identical.
func TestThrottleFollowerCatchUp(t *testing.T) {
	const (
		rate      = 1_000_000
		records   = 6_144
		valueSize = 1024
		// burst is the throttle's bucket (dataplane/throttle's minBurst
		// at this rate): that much goes through at once.
		burst = 1 << 20
		// minTook is the shortest throttled catch-up accepted.
		minTook = time.Duration(0.7 * (records*valueSize - burst) / rate * float64(time.Second))
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3})
	leader, follower := c.Broker(101), c.Broker(102)
	createAssigned(t, c, "throttled", []int32{101, 102})
	createAssigned(t, c, "free", []int32{101, 102})
	waitISR(t, leader, "throttled", 30*time.Second, 101, 102)
	waitISR(t, leader, "free", 30*time.Second, 101, 102)

	adm := c.Admin(t)
	setThrottle(t, adm, rate)
	// The rates show as this broker's own (DYNAMIC_BROKER_CONFIG).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	described, err := adm.DescribeBrokerConfigs(ctx, 102)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rc := range described {
		for _, cfg := range rc.Configs {
			if cfg.Key == "follower.replication.throttled.rate" {
				found = true
				if cfg.Value == nil || *cfg.Value != fmt.Sprint(rate) || cfg.Source != kmsg.ConfigSourceDynamicBrokerConfig {
					t.Fatalf("broker 102 follower rate: %v from %v", cfg.MaybeValue(), cfg.Source)
				}
			}
		}
	}
	if !found {
		t.Fatal("broker 102 does not describe follower.replication.throttled.rate")
	}

	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond))

	// Phase 1: a throttled catch-up.
	follower.MustStop()
	waitISR(t, leader, "throttled", 30*time.Second, 101)
	produceRandom(t, cl, "throttled", records, valueSize)
	load := startLoad(t, cl, "free")
	start := time.Now()
	follower.Restart()
	waitISR(t, leader, "free", 15*time.Second, 101, 102)
	freeBack := time.Since(start)
	took := waitCaughtUp(t, leader, follower, "throttled", start, 120*time.Second)
	produced, maxLatency, loadErr := load()
	t.Logf("throttled catch-up of %d bytes took %v (%.2f MB/s); 102 rejoined free's ISR after %v; "+
		"free: %d acks=all produces during it, slowest %v",
		logBytes(t, leader, "throttled"), took.Round(time.Millisecond),
		float64(logBytes(t, leader, "throttled"))/took.Seconds()/1e6, freeBack.Round(time.Millisecond), produced, maxLatency)
	if took < minTook {
		t.Errorf("catch-up of %d bytes at a %d B/s throttle took %v, want >= %v", records*valueSize, rate, took, minTook)
	}
	// At least one produce a second on average (one each 100 ms when
	// nothing holds them up).
	if loadErr != nil || produced < max(5, int(took/time.Second)) || maxLatency > 5*time.Second {
		t.Errorf("produces to the unthrottled partition during the catch-up: %d, slowest %v, error %v", produced, maxLatency, loadErr)
	}
	for _, n := range []*harness.Node{leader, follower} {
		side := map[int32]string{101: "leader", 102: "follower"}[n.ID]
		if log := n.LogSince(0); !strings.Contains(log, "replication throttle applies") || !strings.Contains(log, "side="+side) {
			t.Errorf("%s's log has no 'replication throttle applies' line for the %s side", n.Name, side)
		}
	}

	// Phase 2: the throttle removed while 102 catches up.
	follower.MustStop()
	waitISR(t, leader, "throttled", 30*time.Second, 101)
	produceRandom(t, cl, "throttled", records, valueSize)
	before := logBytes(t, follower, "throttled")
	start = time.Now()
	follower.Restart()
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := logBytes(t, follower, "throttled")
		return got > before, fmt.Sprintf("102 holds %d bytes, %d before the restart", got, before)
	})
	left := logBytes(t, leader, "throttled") - logBytes(t, follower, "throttled")
	removed := time.Now() // the config change's own latency counts
	removeThrottle(t, adm)
	waitCaughtUp(t, leader, follower, "throttled", removed, 60*time.Second)
	rest := time.Since(removed)
	t.Logf("throttle removed %v after the restart with %d bytes left: caught up %v later", removed.Sub(start).Round(time.Millisecond),
		left, rest.Round(time.Millisecond))
	if left < records*valueSize/2 {
		t.Errorf("the throttle was removed with only %d bytes left to copy, want at least half of the %d produced", left, records*valueSize)
	}
	if atRate := time.Duration(float64(left) / rate * float64(time.Second)); rest > atRate/2 {
		t.Errorf("after the throttle was removed, %d bytes took %v (the throttle would take %v)", left, rest, atRate)
	}

	for _, topic := range []string{"throttled", "free"} {
		waitCaughtUp(t, leader, follower, topic, time.Now(), 30*time.Second)
		checkTwoReplicasIdentical(t, leader, follower, topic)
	}
}

// setThrottle sets what `skein reassign execute --throttle` sets for a move
// of throttled-0 from 101 to 102: the rates on both brokers (per broker),
// the leader side 0:101, the follower side 0:102.
func setThrottle(t *testing.T, adm *kadm.Client, rate int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v := fmt.Sprint(rate)
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: &v},
		{Op: kadm.SetConfig, Name: "follower.replication.throttled.rate", Value: &v},
	}, 101, 102)
	if err == nil {
		err = firstAlterErr(resps)
	}
	if err != nil {
		t.Fatalf("set the throttle rates: %v", err)
	}
	l, f := "0:101", "0:102"
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "leader.replication.throttled.replicas", Value: &l},
		{Op: kadm.SetConfig, Name: "follower.replication.throttled.replicas", Value: &f},
	}, "throttled")
	if err == nil {
		err = firstAlterErr(resps)
	}
	if err != nil {
		t.Fatalf("set the throttled replicas: %v", err)
	}
}

// removeThrottle deletes the throttle configs, as `skein reassign verify`
// does.
func removeThrottle(t *testing.T, adm *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.replicas"},
		{Op: kadm.DeleteConfig, Name: "follower.replication.throttled.replicas"},
	}, "throttled")
	if err == nil {
		err = firstAlterErr(resps)
	}
	if err != nil {
		t.Fatalf("remove the throttled replicas: %v", err)
	}
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"},
		{Op: kadm.DeleteConfig, Name: "follower.replication.throttled.rate"},
	}, 101, 102)
	if err == nil {
		err = firstAlterErr(resps)
	}
	if err != nil {
		t.Fatalf("remove the throttle rates: %v", err)
	}
}

func firstAlterErr(resps kadm.AlterConfigsResponses) error {
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("%s: %w (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// produceRandom produces n incompressible values of size bytes to
// partition 0 of topic and waits for every acknowledgement.
func produceRandom(t *testing.T, cl *kgo.Client, topic string, n, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	var firstErr error
	for range n {
		v := make([]byte, size)
		_, _ = rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush to %s: %v", topic, err)
	}
	if firstErr != nil {
		t.Fatalf("produce to %s: %v", topic, firstErr)
	}
	t.Logf("produced %d × %d bytes to %s in %v", n, size, topic, time.Since(start).Round(time.Millisecond))
}

// startLoad produces one record at a time (acks=all) to topic until the
// returned function is called, which returns how many were acknowledged,
// the slowest acknowledgement and the first error.
func startLoad(t *testing.T, cl *kgo.Client, topic string) func() (int, time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var n int
	var slowest time.Duration
	var firstErr error
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			start := time.Now()
			pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
			err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte(harness.Value("free", int64(n)))}).FirstErr()
			pcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			n++
			slowest = max(slowest, time.Since(start))
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	stopped := false
	stop := func() (int, time.Duration, error) {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
		return n, slowest, firstErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// logBytes is the size of the .log segments of partition 0 of topic on n.
func logBytes(t *testing.T, n *harness.Node, topic string) int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(n.DataDir, topic+"-0", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, name := range names {
		if fi, err := os.Stat(name); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// waitCaughtUp waits until follower's replica of partition 0 of topic
// holds as many log bytes as leader's, and returns the time since start.
func waitCaughtUp(t *testing.T, leader, follower *harness.Node, topic string, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		l, f := logBytes(t, leader, topic), logBytes(t, follower, topic)
		return l > 0 && l == f, fmt.Sprintf("%s-0: leader %d bytes, follower %d after %v", topic, l, f, time.Since(start).Round(time.Second))
	})
	return time.Since(start)
}

// checkTwoReplicasIdentical checks that the two brokers' segments of
// partition 0 of topic match file by file.
func checkTwoReplicasIdentical(t *testing.T, a, b *harness.Node, topic string) {
	t.Helper()
	sa, err := readSegments(filepath.Join(a.DataDir, topic+"-0"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := readSegments(filepath.Join(b.DataDir, topic+"-0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sa) != len(sb) {
		t.Fatalf("%s-0: %d segments on %s, %d on %s", topic, len(sa), a.Name, len(sb), b.Name)
	}
	for i := range sa {
		if sa[i].name != sb[i].name || !bytes.Equal(sa[i].data, sb[i].data) {
			t.Fatalf("%s-0: segment %s (%d bytes) on %s differs from %s (%d bytes) on %s", topic, sa[i].name, len(sa[i].data), a.Name,
				sb[i].name, len(sb[i].data), b.Name)
		}
	}
	t.Logf("%s-0: replicas identical (%s)", topic, digest(sa))
}
