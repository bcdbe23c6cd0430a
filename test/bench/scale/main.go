// Command scale is the metadata-at-scale benchmark of issue 11 (`make
// bench-scale`; never part of `make test`). It starts 3 controllers and 3
// brokers of the skein binary ($SKEIN_BIN, default bin/skein) as separate
// processes on loopback, each with its own data directory under a
// temporary directory, creates BENCH_PARTITIONS partitions (default 10000)
// of RF 3 as topics of 100 partitions, and prints one table of figures on
// stdout (node logs stay in the temporary directory, kept with
// BENCH_KEEP=1):
//
//   - create: time until every CreateTopics request (one per topic, one
//     after another, as an operator's script would) was answered; then
//     settle: time from the first request until every partition has a
//     leader and a full ISR in Metadata.
//   - idle CPU: utime+stime from /proc/<pid>/stat of the 6 processes over
//     BENCH_IDLE (30s) once created, as % of one core, for the cluster and
//     per process; RSS (VmRSS) per process at the end of that window.
//   - broker kill: broker 103 is SIGKILLed; time until no partition in
//     Metadata (asked of broker 101) names it as leader (Kafka's target:
//     the broker session timeout, 9s by default, + 2s).
//   - broker restart: broker 103 is started again (same data directory);
//     time from the restart until every partition's ISR is full again, and
//     the CPU of the cluster meanwhile (% of one core).
//   - controller failover: the metadata log's high watermark (Raft index)
//     first, then the active controller (DescribeQuorum) is SIGKILLed; time until a surviving controller names a new leader, and
//     time until a new change is published (a 1-partition topic created
//     through the brokers is answered without error).
//   - snapshot: the newest Raft snapshot per controller (state.bin size,
//     count on disk) and the duration of each snapshot the controllers'
//     logs show ("starting snapshot" to "snapshot complete"), and the size
//     of raft.db. The controllers run with --snapshot-threshold 64
//     --snapshot-interval 10s (defaults 8192 and 120s), so the run takes
//     snapshots of the whole image.
//   - session fencings: how often the controllers fenced a broker whose
//     session timed out (their logs); more than the one SIGKILL means
//     brokers missed heartbeats under load.
//
// BENCH_PROFILE=DIR starts every node with --pprof and writes a CPU
// profile of each node over the idle window to DIR/NAME.cpu.pprof (`go tool
// pprof -top bin/skein DIR/broker-101.cpu.pprof`); profiling adds a little
// CPU of its own. BENCH_IDLE_ONLY=1 stops after the idle phase.
//
// Every phase is bounded (BENCH_CREATE_BOUND etc., Go durations); a phase
// that does not finish prints "> bound" with how far it got, and the run
// goes on, so one N takes at most about 10 minutes. The load average is
// printed at the start and end: the figures are only comparable on an
// otherwise idle machine.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/bench/benchcluster"
)

const (
	partitionsPerTopic = 100
	replicationFactor  = 3
	topicPrefix        = "scale-"
	pollEvery          = 500 * time.Millisecond
)

// config is read from the environment.
type config struct {
	bin          string
	partitions   int
	logLevel     string
	keep         bool
	profileDir   string
	idleOnly     bool
	startBound   time.Duration
	createBound  time.Duration
	settleBound  time.Duration
	idle         time.Duration
	leaderBound  time.Duration
	isrBound     time.Duration
	failoverBnd  time.Duration
	cmdLine      string
	clockTicksHz int64
}

func envDuration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", key, v, err)
	}
	return d, nil
}

