// Command reassign is the partition reassignment benchmark of issue 12
// (`make bench-reassign`; never part of `make test`). It starts 1
// controller and 4 brokers of the skein binary ($SKEIN_BIN, default
// bin/skein) as separate processes on loopback (test/bench/benchcluster),
// and measures, under a fixed-rate acks=all produce load to topic "load"
// (one partition on brokers 101 and 104, led by 101: the brokers the moves
// copy between):
//
//   - baseline: the load alone for BENCH_BASELINE (20s), no move.
//   - unthrottled move: a partition holding BENCH_MB MB (default 200) of
//     1 KiB random values on 101 alone gets a replica on 104 (`skein
//     reassign execute --plan F --wait`): the time until 104's copy holds
//     every byte (copy), the time until execute --wait returned (the
//     reassignment complete), and the copy speed in MB/s.
//   - throttled move: the same with --throttle BENCH_THROTTLE (10MB/s),
//     on a second partition loaded the same way.
//
// For each phase the load's acknowledged records, failures and latency
// percentiles (p50, p99, p99.9, max; HdrHistogram) over the phase are
// printed as one table on stdout. Latency runs from the time a record was
// due by the fixed rate to its acknowledgement, so a producer that falls
// behind shows it (no coordinated omission). The load is BENCH_LOAD_RATE
// records/s (5000) of BENCH_RECORD bytes (1024). MB are 10^6 bytes, as
// --throttle's MB.
//
// Every phase is bounded (BENCH_MOVE_BOUND, 5m, for each move); a move that
// does not finish prints "> bound" and the run goes on. Node logs and data
// stay in a temporary directory, kept with BENCH_KEEP=1. The load average
// is printed at the start and the end: the figures are only comparable on
// an otherwise idle machine.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/bench/benchcluster"
)

const (
	loadTopic = "load"
	source    = 101 // the moving partitions' first replica and the load's leader
	target    = 104 // the replica the moves add
	pollEvery = 100 * time.Millisecond
)

// config is read from the environment.
type config struct {
	bin        string
	mb         int
	loadRate   int
	recordSize int
	throttle   string
	baseline   time.Duration
	moveBound  time.Duration
	keep       bool
	logLevel   string
	cmdLine    string
}

func envInt(key string, def int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", key, v)
	}
	return n, nil
}

func envDuration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive Go duration", key, v)
	}
	return d, nil
}

func loadConfig() (config, error) {
	c := config{bin: os.Getenv("SKEIN_BIN"), throttle: os.Getenv("BENCH_THROTTLE"), keep: os.Getenv("BENCH_KEEP") == "1",
		logLevel: os.Getenv("BENCH_LOG_LEVEL")}
	if c.bin == "" {
		c.bin = "bin/skein"
	}
	if c.throttle == "" {
		c.throttle = "10MB/s"
	}
	if c.logLevel == "" {
		c.logLevel = "info"
	}
	abs, err := filepath.Abs(c.bin)
	if err != nil {
		return c, err
	}
	c.bin = abs
	if _, err := os.Stat(c.bin); err != nil {
		return c, fmt.Errorf("skein binary (SKEIN_BIN): %w; run make build", err)
	}
	if c.mb, err = envInt("BENCH_MB", 200); err != nil {
		return c, err
	}
	if c.loadRate, err = envInt("BENCH_LOAD_RATE", 5000); err != nil {
		return c, err
	}
	if c.recordSize, err = envInt("BENCH_RECORD", 1024); err != nil {
		return c, err
	}
	if c.baseline, err = envDuration("BENCH_BASELINE", 20*time.Second); err != nil {
		return c, err
	}
	if c.moveBound, err = envDuration("BENCH_MOVE_BOUND", 5*time.Minute); err != nil {
		return c, err
	}
	c.cmdLine = fmt.Sprintf("BENCH_MB=%d BENCH_LOAD_RATE=%d BENCH_THROTTLE=%s SKEIN_BIN=%s make bench-reassign",
		c.mb, c.loadRate, c.throttle, c.bin)
	return c, nil
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-reassign:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-reassign:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	phase    string
	moved    string // bytes moved, "-" without a move
	copyTime string // until the new replica held every byte
	complete string // until execute --wait returned
	speed    string // MB/s over the copy
	load     loadStats
	loadFor  time.Duration
}

