package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// skipUnlessSlow skips a test that takes tens of seconds unless
// SKEIN_SLOW_TESTS=1 (`make test-slow`): `make test` stays within its
// budget without them.
func skipUnlessSlow(t *testing.T) {
	t.Helper()
	if os.Getenv("SKEIN_SLOW_TESTS") != "1" {
		t.Skip("slow test: run with SKEIN_SLOW_TESTS=1 (make test-slow)")
	}
}

// throttleKeys are the KIP-73 configs `skein reassign execute --throttle`
// sets: the first two per broker, the last two per topic.
var throttleKeys = []string{
	"leader.replication.throttled.rate", "follower.replication.throttled.rate",
	"leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
}

// TestReassignThrottle is issue 12's acceptance check of a throttled move:
// on 4 brokers, partition 0 of "moving" (RF 1, on 101) holds ~21 MB of
// incompressible 1 KiB values; `skein reassign execute --throttle 1MB/s
// --wait` moves it to 101,104. The throttle configs must show on the
// brokers and the topic while it moves; the move must take at least 15 s
// (about 21 s at 1 MB/s); `skein reassign verify` then exits 0, and no
// throttle config is left. Meanwhile an acks=all load of 50 records/s of
// 1 KiB to "load" (RF 2 on 101,104, the same brokers, unthrottled) must
// see no failed produce and a p99 under 1 s.
//
// It takes about 30 s: it runs only with SKEIN_SLOW_TESTS=1.
func TestReassignThrottle(t *testing.T) {
	skipUnlessSlow(t)
	const (
		records   = 20_480
		valueSize = 1024
		loadRate  = 50 // records per second
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 4})
	createAssigned(t, c, "moving", []int32{101})
	createAssigned(t, c, "load", []int32{101, 104})
	waitISR(t, c.Broker(101), "load", 30*time.Second, 101, 104)

	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond))
	produceRandom(t, cl, "moving", records, valueSize)
	size := logBytes(t, c.Broker(101), "moving")

	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[101,104]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	load := startRateLoad(t, c, "load", loadRate, valueSize)
	adm := c.Admin(t)
	start := time.Now()
	done := make(chan harness.CLIResult, 1)
	go func() {
		done <- c.RunCLI(t, 3*time.Minute, nil, "reassign", "execute", "--plan", plan, "--throttle", "1MB/s", "--wait",
			"--interval", "200ms", "--no-progress")
	}()
	// While it moves, the throttle is set on both brokers and on the topic.
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		set := throttleConfigs(t, adm, "moving", 101, 104)
		return len(set) == 2*2+2, fmt.Sprintf("throttle configs set: %v", set)
	})
	var res harness.CLIResult
	select {
	case res = <-done:
	case <-time.After(4 * time.Minute):
		t.Fatal("skein reassign execute --wait did not return")
	}
	took := time.Since(start)
	stats := load()
	if res.Err != nil {
		t.Fatalf("skein reassign execute: %v\nstdout: %s\nstderr: %s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("moved %d bytes at --throttle 1MB/s in %v (%.2f MB/s); load on the same brokers: %s",
		size, took.Round(time.Millisecond), float64(size)/took.Seconds()/1e6, stats)
	if took < 15*time.Second {
		t.Errorf("a %d-byte move at 1 MB/s took %v, want >= 15s", size, took)
	}
	if stats.failed > 0 || stats.acked < int64(took.Seconds()*loadRate/2) || stats.p99 >= time.Second {
		t.Errorf("load during the move: %s; want no failure, at least half the %d/s rate acknowledged and p99 < 1s", stats, loadRate)
	}

	verify := c.RunCLI(t, time.Minute, nil, "reassign", "verify", "--plan", plan)
	if verify.Err != nil {
		t.Fatalf("skein reassign verify: %v\nstdout: %s\nstderr: %s", verify.Err, verify.Stdout, verify.Stderr)
	}
	if left := throttleConfigs(t, adm, "moving", 101, 104); len(left) > 0 {
		t.Errorf("throttle configs left after verify: %v", left)
	}
	waitAssignment(t, c, "moving", map[int32][]int32{0: {101, 104}}, 30*time.Second)
	waitCaughtUp(t, c.Broker(101), c.Broker(104), "moving", time.Now(), 30*time.Second)
	checkTwoReplicasIdentical(t, c.Broker(101), c.Broker(104), "moving")
}

// throttleConfigs lists the throttle configs set (dynamic) on the brokers
// and topic, as "name: key=value".
func throttleConfigs(t *testing.T, adm *kadm.Client, topic string, brokers ...int32) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var set []string
	collect := func(rcs kadm.ResourceConfigs, err error) {
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				t.Fatalf("describe configs of %s: %v", rc.Name, rc.Err)
			}
			for _, cfg := range rc.Configs {
				dynamic := cfg.Source == kmsg.ConfigSourceDynamicBrokerConfig || cfg.Source == kmsg.ConfigSourceDynamicTopicConfig
				for _, k := range throttleKeys {
					if cfg.Key == k && dynamic && cfg.MaybeValue() != "" {
						set = append(set, fmt.Sprintf("%s: %s=%s", rc.Name, k, cfg.MaybeValue()))
					}
				}
			}
		}
	}
	for _, b := range brokers {
		collect(adm.DescribeBrokerConfigs(ctx, b))
	}
	collect(adm.DescribeTopicConfigs(ctx, topic))
	return set
}

// loadStats is what a rate load saw.
type loadStats struct {
	acked, failed  int64
	firstErr       error
	p50, p99, p999 time.Duration
	max            time.Duration
}

func (s loadStats) String() string {
	return fmt.Sprintf("%d acknowledged, %d failed (first error %v), latency p50 %v p99 %v p99.9 %v max %v",
		s.acked, s.failed, s.firstErr, s.p50, s.p99, s.p999, s.max)
}

// startRateLoad produces perSecond records of size bytes per second to
// partition 0 of topic with acks=all, from its own client, until the
// returned function is called; that waits for the outstanding records and
// returns the latencies (Produce call to acknowledgement).
func startRateLoad(t *testing.T, c *harness.Cluster, topic string, perSecond, size int) func() loadStats {
	t.Helper()
	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	var mu sync.Mutex
	var st loadStats
	h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	value := make([]byte, size)
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sent := time.Now()
			cl.Produce(context.Background(), &kgo.Record{Partition: 0, Value: value}, func(_ *kgo.Record, err error) {
				latency := time.Since(sent)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					st.failed++
					if st.firstErr == nil {
						st.firstErr = err
					}
					return
				}
				st.acked++
				_ = h.RecordValue(max(1, latency.Microseconds()))
			})
		}
	}()
	var once sync.Once
	stop := func() loadStats {
		once.Do(func() {
			cancel()
			<-finished
			fctx, fcancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer fcancel()
			if err := cl.Flush(fctx); err != nil {
				mu.Lock()
				if st.firstErr == nil {
					st.firstErr = fmt.Errorf("flush: %w", err)
				}
				st.failed++
				mu.Unlock()
			}
		})
		mu.Lock()
		defer mu.Unlock()
		us := func(q float64) time.Duration { return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond }
		st.p50, st.p99, st.p999, st.max = us(50), us(99), us(99.9), time.Duration(h.Max())*time.Microsecond
		return st
	}
	t.Cleanup(func() { stop() })
	return stop
}
