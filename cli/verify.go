package cli

// `skein verify workload`: a consistency check an operator points at a
// running cluster. Producers write unique values with idempotent acks=all
// clients, plain consumers and the members of a consumer group read them
// (some from the start, others joining later), everything any of them did
// goes into a history, and internal/workload checks it once the producers
// stopped, every consumer read to the high watermarks, and a final reader
// read each partition once more. This file runs the workload and prints
// the report; the checks themselves are workload.Check.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
	ratelimit "golang.org/x/time/rate"

	"github.com/skein-io/skein/internal/workload"
)

const (
	// verifyDrainPoll paces the checks of whether consumers reached the end.
	verifyDrainPoll = 100 * time.Millisecond
	// verifySetupTimeout bounds creating the topic and finding its offsets.
	verifySetupTimeout = time.Minute
	// verifyExamples is how many anomalies of each kind the table shows.
	verifyExamples = 3
	// verifyHeartbeat is the group members' heartbeat interval.
	verifyHeartbeat = 500 * time.Millisecond
	// verifyMaxProcesses bounds --producers, --consumers, --group-consumers.
	verifyMaxProcesses = 100
	// verifyJoinStep spaces the later consumers' starts in a run without
	// a --duration (until interrupted): consumer k of a kind joins k steps
	// after the producers started (group members half a step later).
	verifyJoinStep = 5 * time.Second
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:        "verify",
		Usage:       "check a running cluster's guarantees",
		Subcommands: []*cli.Command{verifyWorkloadCommand()},
	}
}

func verifyWorkloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "workload",
		Usage: "produce and consume unique values for --duration, then check that nothing acknowledged was lost, duplicated, reordered or skipped",
		Description: "Creates --topic if it is missing (min.insync.replicas=2 from replication factor 3 on).\n" +
			"   --producers idempotent acks=all producers write unique values to every partition at --rate\n" +
			"   records per second in all, and note where each one was acknowledged, or that its outcome is\n" +
			"   unknown (a produce that failed may still be in the log; it must be there at most once).\n" +
			"   --consumers plain consumers read every partition from the offsets the run started at, and\n" +
			"   --group-consumers members of a consumer group subscribe and commit; the first of each kind\n" +
			"   starts with the producers, the others join later in the run. When the producers stop, every\n" +
			"   consumer reads to the high watermarks (within --drain-timeout), then a final reader reads every\n" +
			"   partition once more: that is the log as read at the end. The checks, per partition, in the\n" +
			"   terms Jepsen uses for Kafka: lost (acknowledged, not in the final log), wrong-offset (not at\n" +
			"   its acknowledged offset), duplicated (a value at two offsets), reordered (a producer's values\n" +
			"   out of its order), divergent (consumers read different values at one offset), nonmonotonic\n" +
			"   (a consumer went back without a rebalance or seek), poll-skip (a consumer jumped over offsets\n" +
			"   that exist), unseen (a plain consumer, or a whole group, never read an acknowledged value) and\n" +
			"   unknown-value (a value this run never wrote). Records older than the run are ignored; no one\n" +
			"   else may write to the topic while it runs. Prints a table of the checks and writes the whole\n" +
			"   history as JSON lines to --history. Exits 0 only when every check found nothing.\n" +
			"   With --duration 0 the producers write until SIGINT or SIGTERM (say, until a restart or an\n" +
			"   upgrade is over); the signal then ends the run as --duration would, and the checks follow.",
		Flags: withCommon(
			bootstrapServerFlag(),
			stringFlag("topic", "topic to write and read (created if missing)", "skein-verify"),
			intFlag("partitions", "partitions of the topic when it is created", 3),
			intFlag("replication-factor", "replication factor of the topic when it is created", 3),
			durationFlag("duration", "how long the producers write (0: until SIGINT or SIGTERM, which then end the run normally)", time.Minute),
			float64Flag("rate", "records per second, all producers together", 1000),
			intFlag("producers", "idempotent acks=all producers", 2),
			intFlag("consumers", "plain consumers, assigned every partition (the first starts with the producers, the others join later)", 2),
			intFlag("group-consumers", "members of one consumer group (the first starts with the producers, the others join later)", 2),
			stringFlag("group", "consumer group of --group-consumers (default: skein-verify-RUN, new for each run)", ""),
			stringFlag("history", "write the history (JSON lines) to `FILE` (default: a new file in the temporary directory)", ""),
			durationFlag("drain-timeout", "after the producers stop, how long producers may take to flush and consumers to read to the end", time.Minute),
			durationFlag("report-interval", "print a progress line this often (0: never)", 10*time.Second),
		),
		Action: runVerifyWorkload,
	}
}