// bench holds the running cluster.
type bench struct {
	cfg     config
	dir     string
	ctrls   []*benchcluster.Node
	brokers []*benchcluster.Node
	cl      *kgo.Client
}

func (b *bench) broker(id int32) *benchcluster.Node {
	for _, n := range b.brokers {
		if n.ID == id {
			return n
		}
	}
	panic(fmt.Sprintf("no broker %d", id))
}

// seeds are the brokers' addresses.
func (b *bench) seeds() []string {
	var addrs []string
	for _, n := range b.brokers {
		addrs = append(addrs, n.Addr)
	}
	return addrs
}

func run(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "skein-bench-reassign-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, dir: dir}
	b.ctrls, b.brokers, err = benchcluster.New(benchcluster.Layout{Bin: cfg.bin, Dir: dir, LogLevel: cfg.logLevel,
		Controllers: 1, Brokers: 4})
	if err != nil {
		return err
	}
	defer func() {
		if b.cl != nil {
			b.cl.Close()
		}
		benchcluster.Teardown(dir, cfg.keep, b.ctrls, b.brokers)
	}()
	fmt.Fprintf(os.Stderr, "bench-reassign: %d MB per move, data and logs under %s\n", cfg.mb, dir)
	loadAtStart := loadAvg()

	if err := b.startAll(ctx); err != nil {
		return err
	}
	if b.cl, err = kgo.NewClient(kgo.SeedBrokers(b.seeds()...), kgo.ClientID("skein-bench-reassign")); err != nil {
		return err
	}
	for _, tc := range []struct {
		topic    string
		replicas []int32
	}{{loadTopic, []int32{source, target}}, {"move-free", []int32{source}}, {"move-throttled", []int32{source}}} {
		if err := b.createTopic(ctx, tc.topic, tc.replicas); err != nil {
			return err
		}
	}

	var rows []row
	// Baseline: the load alone.
	fmt.Fprintf(os.Stderr, "baseline: the load alone for %v\n", cfg.baseline)
	load, err := b.startLoad()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.baseline):
	}
	st, took := load()
	rows = append(rows, row{phase: "baseline (no move)", moved: "-", copyTime: "-", complete: "-", speed: "-", load: st, loadFor: took})

	for _, m := range []struct{ topic, throttle string }{{"move-free", ""}, {"move-throttled", cfg.throttle}} {
		if ctx.Err() != nil {
			break
		}
		rows = append(rows, b.move(ctx, m.topic, m.throttle))
	}

	fmt.Printf("bench-reassign: a partition of %d MB on broker %d gets a replica on %d, while %d records/s of %d B "+
		"(acks=all) go to %q (on %d,%d)\n", cfg.mb, source, target, cfg.loadRate, cfg.recordSize, loadTopic, source, target)
	fmt.Printf("command: %s\n", cfg.cmdLine)
	fmt.Printf("machine: %d CPUs (runtime.NumCPU), load average at start %s, at end %s\n", runtime.NumCPU(), loadAtStart, loadAvg())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tMOVED\tCOPY\tCOMPLETE\tMB/s\tLOAD ACKED/s\tFAILED\tp50\tp99\tp99.9\tmax")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%s\t%s\t%s\t%s\n", r.phase, r.moved, r.copyTime, r.complete, r.speed,
			float64(r.load.acked)/r.loadFor.Seconds(), r.load.failed, ms(r.load.p50), ms(r.load.p99), ms(r.load.p999), ms(r.load.max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.load.firstErr != nil {
			fmt.Printf("%s: first load error: %v\n", r.phase, r.load.firstErr)
		}
	}
	return ctx.Err()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// startAll starts the controller, then the brokers, and waits until each
// broker's Metadata lists all four.
func (b *bench) startAll(ctx context.Context) error {
	all := append(append([]*benchcluster.Node{}, b.ctrls...), b.brokers...)
	for _, n := range all {
		if err := n.Start(); err != nil {
			return err
		}
	}
	return waitUntil(ctx, time.Minute, "the cluster to start", func() (bool, string) {
		for _, n := range all {
			if !n.Running() {
				return false, n.Name + " exited; see " + n.LogPath
			}
			if !benchcluster.Dialable(n.Addr) {
				return false, n.Name + " not listening yet"
			}
		}
		for _, n := range b.brokers {
			resp, err := request(ctx, n.Addr, kmsg.NewPtrMetadataRequest())
			if err != nil {
				return false, err.Error()
			}
			if got := len(resp.(*kmsg.MetadataResponse).Brokers); got < len(b.brokers) {
				return false, fmt.Sprintf("%s lists %d brokers", n.Name, got)
			}
		}
		return true, ""
	})
}