func loadConfig() (config, error) {
	c := config{bin: os.Getenv("SKEIN_BIN"), partitions: 10000, logLevel: "info", keep: os.Getenv("BENCH_KEEP") == "1",
		profileDir: os.Getenv("BENCH_PROFILE"), idleOnly: os.Getenv("BENCH_IDLE_ONLY") == "1"}
	if c.bin == "" {
		c.bin = "bin/skein"
	}
	abs, err := filepath.Abs(c.bin)
	if err != nil {
		return c, err
	}
	c.bin = abs
	if _, err := os.Stat(c.bin); err != nil {
		return c, fmt.Errorf("skein binary (SKEIN_BIN): %w; run make build", err)
	}
	if v := os.Getenv("BENCH_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < partitionsPerTopic || n%partitionsPerTopic != 0 {
			return c, fmt.Errorf("BENCH_PARTITIONS=%q: want a positive multiple of %d", v, partitionsPerTopic)
		}
		c.partitions = n
	}
	if v := os.Getenv("BENCH_LOG_LEVEL"); v != "" {
		c.logLevel = v
	}
	for _, d := range []struct {
		p   *time.Duration
		key string
		def time.Duration
	}{
		{&c.startBound, "BENCH_START_BOUND", 60 * time.Second},
		{&c.createBound, "BENCH_CREATE_BOUND", 150 * time.Second},
		{&c.settleBound, "BENCH_SETTLE_BOUND", 90 * time.Second},
		{&c.idle, "BENCH_IDLE", 30 * time.Second},
		{&c.leaderBound, "BENCH_LEADER_BOUND", 60 * time.Second},
		{&c.isrBound, "BENCH_ISR_BOUND", 120 * time.Second},
		{&c.failoverBnd, "BENCH_FAILOVER_BOUND", 60 * time.Second},
	} {
		if *d.p, err = envDuration(d.key, d.def); err != nil {
			return c, err
		}
	}
	c.cmdLine = fmt.Sprintf("BENCH_PARTITIONS=%d SKEIN_BIN=%s %s", c.partitions, c.bin, strings.Join(os.Args, " "))
	c.clockTicksHz = clockTicks()
	return c, nil
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	raiseOpenFiles(cfg.partitions)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

// raiseOpenFiles raises this process's open-file limit, which the nodes
// inherit, to what a broker hosting a replica of every partition needs
// (each log keeps its active segment open, and a few files more while
// rolling or recovering): a broker needs about as many open files as
// partitions it hosts, like Kafka. Raising the hard limit needs root
// (CAP_SYS_RESOURCE); without it the run goes on with the limit it has.
func raiseOpenFiles(partitions int) {
	want := uint64(2*partitions + 10000)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= want {
		return
	}
	next := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		fmt.Fprintf(os.Stderr, "bench-scale: open files limited to %d (want %d for %d partitions): %v\n", lim.Cur, want, partitions, err)
	}
}

// bench holds the running cluster and the figures gathered so far.
type bench struct {
	cfg     config
	ctrls   []*benchcluster.Node
	brokers []*benchcluster.Node
	rows    [][2]string
}

func (b *bench) add(name, value string) {
	b.rows = append(b.rows, [2]string{name, value})
	fmt.Fprintf(os.Stderr, "%s: %s\n", name, value)
}