// verifyPlan is the workload of one run, from the flags.
type verifyPlan struct {
	topic                    string
	partitions               int32
	replicationFactor        int16
	duration, drainTimeout   time.Duration
	rate                     float64
	producers, consumers     int
	groupConsumers           int
	group, runID, historyOut string
}

func newVerifyPlan(c *cli.Context) (verifyPlan, error) {
	p := verifyPlan{
		topic:          c.String("topic"),
		duration:       c.Duration("duration"),
		drainTimeout:   c.Duration("drain-timeout"),
		rate:           c.Float64("rate"),
		producers:      c.Int("producers"),
		consumers:      c.Int("consumers"),
		groupConsumers: c.Int("group-consumers"),
		group:          c.String("group"),
		historyOut:     c.String("history"),
	}
	var err error
	if p.partitions, err = int32Value(c, "partitions"); err != nil {
		return p, err
	}
	if p.replicationFactor, err = int16Value(c, "replication-factor"); err != nil {
		return p, err
	}
	switch {
	case p.topic == "":
		return p, errors.New("--topic is empty")
	case p.partitions < 1:
		return p, fmt.Errorf("--partitions %d: want at least 1", p.partitions)
	case p.replicationFactor < 1:
		return p, fmt.Errorf("--replication-factor %d: want at least 1", p.replicationFactor)
	case p.duration < 0:
		return p, fmt.Errorf("--duration %s: want 0 (until interrupted) or more", p.duration)
	case p.drainTimeout <= 0:
		return p, fmt.Errorf("--drain-timeout %s: want more than 0", p.drainTimeout)
	case p.rate <= 0:
		return p, fmt.Errorf("--rate %g: want more than 0", p.rate)
	case p.producers < 1 || p.producers > verifyMaxProcesses:
		return p, fmt.Errorf("--producers %d: want 1..%d", p.producers, verifyMaxProcesses)
	case p.consumers < 0 || p.consumers > verifyMaxProcesses:
		return p, fmt.Errorf("--consumers %d: want 0..%d", p.consumers, verifyMaxProcesses)
	case p.groupConsumers < 0 || p.groupConsumers > verifyMaxProcesses:
		return p, fmt.Errorf("--group-consumers %d: want 0..%d", p.groupConsumers, verifyMaxProcesses)
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	p.runID = "r" + hex.EncodeToString(id)
	if p.group == "" {
		p.group = "skein-verify-" + p.runID
	}
	return p, nil
}

// joinDelay is when consumer k of n of one kind starts, after the
// producers: the first at once, the others spread over the run (in a run
// until interrupted, every verifyJoinStep); group members shifted by half
// a step so that plain consumers and members do not join at the same
// moment.
func (p verifyPlan) joinDelay(k, n int, group bool) time.Duration {
	if k == 0 {
		return 0
	}
	step := float64(k)
	if group {
		step += 0.5
	}
	if p.duration == 0 {
		return time.Duration(float64(verifyJoinStep) * step)
	}
	return time.Duration(float64(p.duration) * step / float64(n+1))
}

// value is producer k's seq-th value.
func (p verifyPlan) value(k, seq int) string {
	return fmt.Sprintf("%s-p%d-%09d", p.runID, k, seq)
}

// verifyRun is one running workload: the history and what the drain
// needs to know of the consumers' progress.
type verifyRun struct {
	plan  verifyPlan
	c     *cli.Context
	log   hclog.Logger
	rec   *workload.Recorder
	start map[int32]int64

	acked, indeterminate atomic.Int64
	mu                   struct {
		sync.Mutex
		end   map[int32]int64            // high watermarks once the producers stopped
		next  map[string]map[int32]int64 // per reader (consumer or "group G"): the offset after its highest read
		reads map[string]int64           // records read per reader
	}
}

func runVerifyWorkload(c *cli.Context) error {
	plan, err := newVerifyPlan(c)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	adminClient, err := newClient(c, log)
	if err != nil {
		return err
	}
	defer adminClient.Close()
	adm := kadm.NewClient(adminClient)

	setup, cancel := context.WithTimeout(c.Context, verifySetupTimeout)
	defer cancel()
	var configs map[string]*string
	if plan.replicationFactor >= 3 {
		configs = map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}
	}
	if err := ensureTopic(setup, adm, plan.topic, plan.partitions, plan.replicationFactor, configs); err != nil {
		return err
	}
	start, err := waitEndOffsets(setup, adm, plan.topic, plan.partitions)
	if err != nil {
		return err
	}
	plan.partitions = int32(len(start))

	historyFile, err := createHistory(plan.historyOut, plan.runID)
	if err != nil {
		return err
	}
	defer historyFile.Close()
	fmt.Fprintf(c.App.ErrWriter, "History: %s\n", historyFile.Name())
	r := &verifyRun{plan: plan, c: c, log: log, rec: workload.NewRecorder(historyFile), start: start}
	r.mu.next = map[string]map[int32]int64{}
	r.mu.reads = map[string]int64{}
	r.rec.Add(workload.Event{Type: workload.Start, Topic: plan.topic, Partition: workload.NoOffset,
		Offset: workload.NoOffset, Offsets: start})

	undrained, interrupted, err := r.run(adm)
	if ferr := r.rec.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("write %s: %w", historyFile.Name(), ferr)
	}
	if err := historyFile.Close(); err != nil {
		return fmt.Errorf("write %s: %w", historyFile.Name(), err)
	}
	if err != nil {
		return fmt.Errorf("%w (history so far in %s)", err, historyFile.Name())
	}
	report, err := workload.Check(r.rec.Events())
	if err != nil {
		return err
	}
	if err := writeVerifyReport(c.App.Writer, report, historyFile.Name()); err != nil {
		return err
	}
	var problems []string
	if n := len(report.Anomalies); n > 0 {
		path := historyFile.Name() + ".anomalies.jsonl"
		if err := writeAnomalies(path, report.Anomalies); err != nil {
			return err
		}
		what := "anomalies"
		if n == 1 {
			what = "anomaly"
		}
		problems = append(problems, fmt.Sprintf("%d %s found (all listed in %s)", n, what, path))
	}
	if interrupted {
		problems = append(problems, "interrupted before --duration was over")
	}
	if len(undrained) > 0 {
		problems = append(problems, fmt.Sprintf("%s did not read to the high watermarks within --drain-timeout %s",
			strings.Join(undrained, ", "), plan.drainTimeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s; the history is in %s", strings.Join(problems, "; "), historyFile.Name())
	}
	return nil
}

// writeAnomalies writes every anomaly as a line of JSON to path.
func writeAnomalies(path string, anomalies []workload.Anomaly) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("anomalies file: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, a := range anomalies {
		if err := writeJSON(w, a); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("anomalies file: %w", err)
	}
	return f.Close()
}