// request sends req to the broker at addr only.
func request(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cl.SeedBrokers()[0].Request(rctx, req)
}

// waitUntil polls cond until it holds, bound passes or ctx ends.
func waitUntil(ctx context.Context, bound time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(bound)
	for {
		ok, last := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s: %s", bound, what, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// createTopic creates a one-partition topic on replicas and waits until
// every broker's Metadata shows it led with a full ISR.
func (b *bench) createTopic(ctx context.Context, topic string, replicas []int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	a.Partition, a.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	req.Topics = append(req.Topics, rt)
	cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	resp, err := req.RequestWith(cctx, b.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("create %s on %v: %w", topic, replicas, err)
	}
	return waitUntil(ctx, 30*time.Second, topic+" to be led with a full ISR", func() (bool, string) {
		for _, n := range b.brokers {
			p, err := partitionOf(ctx, n.Addr, topic)
			if err != nil {
				return false, err.Error()
			}
			if p.Leader < 0 || len(p.ISR) != len(replicas) {
				return false, fmt.Sprintf("%s: %s leader %d ISR %v", n.Name, topic, p.Leader, p.ISR)
			}
		}
		return true, ""
	})
}

// partitionOf is partition 0 of topic as the broker at addr describes it.
func partitionOf(ctx context.Context, addr, topic string) (kmsg.MetadataResponseTopicPartition, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := request(ctx, addr, req)
	if err != nil {
		return kmsg.MetadataResponseTopicPartition{}, err
	}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("%s at %s: %w", topic, addr, err)
		}
		for _, p := range t.Partitions {
			if p.Partition == 0 {
				return p, nil
			}
		}
	}
	return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("%s at %s: no partition 0", topic, addr)
}

// fill produces cfg.mb MB of random values of cfg.recordSize bytes to
// partition 0 of topic, as fast as the cluster takes them.
func (b *bench) fill(ctx context.Context, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Distinct random values: a window of a random buffer at each offset.
	pool := make([]byte, 1<<20+b.cfg.recordSize)
	_, _ = rand.Read(pool)
	n := b.cfg.mb * 1_000_000 / b.cfg.recordSize
	start := time.Now()
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		off := (i * 4099) % (1 << 20)
		cl.Produce(ctx, &kgo.Record{Partition: 0, Value: pool[off : off+b.cfg.recordSize]}, func(_ *kgo.Record, err error) {
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
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("fill %s: %w", topic, firstErr)
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "filled %s with %d records (%d MB) in %v (%.0f MB/s)\n", topic, n, b.cfg.mb,
		took.Round(time.Millisecond), float64(n*b.cfg.recordSize)/1e6/took.Seconds())
	return nil
}

// move fills topic, starts the load and runs `skein reassign execute
// --wait` (with --throttle when throttle is set) to add the replica on 104,
// and returns the row of the phase.
func (b *bench) move(ctx context.Context, topic, throttle string) row {
	phase := "unthrottled move"
	if throttle != "" {
		phase = "move --throttle " + throttle
	}
	r := row{phase: phase, moved: "?", copyTime: "?", complete: "?", speed: "?"}
	fail := func(err error) row {
		fmt.Fprintf(os.Stderr, "%s: %v\n", phase, err)
		r.load.firstErr = err
		if r.loadFor == 0 {
			r.loadFor = time.Second
		}
		return r
	}
	if err := b.fill(ctx, topic); err != nil {
		return fail(err)
	}
	src, dst := b.broker(source), b.broker(target)
	size := logBytes(src.DataDir, topic)
	r.moved = fmt.Sprintf("%.0f MB", float64(size)/1e6)
	plan := filepath.Join(b.dir, topic+".plan.json")
	if err := os.WriteFile(plan, []byte(fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":[%d,%d]}]}`,
		topic, source, target)), 0o644); err != nil {
		return fail(err)
	}
	args := []string{"reassign", "execute", "--plan", plan, "--wait", "--interval", "200ms", "--no-progress",
		"--bootstrap-server", strings.Join(b.seeds(), ",")}
	if throttle != "" {
		args = append(args, "--throttle", throttle)
	}
	load, err := b.startLoad()
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "%s: skein %s\n", phase, strings.Join(args, " "))
	mctx, cancel := context.WithTimeout(ctx, b.cfg.moveBound)
	defer cancel()
	start := time.Now()
	// The copy is done when the new replica's log is as large as the
	// source's (nothing else is written to topic meanwhile).
	copied := make(chan time.Duration, 1)
	go func() {
		for mctx.Err() == nil {
			if logBytes(dst.DataDir, topic) >= size {
				copied <- time.Since(start)
				return
			}
			select {
			case <-mctx.Done():
			case <-time.After(pollEvery):
			}
		}
	}()
	cmd := exec.CommandContext(mctx, b.cfg.bin, args...)
	out, err := cmd.CombinedOutput()
	complete := time.Since(start)
	r.load, r.loadFor = load()
	switch {
	case mctx.Err() != nil:
		r.complete = "> " + b.cfg.moveBound.String()
		fmt.Fprintf(os.Stderr, "%s: not complete within %v; output:\n%s", phase, b.cfg.moveBound, out)
	case err != nil:
		r.complete = "failed"
		fmt.Fprintf(os.Stderr, "%s: %v; output:\n%s", phase, err, out)
	default:
		r.complete = fmt.Sprintf("%.1f s", complete.Seconds())
	}
	select {
	case d := <-copied:
		r.copyTime = fmt.Sprintf("%.1f s", d.Seconds())
		r.speed = fmt.Sprintf("%.1f", float64(size)/1e6/d.Seconds())
	case <-time.After(2 * pollEvery):
		r.copyTime = "not copied"
	}
	return r
}