func (b *bench) all() []*benchcluster.Node {
	return append(append([]*benchcluster.Node{}, b.ctrls...), b.brokers...)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func over(bound time.Duration, progress string) string {
	return fmt.Sprintf("> %s (%s)", secs(bound), progress)
}

// waitUntil polls cond every pollEvery until it returns true, ctx ends or
// bound passes since start. It returns the time since start, whether cond
// held, and a progress text: cond's last progress and, when a later poll
// failed, its error.
func waitUntil(ctx context.Context, start time.Time, bound time.Duration, cond func(context.Context) (bool, string, error)) (time.Duration, bool, string) {
	deadline := start.Add(bound)
	progress := "no answer yet"
	var lastErr error
	text := func() string {
		if lastErr != nil {
			return progress + "; then: " + lastErr.Error()
		}
		return progress
	}
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		ok, p, err := cond(pctx)
		cancel()
		if err != nil {
			lastErr = err
		} else {
			progress, lastErr = p, nil
		}
		if ok {
			return time.Since(start), true, text()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), false, text()
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

func run(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "skein-bench-scale-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg}
	b.ctrls, b.brokers, err = benchcluster.New(benchcluster.Layout{Bin: cfg.bin, Dir: dir, LogLevel: cfg.logLevel,
		Controllers: 3, Brokers: 3, Pprof: cfg.profileDir != "",
		// Snapshot within the run, so the snapshot figures are measured.
		ControllerArgs: []string{"--snapshot-threshold", "64", "--snapshot-interval", "10s"}})
	if err != nil {
		return err
	}
	defer func() {
		benchcluster.Teardown(dir, cfg.keep, b.ctrls, b.brokers)
	}()
	fmt.Fprintf(os.Stderr, "bench-scale: %d partitions, data and logs under %s\n", cfg.partitions, dir)
	b.add("command", cfg.cmdLine)
	b.add("machine", fmt.Sprintf("%d CPUs (runtime.NumCPU), load average at start %s", runtime.NumCPU(), loadAvg()))

	if err := b.startAll(ctx); err != nil {
		return err
	}
	b.phaseCreate(ctx)
	b.phaseIdle(ctx)
	if cfg.idleOnly {
		b.add("load average at end", loadAvg())
		b.print()
		return ctx.Err()
	}
	b.phaseBrokerKillRestart(ctx)
	b.phaseControllerFailover(ctx)
	b.phaseSnapshots()
	b.add("load average at end", loadAvg())
	b.print()
	return ctx.Err()
}

// startAll starts the controllers, then the brokers, and waits until the
// controllers listen and every broker lists all three brokers.
func (b *bench) startAll(ctx context.Context) error {
	start := time.Now()
	for _, n := range b.all() {
		if err := n.Start(); err != nil {
			return err
		}
	}
	took, ok, last := waitUntil(ctx, start, b.cfg.startBound, func(ctx context.Context) (bool, string, error) {
		for _, n := range b.all() {
			if !n.Running() {
				return false, n.Name + " exited; see " + n.LogPath, nil
			}
			if !benchcluster.Dialable(n.Addr) {
				return false, n.Name + " not listening yet", nil
			}
		}
		for _, n := range b.brokers {
			st, err := metadataStats(ctx, n.Addr, topicPrefix)
			if err != nil {
				return false, "", err
			}
			if st.brokers < len(b.brokers) {
				return false, fmt.Sprintf("%s lists %d brokers", n.Name, st.brokers), nil
			}
		}
		return true, "", nil
	})
	if !ok {
		return fmt.Errorf("cluster did not start within %s: %s", b.cfg.startBound, last)
	}
	b.add("cluster start (3 controllers, 3 brokers)", secs(took))
	return nil
}

// phaseCreate creates the topics one CreateTopics request at a time, then
// waits until every partition has a leader and a full ISR.
func (b *bench) phaseCreate(ctx context.Context) {
	topics := b.cfg.partitions / partitionsPerTopic
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap()...), kgo.ClientID("skein-bench-scale"))
	if err != nil {
		b.add("create", "client: "+err.Error())
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	deadline := start.Add(b.cfg.createBound)
	created := 0
	var lastErr error
	for i := 0; i < topics && time.Now().Before(deadline) && ctx.Err() == nil; {
		name := fmt.Sprintf("%s%05d", topicPrefix, i)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		resp, err := adm.CreateTopic(rctx, partitionsPerTopic, replicationFactor, nil, name)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			created++
			i++
			continue
		}
		lastErr = err
		select { // retry the same topic
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	what := fmt.Sprintf("create %d topics x %d partitions, RF %d (requests answered)", topics, partitionsPerTopic, replicationFactor)
	if created == topics {
		b.add(what, secs(time.Since(start)))
	} else {
		b.add(what, over(b.cfg.createBound, fmt.Sprintf("%d of %d topics created, last error %v", created, topics, lastErr)))
	}
	want := created * partitionsPerTopic
	took, ok, last := waitUntil(ctx, start, b.cfg.createBound+b.cfg.settleBound, func(ctx context.Context) (bool, string, error) {
		st, err := metadataStats(ctx, b.brokers[0].Addr, topicPrefix)
		if err != nil {
			return false, "", err
		}
		return st.partitions >= want && st.leaderless == 0 && st.shortISR == 0,
			fmt.Sprintf("%d of %d partitions in metadata, %d leaderless, %d with short ISR", st.partitions, want, st.leaderless, st.shortISR), nil
	})
	what = fmt.Sprintf("  all %d partitions led with full ISR (since first request)", want)
	if ok {
		b.add(what, secs(took))
	} else {
		b.add(what, over(b.cfg.createBound+b.cfg.settleBound, last))
	}
}

// phaseIdle samples CPU ticks of the 6 processes over cfg.idle.
func (b *bench) phaseIdle(ctx context.Context) {
	nodes := b.all()
	before := make([]procSample, len(nodes))
	for i, n := range nodes {
		if n.Running() {
			before[i], _ = readProc(n.Pid())
		}
	}
	start := time.Now()
	profiled := b.profile(ctx, nodes)
	select {
	case <-ctx.Done():
		return
	case <-time.After(b.cfg.idle):
	}
	elapsed := time.Since(start).Seconds()
	defer profiled()
	var total float64
	var lines []string
	for i, n := range nodes {
		if !n.Running() {
			lines = append(lines, fmt.Sprintf("%s: exited", n.Name))
			continue
		}
		after, err := readProc(n.Pid())
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		pct := float64(after.ticks-before[i].ticks) / float64(b.cfg.clockTicksHz) / elapsed * 100
		total += pct
		b.add(fmt.Sprintf("  idle CPU %s", n.Name), fmt.Sprintf("%.1f %% of one core, RSS %.0f MiB", pct, float64(after.rssKB)/1024))
	}
	for _, l := range lines {
		b.add("  idle CPU", l)
	}
	b.add(fmt.Sprintf("idle CPU, whole cluster over %s (load avg %s)", secs(b.cfg.idle), loadAvg()), fmt.Sprintf("%.1f %% of one core", total))
}

// phaseBrokerKillRestart SIGKILLs the last broker, waits until no
// partition names it as leader, restarts it and waits for full ISRs.
func (b *bench) phaseBrokerKillRestart(ctx context.Context) {
	victim := b.brokers[len(b.brokers)-1]
	observer := b.brokers[0]
	st, err := metadataStats(ctx, observer.Addr, topicPrefix)
	if err == nil {
		b.add(fmt.Sprintf("partitions led by %s before the kill", victim.Name), strconv.Itoa(st.ledBy[victim.ID]))
	}
	start := time.Now()
	victim.Kill()
	took, ok, last := waitUntil(ctx, start, b.cfg.leaderBound, func(ctx context.Context) (bool, string, error) {
		st, err := metadataStats(ctx, observer.Addr, topicPrefix)
		if err != nil {
			return false, "", err
		}
		return st.ledBy[victim.ID] == 0, fmt.Sprintf("%d partitions still led by %d, %d leaderless", st.ledBy[victim.ID], victim.ID, st.leaderless), nil
	})
	what := fmt.Sprintf("broker %d SIGKILLed: until no partition names it leader", victim.ID)
	if ok {
		b.add(what, secs(took)+" ("+last+")")
	} else {
		b.add(what, over(b.cfg.leaderBound, last))
	}

	start = time.Now()
	if err := victim.Start(); err != nil {
		b.add("broker restart", err.Error())
		return
	}
	cpu := b.sampleCPU()
	took, ok, last = waitUntil(ctx, start, b.cfg.isrBound, func(ctx context.Context) (bool, string, error) {
		st, err := metadataStats(ctx, observer.Addr, topicPrefix)
		if err != nil {
			return false, "", err
		}
		return st.shortISR == 0 && st.leaderless == 0, fmt.Sprintf("%d of %d partitions with short ISR, %d leaderless", st.shortISR, st.partitions, st.leaderless), nil
	})
	what = fmt.Sprintf("broker %d restarted: until every ISR is full", victim.ID)
	if ok {
		b.add(what, secs(took))
	} else {
		b.add(what, over(b.cfg.isrBound, last))
	}
	b.add("  cluster CPU meanwhile", fmt.Sprintf("%.1f %% of one core (load avg %s)", cpu(), loadAvg()))
}

// sampleCPU reads the CPU ticks of the running nodes now; the function it
// returns gives their sum since then as % of one core (a node restarted
// in between counts from zero).
func (b *bench) sampleCPU() func() float64 {
	nodes := b.all()
	before := map[int]int64{}
	for _, n := range nodes {
		if n.Running() {
			if s, err := readProc(n.Pid()); err == nil {
				before[n.Pid()] = s.ticks
			}
		}
	}
	start := time.Now()
	return func() float64 {
		var ticks int64
		for _, n := range nodes {
			if !n.Running() {
				continue
			}
			if s, err := readProc(n.Pid()); err == nil {
				ticks += s.ticks - before[n.Pid()]
			}
		}
		return float64(ticks) / float64(b.cfg.clockTicksHz) / time.Since(start).Seconds() * 100
	}
}

// phaseControllerFailover SIGKILLs the active controller and times the
// election of a new one and its first published change.
func (b *bench) phaseControllerFailover(ctx context.Context) {
	var active *benchcluster.Node
	metaEnd := int64(-1)
	for _, n := range b.ctrls {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, hw, err := describeQuorum(qctx, n.Addr)
		cancel()
		if err != nil {
			continue
		}
		metaEnd = hw
		for _, c := range b.ctrls {
			if c.ID == id {
				active = c
			}
		}
		if active != nil {
			break
		}
	}
	if active == nil {
		b.add("controller failover", "no active controller found by DescribeQuorum")
		return
	}
	b.add("metadata log high watermark (Raft index) before failover", strconv.FormatInt(metaEnd, 10))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap()...), kgo.ClientID("skein-bench-scale"))
	if err != nil {
		b.add("controller failover", "client: "+err.Error())
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	start := time.Now()
	active.Kill()
	took, ok, last := waitUntil(ctx, start, b.cfg.failoverBnd, func(ctx context.Context) (bool, string, error) {
		var progress []string
		for _, n := range b.ctrls {
			if n == active {
				continue
			}
			id, err := quorumLeader(ctx, n.Addr)
			if err != nil {
				progress = append(progress, err.Error())
				continue
			}
			if id >= 0 && id != active.ID {
				return true, fmt.Sprintf("controller %d", id), nil
			}
			progress = append(progress, fmt.Sprintf("%s names leader %d", n.Name, id))
		}
		return false, strings.Join(progress, "; "), nil
	})
	what := fmt.Sprintf("controller %d SIGKILLed: until a new leader is named", active.ID)
	if ok {
		b.add(what, secs(took)+" ("+last+")")
	} else {
		b.add(what, over(b.cfg.failoverBnd, last))
	}
	probe := topicPrefix + "failover-probe"
	took, ok, last = waitUntil(ctx, start, b.cfg.failoverBnd, func(ctx context.Context) (bool, string, error) {
		resp, err := adm.CreateTopic(ctx, 1, replicationFactor, nil, probe)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return true, "created", nil
		}
		return false, "", err
	})
	what = "  until its first change is published (CreateTopics answered)"
	if ok {
		b.add(what, secs(took))
	} else {
		b.add(what, over(b.cfg.failoverBnd, last))
	}
	// Back to three controllers for the snapshot figures' completeness.
	if err := active.Start(); err != nil {
		b.add("controller restart", err.Error())
	}
}