// createHistory opens the history file: path, or a new file in the
// temporary directory.
func createHistory(path, runID string) (*os.File, error) {
	if path == "" {
		f, err := os.CreateTemp("", "skein-verify-"+runID+"-*.jsonl")
		if err != nil {
			return nil, fmt.Errorf("history file: %w", err)
		}
		return f, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--history: %w", err)
	}
	return f, nil
}

// waitEndOffsets waits until every partition of topic (at least want of
// them) has a leader that answers ListOffsets, and returns their end
// offsets (high watermarks).
func waitEndOffsets(ctx context.Context, adm *kadm.Client, topic string, want int32) (map[int32]int64, error) {
	var last error
	for {
		topics, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := topics[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				want = int32(len(d.Partitions)) // an existing topic is used as it is
			}
		}
		listed, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			offsets := map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { offsets[o.Partition] = o.Offset })
			if int32(len(offsets)) >= want {
				return offsets, nil
			}
			err = fmt.Errorf("%d of %d partitions listed", len(offsets), want)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("end offsets of %s: %w (last error: %v)", topic, ctx.Err(), last)
		case <-time.After(verifyDrainPoll):
		}
	}
}

// run produces for the duration (or until SIGINT or SIGTERM), drains the
// consumers, reads the final log. It returns the readers that did not
// reach the end in time, and whether a signal cut the run short.
func (r *verifyRun) run(adm *kadm.Client) (undrained []string, interrupted bool, err error) {
	plan := r.plan
	ctx, stop := signalContext(r.c)
	defer stop()
	// Without a duration, the producers write until a signal: then the
	// signal is the normal end of the run, not an interruption.
	var produceCtx context.Context
	var endProduce context.CancelFunc
	if plan.duration > 0 {
		produceCtx, endProduce = context.WithTimeout(ctx, plan.duration)
	} else {
		produceCtx, endProduce = context.WithCancel(ctx)
	}
	defer endProduce()
	// Records may wait for buffer space and be flushed until the drain
	// timeout after the producing ends.
	recordsCtx, cancelRecords := context.WithCancel(context.Background())
	defer cancelRecords()

	var producers []*kgo.Client
	defer func() {
		for _, cl := range producers {
			cl.Close()
		}
	}()
	for k := range plan.producers {
		cl, err := newClient(r.c, r.log,
			kgo.ClientID(fmt.Sprintf("skein-verify-p%d", k)),
			kgo.DefaultProduceTopic(plan.topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			return nil, false, err
		}
		producers = append(producers, cl)
	}

	// Consumers run until the drain ends them (or the process is
	// interrupted).
	consumers := map[string]context.CancelFunc{} // by reader key; a group's members share one
	var consuming sync.WaitGroup
	consumerErrs := make(chan error, plan.consumers+plan.groupConsumers)
	launch := func(name, group string, delay time.Duration, cctx context.Context) {
		consuming.Go(func() {
			select {
			case <-time.After(delay):
			case <-produceCtx.Done(): // the run ended early: start now
			}
			if err := r.consume(cctx, name, group); err != nil {
				consumerErrs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	for k := range plan.consumers {
		cctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		name := fmt.Sprintf("c%d", k)
		consumers[name] = cancel
		launch(name, "", plan.joinDelay(k, plan.consumers, false), cctx)
	}
	if plan.groupConsumers > 0 {
		gctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		consumers[groupKey(plan.group)] = cancel
		for k := range plan.groupConsumers {
			launch(fmt.Sprintf("g%d", k), plan.group, plan.joinDelay(k, plan.groupConsumers, true), gctx)
		}
	}

	howLong := "for " + plan.duration.String()
	if plan.duration == 0 {
		howLong = "until SIGINT or SIGTERM"
	}
	fmt.Fprintf(r.c.App.ErrWriter, "Producing to %s (%d partitions) %s at %g records/s with %d producers; %d consumers and %d group members (group %s) reading\n",
		plan.topic, plan.partitions, howLong, plan.rate, plan.producers, plan.consumers, plan.groupConsumers, plan.group)
	stopProgress := r.startProgress(r.c.Duration("report-interval"))
	defer stopProgress()
	var producing sync.WaitGroup
	var pending sync.WaitGroup // records handed to a client, not yet resolved
	perProducer := plan.rate / float64(plan.producers)
	for k, cl := range producers {
		producing.Go(func() { r.produce(produceCtx, recordsCtx, cl, k, perProducer, &pending) })
	}
	<-produceCtx.Done()
	interrupted = plan.duration > 0 && ctx.Err() != nil
	stop() // a second SIGINT now kills the process
	drainDeadline := time.Now().Add(plan.drainTimeout)
	timer := time.AfterFunc(plan.drainTimeout, cancelRecords)
	defer timer.Stop()
	producing.Wait()
	for k, cl := range producers {
		if err := cl.Flush(recordsCtx); err != nil {
			r.log.Warn("producer did not flush in time: its unacknowledged records count as indeterminate", "producer", k, "error", err)
		}
	}
	for _, cl := range producers {
		cl.Close() // fails what is left: indeterminate
	}
	producers = nil
	pending.Wait()

	fmt.Fprintf(r.c.App.ErrWriter, "Producers stopped: %d acknowledged, %d indeterminate; consumers reading to the end\n",
		r.acked.Load(), r.indeterminate.Load())
	endCtx, cancelEnd := context.WithDeadline(context.Background(), drainDeadline)
	defer cancelEnd()
	end, err := waitEndOffsets(endCtx, adm, plan.topic, plan.partitions)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	r.mu.end = end
	r.mu.Unlock()
	r.rec.Add(workload.Event{Type: workload.End, Partition: workload.NoOffset, Offset: workload.NoOffset, Offsets: end})

	undrained = r.drain(consumers, drainDeadline)
	consuming.Wait()
	close(consumerErrs)
	for err := range consumerErrs {
		return nil, false, err
	}

	fmt.Fprintln(r.c.App.ErrWriter, "Reading the final log")
	finalCtx, cancelFinal := context.WithCancel(context.Background())
	defer cancelFinal()
	finalErr := make(chan error, 1)
	go func() { finalErr <- r.consume(finalCtx, workload.FinalReader, "") }()
	undrained = append(undrained, r.drain(map[string]context.CancelFunc{workload.FinalReader: cancelFinal},
		time.Now().Add(plan.drainTimeout))...)
	if err := <-finalErr; err != nil {
		return nil, false, fmt.Errorf("final read: %w", err)
	}
	return undrained, interrupted, nil
}

// groupKey is how the drain and the progress name a group's members
// together (as the checker does).
func groupKey(group string) string { return "group " + group }

// drain waits until each reader read to the high watermarks, or until the
// deadline, cancelling each reader when it is done; it returns those that
// did not finish.
func (r *verifyRun) drain(readers map[string]context.CancelFunc, deadline time.Time) []string {
	left := maps.Clone(readers)
	tick := time.NewTicker(verifyDrainPoll)
	defer tick.Stop()
	for len(left) > 0 && time.Now().Before(deadline) {
		for key, cancel := range left {
			if r.drained(key) {
				cancel()
				delete(left, key)
			}
		}
		if len(left) > 0 {
			<-tick.C
		}
	}
	for _, cancel := range left {
		cancel()
	}
	return slices.Sorted(maps.Keys(left))
}

// drained reports whether reader key has read every partition to its high
// watermark.
func (r *verifyRun) drained(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.end == nil {
		return false
	}
	for p, hw := range r.mu.end {
		if hw > r.start[p] && r.mu.next[key][p] < hw {
			return false
		}
	}
	return true
}

// read notes that reader key read partition p up to offset last.
func (r *verifyRun) read(key string, p int32, last int64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.next[key] == nil {
		r.mu.next[key] = map[int32]int64{}
	}
	r.mu.next[key][p] = max(r.mu.next[key][p], last+1)
	r.mu.reads[key] += int64(n)
}

// produce writes producer k's values at perSecond until ctx ends. Each
// value is an invoke event, then an ok or info event from its promise.
func (r *verifyRun) produce(ctx, recordsCtx context.Context, cl *kgo.Client, k int, perSecond float64, pending *sync.WaitGroup) {
	name := fmt.Sprintf("p%d", k)
	// Wake up about 100 times a second at most, sending what is due; the
	// bucket holds two such batches so that oversleeping is made up.
	batch := max(1, int(perSecond/100))
	limiter := ratelimit.NewLimiter(ratelimit.Limit(perSecond), 2*batch)
	promise := func(rec *kgo.Record, err error) {
		defer pending.Done()
		if err != nil {
			r.indeterminate.Add(1)
			r.rec.Add(workload.Event{Type: workload.Info, Process: name, Partition: rec.Partition,
				Offset: workload.NoOffset, Value: string(rec.Value), Error: err.Error()})
			return
		}
		r.acked.Add(1)
		r.rec.Add(workload.Event{Type: workload.OK, Process: name, Partition: rec.Partition,
			Offset: rec.Offset, Value: string(rec.Value)})
	}
	for seq := 0; ; {
		if limiter.WaitN(ctx, batch) != nil {
			return
		}
		for range batch {
			value := r.plan.value(k, seq)
			p := int32((k + seq) % int(r.plan.partitions))
			seq++
			r.rec.Add(workload.Event{Type: workload.Invoke, Process: name, Partition: p, Offset: workload.NoOffset, Value: value})
			pending.Add(1)
			// Blocks while the client buffers its maximum; recordsCtx
			// ends that at the drain timeout.
			cl.Produce(recordsCtx, &kgo.Record{Value: []byte(value), Partition: p}, promise)
		}
	}
}

// consume runs one reader until ctx ends: a plain consumer of every
// partition from the start offsets, or, with group, a member of it.
func (r *verifyRun) consume(ctx context.Context, name, group string) error {
	key := name
	opts := []kgo.Opt{kgo.ClientID("skein-verify-" + name), kgo.FetchMaxWait(time.Second)}
	if group == "" {
		from := map[int32]kgo.Offset{}
		for p, o := range r.start {
			from[p] = kgo.NewOffset().At(o)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.plan.topic: from}))
	} else {
		key = groupKey(group)
		// Rebalances happen between polls only, so each poll's records
		// are in the history before the partitions move, and the
		// member commits what it polled before giving them up.
		revoked := func(ctx context.Context, cl *kgo.Client, m map[string][]int32, commit bool) {
			if len(m[r.plan.topic]) > 0 {
				r.rec.Add(workload.Event{Type: workload.Revoke, Process: name, Group: group, Partition: workload.NoOffset,
					Offset: workload.NoOffset, Offsets: groupOffsets(m[r.plan.topic])})
			}
			if commit {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					r.log.Warn("commit on revoke failed", "consumer", name, "error", err)
				}
			}
		}
		opts = append(opts,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(r.plan.topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.BlockRebalanceOnPoll(),
			// A member that joins is given partitions within about a
			// second (a member learns of a rebalance from a heartbeat).
			kgo.HeartbeatInterval(verifyHeartbeat),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				if len(m[r.plan.topic]) > 0 {
					r.rec.Add(workload.Event{Type: workload.Assign, Process: name, Group: group, Partition: workload.NoOffset,
						Offset: workload.NoOffset, Offsets: groupOffsets(m[r.plan.topic])})
				}
			}),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { revoked(ctx, cl, m, true) }),
			kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { revoked(ctx, cl, m, false) }),
		)
	}
	cl, err := newClient(r.c, r.log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if group == "" {
		r.rec.Add(workload.Event{Type: workload.Assign, Process: name, Partition: workload.NoOffset,
			Offset: workload.NoOffset, Offsets: maps.Clone(r.start)})
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			r.log.Debug("fetch error", "consumer", name, "topic", topic, "partition", p, "error", err)
		})
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			recs := make([]workload.Record, len(ftp.Records))
			for i, rec := range ftp.Records {
				recs[i] = workload.Record{Offset: rec.Offset, Value: string(rec.Value)}
			}
			r.rec.Add(workload.Event{Type: workload.Poll, Process: name, Partition: ftp.Partition,
				Offset: workload.NoOffset, Records: recs})
			r.read(key, ftp.Partition, recs[len(recs)-1].Offset, len(recs))
		})
		cl.AllowRebalance()
	}
}