// logBytes is the size of the .log segments of partition 0 of topic under
// a broker's data directory.
func logBytes(dataDir, topic string) int64 {
	names, _ := filepath.Glob(filepath.Join(dataDir, topic+"-0", "*.log"))
	var total int64
	for _, name := range names {
		if fi, err := os.Stat(name); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// loadStats is what the load saw over one phase.
type loadStats struct {
	acked, failed  int64
	firstErr       error
	p50, p99, p999 time.Duration
	max            time.Duration
}

// startLoad produces cfg.loadRate records/s of cfg.recordSize bytes to
// partition 0 of the load topic with acks=all from a client of its own,
// until the returned function is called; that waits for the records in
// flight and returns what the load saw and for how long it ran.
func (b *bench) startLoad() (func() (loadStats, time.Duration), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds()...), kgo.DefaultProduceTopic(loadTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(time.Minute))
	if err != nil {
		return nil, err
	}
	value := make([]byte, b.cfg.recordSize)
	_, _ = rand.Read(value)
	var mu sync.Mutex
	var st loadStats
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	stopCh := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	var ran time.Duration
	go func() {
		defer close(finished)
		interval := time.Second / time.Duration(b.cfg.loadRate)
		for i := int64(0); ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if wait := time.Until(due); wait > 0 {
				select {
				case <-stopCh:
					ran = time.Since(start)
					return
				case <-time.After(wait): // pacing to the fixed rate, not waiting for a condition
				}
			} else {
				select {
				case <-stopCh:
					ran = time.Since(start)
					return
				default:
				}
			}
			cl.Produce(context.Background(), &kgo.Record{Partition: 0, Value: value}, func(_ *kgo.Record, err error) {
				latency := time.Since(due)
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
	return func() (loadStats, time.Duration) {
		close(stopCh)
		<-finished
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cl.Flush(fctx); err != nil && !errors.Is(err, context.Canceled) {
			mu.Lock()
			if st.firstErr == nil {
				st.firstErr = fmt.Errorf("flush: %w", err)
			}
			mu.Unlock()
		}
		cl.Close()
		mu.Lock()
		defer mu.Unlock()
		us := func(q float64) time.Duration { return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond }
		st.p50, st.p99, st.p999, st.max = us(50), us(99), us(99.9), time.Duration(h.Max())*time.Microsecond
		return st, ran
	}, nil
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