// phaseSnapshots reports what the controllers' snapshot stores and logs show.
func (b *bench) phaseSnapshots() {
	for _, n := range b.ctrls {
		info := latestSnapshot(n.DataDir)
		var ds []string
		for _, d := range snapshotDurations(n.LogPath) {
			ds = append(ds, fmt.Sprintf("%.2fs", d.Seconds()))
		}
		took := "none in log"
		if len(ds) > 0 {
			took = strings.Join(ds, ",")
		}
		size := "none on disk"
		if info.bytes >= 0 {
			size = fmt.Sprintf("%.2f MiB (%s, %d on disk)", float64(info.bytes)/(1<<20), info.index, info.count)
		}
		var dbSize string
		if fi, err := os.Stat(filepath.Join(n.DataDir, "raft", "raft.db")); err == nil {
			dbSize = fmt.Sprintf("; raft.db %.1f MiB", float64(fi.Size())/(1<<20))
		}
		b.add(fmt.Sprintf("snapshot %s", n.Name), fmt.Sprintf("newest %s; durations %s%s", size, took, dbSize))
	}
	// Session fencings beyond the one of the SIGKILLed broker are brokers that
	// missed their session under load. Each controller logs only what it
	// decided while active, so the counts add up.
	fenced := 0
	for _, n := range b.ctrls {
		fenced += countLines(n.LogPath, "broker fenced: session timed out")
	}
	b.add("brokers fenced for a timed-out session (controller logs)", strconv.Itoa(fenced))
}