// groupOffsets is the offsets of an assign or revoke event of a group
// member: the partitions, each from the group's committed offset.
func groupOffsets(partitions []int32) map[int32]int64 {
	offsets := map[int32]int64{}
	for _, p := range partitions {
		offsets[p] = workload.NoOffset
	}
	return offsets
}

// startProgress prints a progress line every interval until stopped.
func (r *verifyRun) startProgress(interval time.Duration) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(r.c.App.ErrWriter, "%s: %d acknowledged, %d indeterminate; read: %s\n",
					time.Since(began).Round(time.Second), r.acked.Load(), r.indeterminate.Load(), r.readsLine())
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func (r *verifyRun) readsLine() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, key := range slices.Sorted(maps.Keys(r.mu.reads)) {
		parts = append(parts, fmt.Sprintf("%s %d", key, r.mu.reads[key]))
	}
	if len(parts) == 0 {
		return "nothing yet"
	}
	return strings.Join(parts, ", ")
}

// writeVerifyReport prints the run's figures and one row per check: how
// many anomalies, and a few examples.
func writeVerifyReport(w io.Writer, r *workload.Report, history string) error {
	fmt.Fprintf(w, "Topic %s, %d partitions: %d values produced, %d acknowledged, %d indeterminate (%d of them read); the final log holds %d records of this run.\n",
		r.Topic, r.Partitions, r.Invoked, r.Acknowledged, r.Indeterminate, r.IndeterminateFound, r.FinalRecords)
	var reads []string
	for _, p := range slices.Sorted(maps.Keys(r.Reads)) {
		reads = append(reads, fmt.Sprintf("%s %d", p, r.Reads[p]))
	}
	fmt.Fprintf(w, "Records read: %s.\n", strings.Join(reads, ", "))
	fmt.Fprintf(w, "History: %s\n\n", history)
	t := newTable(w)
	fmt.Fprintln(t, "CHECK\tCOUNT\tEXAMPLES")
	for _, k := range workload.Kinds {
		n := r.Count(k)
		examples := r.Examples(k, verifyExamples)
		if len(examples) == 0 {
			fmt.Fprintf(t, "%s\t%d\t-\n", k, n)
			continue
		}
		for i, a := range examples {
			if i == 0 {
				fmt.Fprintf(t, "%s\t%d\t%s\n", k, n, a)
			} else {
				fmt.Fprintf(t, "\t\t%s\n", a)
			}
		}
		if n > len(examples) {
			fmt.Fprintf(t, "\t\t(%d more)\n", n-len(examples))
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "\nNo anomalies.")
		return err
	}
	return nil
}