func (b *bench) bootstrap() []string {
	var out []string
	for _, n := range b.brokers {
		out = append(out, n.Addr)
	}
	return out
}

// print writes the table of figures to stdout.
func (b *bench) print() {
	width := 0
	for _, r := range b.rows {
		width = max(width, len(r[0]))
	}
	fmt.Printf("\nbench-scale: %d partitions (%d topics x %d), RF %d, 3 controllers + 3 brokers\n",
		b.cfg.partitions, b.cfg.partitions/partitionsPerTopic, partitionsPerTopic, replicationFactor)
	for _, r := range b.rows {
		fmt.Printf("%-*s  %s\n", width, r[0], r[1])
	}
}

// profile starts a CPU profile over the idle window of every node serving
// pprof, written to cfg.profileDir; the returned func waits for them.
func (b *bench) profile(ctx context.Context, nodes []*benchcluster.Node) (wait func()) {
	if b.cfg.profileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(b.cfg.profileDir, 0o755); err != nil {
		b.add("profile", err.Error())
		return func() {}
	}
	var wg sync.WaitGroup
	secs := int(b.cfg.idle.Seconds())
	for _, n := range nodes {
		if n.PprofAddr == "" || !n.Running() {
			continue
		}
		wg.Add(1)
		go func(n *benchcluster.Node) {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.PprofAddr, secs)
			path := filepath.Join(b.cfg.profileDir, n.Name+".cpu.pprof")
			if err := fetchTo(ctx, url, path); err != nil {
				fmt.Fprintf(os.Stderr, "profile %s: %v\n", n.Name, err)
			}
		}(n)
	}
	return func() {
		wg.Wait()
		b.add("CPU profiles", b.cfg.profileDir)
	}
}

// fetchTo writes the body of an HTTP GET of url to path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
