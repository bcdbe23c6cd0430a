package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// The chaos tests' settings: the controller fences a broker 3 s after its
// last heartbeat; a follower not caught up for 2 s leaves the ISR.
const (
	chaosSession = 3 * time.Second
	chaosLag     = 2 * time.Second
	// chaosLongFor is how long TestChaosLong keeps applying faults unless
	// SKEIN_CHAOS_FOR says otherwise (`make chaos CHAOS_FOR=10m`).
	chaosLongFor = 6 * time.Minute
)

// The chaos topics: the same workload on two topics, one fsyncing every
// append (flush.messages=1), one leaving it to the page cache (the
// default), so a machine crash loses an unsynced tail only on the second.
// Both have the partition lifecycle running all the time: 16 KiB segments
// roll several times a second, retention.bytes keeps about four of them
// and retention.ms removes segments of a partition that gets no writes
// for a while; removed segments' files go after one second.
const (
	chaosTopic      = "chaos"       // default flush
	chaosTopicFsync = "chaos-fsync" // flush.messages=1
	chaosPartitions = 2             // per topic
	// chaosRetentionCheck is log.retention.check.interval.ms, when the
	// binary has the flag.
	chaosRetentionCheck = time.Second
	chaosRetentionFlag  = "log-retention-check-interval"
)

var (
	chaosTopics      = []string{chaosTopic, chaosTopicFsync}
	chaosTopicConfig = map[string]string{
		"min.insync.replicas":  "2",
		"segment.bytes":        strconv.Itoa(16 << 10),
		"retention.bytes":      strconv.Itoa(64 << 10),
		"retention.ms":         "15000",
		"file.delete.delay.ms": "1000",
	}
)

// The faults a chaos schedule applies, one at a time.
const (
	faultKill    = "kill"     // SIGKILL a broker, restart it
	faultPause   = "pause"    // SIGSTOP a broker, SIGCONT it
	faultIsolate = "isolate"  // cut one broker off the other brokers and the clients
	faultCtrlCut = "ctrl-cut" // cut the controller connection of a partition's leader
	// faultCrash is a machine crash: SIGKILL, the data directory cut
	// back to what was fsynced (harness.MachineCrash), restart.
	faultCrash = "machine-crash"
	// faultRecrash deposes a partition's leader (SIGKILL and restart, or
	// a controller cut that lets it take writes nobody replicates, then
	// healed), and crashes it again (SIGKILL or machine crash) as soon as
	// it logs a truncation: truncated segments, producer snapshots and
	// epoch caches are at their freshest when the crash comes.
	faultRecrash = "recrash"
	// chaosRate is each producer's pace, records per millisecond.
	chaosRate = 4
	// A filler record of chaosFillerSize bytes every chaosFillerEvery
	// per partition: about 170 KB/s, see runChaos.
	chaosFillerSize  = 512
	chaosFillerEvery = 3 * time.Millisecond
	chaosReaders     = 3 // consumers, started during the run
)

var chaosFaults = []string{faultKill, faultPause, faultIsolate, faultCtrlCut, faultCrash, faultRecrash}

// chaosTP names a partition of a chaos topic.
type chaosTP struct {
	topic string
	p     int32
}

func (tp chaosTP) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.p) }

// chaosTPs lists every partition of the chaos topics.
func chaosTPs() []chaosTP {
	var out []chaosTP
	for _, topic := range chaosTopics {
		for p := range int32(chaosPartitions) {
			out = append(out, chaosTP{topic, p})
		}
	}
	return out
}

// chaosCounts tallies what a run did, for its summary.
type chaosCounts struct {
	faults map[string]int
	// crashes counts machine crashes that dropped unsynced data (with a
	// journal); crashesNoJournal those that were plain SIGKILLs for want
	// of one.
	crashes, crashesNoJournal int
	// recrashes counts crashes right after a leader change;
	// recrashTruncated those that came after the deposed leader logged a
	// truncation.
	recrashes, recrashTruncated int
	droppedBytes                int64
}

// TestChaos is the short fault test (one round of each fault, in an order
// picked by SKEIN_TEST_SEED); TestChaosLong is the long one (`make
// chaos`). Both: 1 controller, 3 brokers behind proxies, the two chaos
// topics (2 partitions each, RF=3, min.insync.replicas=2, tiny segments,
// retention on); an idempotent acks=all producer per partition writes
// throughout, and consumers reading every partition from the start are
// started during the run. The checks are listed at chaosCheck.
func TestChaos(t *testing.T) {
	runChaos(t, 0)
}

// TestChaosLong applies random faults for chaosLongFor, or for
// SKEIN_CHAOS_FOR (a Go duration); it runs only with SKEIN_CHAOS=long
// (`make chaos`).
func TestChaosLong(t *testing.T) {
	if os.Getenv("SKEIN_CHAOS") != "long" {
		t.Skip("long chaos test: run with SKEIN_CHAOS=long (make chaos)")
	}
	d := chaosLongFor
	if s := os.Getenv("SKEIN_CHAOS_FOR"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("SKEIN_CHAOS_FOR=%q: want a positive duration such as 10m", s)
		}
	}
	runChaos(t, d)
}

// runChaos runs the chaos workload: with longFor 0, one round of each
// fault in a seeded order; otherwise seeded random faults until longFor
// has passed.
func runChaos(t *testing.T, longFor time.Duration) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0xc4a05))
	t.Logf("seed %d (repeat with SKEIN_TEST_SEED=%d)", seed, seed)
	began := time.Now()

	brokerArgs := append([]string{"--replica-lag-time-max", chaosLag.String()}, chaosTxnBrokerArgs...)
	if harness.SupportsFlag(t, "broker", chaosRetentionFlag) {
		brokerArgs = append(brokerArgs, "--"+chaosRetentionFlag, chaosRetentionCheck.String())
	} else {
		t.Logf("WARNING: this skein binary has no --%s: retention runs every 5 minutes (the storage default), so this run deletes little or nothing by retention", chaosRetentionFlag)
	}
	c := harness.StartCluster(t, harness.Options{
		Brokers:        3,
		Proxies:        true,
		FsyncJournal:   true,
		ControllerArgs: []string{"--session-timeout", chaosSession.String()},
		BrokerArgs:     brokerArgs,
	})
	keepLogsOnFailure(t, c, seed)
	for _, topic := range chaosTopics {
		cfg := make(map[string]*string)
		for k, v := range chaosTopicConfig {
			cfg[k] = strPtr(v)
		}
		if topic == chaosTopicFsync {
			cfg["flush.messages"] = strPtr("1")
		}
		createTopic(t, c, topic, chaosPartitions, 3, cfg)
	}
	txnCfg := make(map[string]*string)
	for k, v := range chaosTxnTopicConfig {
		txnCfg[k] = strPtr(v)
	}
	createTopic(t, c, chaosTxnTopic, chaosTxnPartitions, 3, txnCfg)
	chaosFullISR(t, c, 30*time.Second)
	if _, err := os.Stat(c.Brokers[0].JournalPath); err != nil {
		t.Logf("WARNING: no fsync journal at %s (the binary does not write %s): a machine crash is a plain SIGKILL", c.Brokers[0].JournalPath, harness.FsyncJournalEnv)
	}
	watch := startChaosWatch(t, c)

	// The producers: one idempotent producer per partition, so a
	// partition that cannot take writes (its leader isolated) does not
	// hold up the others through a shared buffer: the leaders of the
	// others keep getting writes and notice a follower that stopped
	// fetching. Batches are not compressed, so the final check can decode
	// them from the replicas' files.
	ledgers := make(map[string]*harness.Ledger)
	for _, topic := range chaosTopics {
		ledgers[topic] = new(harness.Ledger)
	}
	acked := func() int {
		n := 0
		for _, l := range ledgers {
			n += l.Acked()
		}
		return n
	}
	produceCtx, cancelProduce := context.WithCancel(context.Background())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var producers []*kgo.Client
	perTP := make(map[chaosTP]*atomic.Int64) // acknowledgements per partition
	var clientLogs []*chaosClientLog
	for _, tp := range chaosTPs() {
		perTP[tp] = new(atomic.Int64)
		klog := &chaosClientLog{name: "producer of " + tp.String()}
		clientLogs = append(clientLogs, klog)
		cl := c.Client(t,
			kgo.WithLogger(klog),
			kgo.DefaultProduceTopic(tp.topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.MaxBufferedRecords(2_000),
			kgo.RecordDeliveryTimeout(3*time.Minute),
			kgo.RetryTimeout(3*time.Minute),
			kgo.RequestTimeoutOverhead(5*time.Second),
			// Learn a moved leadership within seconds even when the
			// broker the client was talking to is blackholed.
			kgo.MetadataMinAge(100*time.Millisecond),
			kgo.MetadataMaxAge(2*time.Second),
		)
		producers = append(producers, cl)
		stream := fmt.Sprintf("%s%d", tp.topic, tp.p)
		ledger, acks := ledgers[tp.topic], perTP[tp]
		promise := func(r *kgo.Record, err error) {
			ledger.Promise(r, err)
			if err == nil {
				acks.Add(1)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for seq := int64(0); ; seq++ {
				if seq%chaosRate == 0 {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
				cl.Produce(produceCtx, &kgo.Record{Partition: tp.p, Value: []byte(harness.Value(stream, seq))}, promise)
			}
		}()
	}
	// Filler: per partition of chaosTopic, acks=0 records of
	// chaosFillerSize bytes every chaosFillerEvery, not idempotent, not
	// checked. A leader takes them without waiting for its followers, so
	// while one lags (paused, isolated, restarting) its log end runs ahead
	// of the high watermark by more than retention.bytes: retention that
	// ignored the high watermark would delete uncommitted records, which
	// chaosWatch reports. (Not on chaosTopicFsync: an fsync per filler
	// batch on three replicas would only load the machine.)
	// The filler clients are flushed and closed once the producers stop,
	// before the checks: an acks=0 record still in a client's buffer (its
	// leader was unreachable a moment ago) would otherwise be appended
	// after the replicas' files were read, and a consumer still running
	// would deliver an offset past the end the checks saw.
	var fillers []*kgo.Client
	for _, tp := range chaosTPs() {
		if tp.topic != chaosTopic {
			continue
		}
		cl := c.Client(t,
			kgo.DefaultProduceTopic(tp.topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.NoAck()),
			kgo.DisableIdempotentWrite(),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.MaxBufferedRecords(500),
			kgo.MetadataMinAge(100*time.Millisecond),
			kgo.MetadataMaxAge(2*time.Second),
		)
		fillers = append(fillers, cl)
		stream := fmt.Sprintf("%s%d", tp.topic, tp.p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(chaosFillerEvery)
			defer tick.Stop()
			for seq := int64(0); ; seq++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				cl.TryProduce(produceCtx, &kgo.Record{Partition: tp.p, Value: []byte(harness.Filler(stream, seq, chaosFillerSize))}, nil)
			}
		}()
	}
	stopProducing := sync.OnceFunc(func() { close(stop); wg.Wait() })
	txn := startChaosTxn(t, c, seed)
	clientLogs = append(clientLogs, txn.logs...)

	var readers []*chaosReader
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range clientLogs {
				l.dump(t)
			}
		}
		txn.abort()
		watch.stop()
		for _, r := range readers {
			r.stop()
		}
		for _, b := range c.Brokers {
			_ = b.Resume()
			c.Rejoin(b)
			c.HealControllers(b)
		}
		cancelProduce()
		stopProducing()
	})
	// progress waits for n more acknowledgements in all and, with
	// everyPartition, for at least one more on every partition: a
	// producer stuck on one partition would otherwise go unnoticed while
	// the others write.
	progress := func(n int, everyPartition bool, timeout time.Duration) {
		t.Helper()
		want := acked() + n
		before := make(map[chaosTP]int64)
		for tp, a := range perTP {
			before[tp] = a.Load()
		}
		harness.WaitFor(t, timeout, func() (bool, string) {
			if got := acked(); got < want {
				var errs []string
				for topic, l := range ledgers {
					failed, err := l.Failed()
					errs = append(errs, fmt.Sprintf("%s: failed %d (first error: %v)", topic, failed, err))
				}
				return false, fmt.Sprintf("acknowledged %d of %d; %s", got, want, strings.Join(errs, "; "))
			}
			for tp, a := range perTP {
				if everyPartition && a.Load() == before[tp] {
					return false, fmt.Sprintf("%s: no acknowledgement since %d", tp, before[tp])
				}
			}
			return true, ""
		})
	}
	progress(2_000, true, 30*time.Second)
	txn.progress(t, 30*time.Second)

	// The schedule.
	var schedule []string
	if longFor == 0 {
		schedule = slices.Clone(chaosFaults)
		rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	}
	readerAt := map[int]bool{0: true, 5: true, 20: true} // rounds before which a consumer starts
	if longFor == 0 {
		readerAt = map[int]bool{0: true, 1: true, len(schedule) - 1: true}
	}
	counts := chaosCounts{faults: make(map[string]int)}
	deletes := newChaosDeletes(t, c)
	rounds := 0
	for round := 0; ; round++ {
		var fault string
		if longFor == 0 {
			if round == len(schedule) {
				break
			}
			fault = schedule[round]
		} else {
			if time.Since(began) > longFor {
				break
			}
			fault = chaosFaults[rng.IntN(len(chaosFaults))]
		}
		if readerAt[round] && len(readers) < chaosReaders {
			readers = append(readers, startChaosReader(t, c, len(readers)))
		}
		start := time.Now()
		victim := applyFault(t, c, rng, fault, &counts, func() {
			progress(500, false, 60*time.Second)
			deletes.once(rng)
		})
		counts.faults[fault]++
		rounds++
		chaosFullISR(t, c, 60*time.Second)
		progress(1_000, true, 60*time.Second)
		if longFor > 0 {
			// Every transactional producer commits again after each
			// fault (the short run checks it once, after the last: a
			// producer whose transaction was caught by the fault waits
			// for its timeout, seconds).
			txn.progress(t, 60*time.Second)
		}
		t.Logf("round %d: %s %s done in %v; %d acknowledged, %d transactions committed", round, fault, victim, time.Since(start).Round(time.Millisecond), acked(), txn.commits())
	}
	for len(readers) < chaosReaders {
		readers = append(readers, startChaosReader(t, c, len(readers)))
	}
	txn.progress(t, 60*time.Second)

	stopProducing()
	// The transactional producers stop too, each leaving a transaction
	// open: the coordinator aborts them while the checks below run.
	txn.stop()
	flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, cl := range producers {
		if err := cl.Flush(flushCtx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	for _, cl := range fillers {
		if err := cl.Flush(flushCtx); err != nil {
			t.Fatalf("flush filler: %v", err)
		}
		cl.Close()
	}
	for topic, l := range ledgers {
		if failed, err := l.Failed(); failed > 0 {
			t.Errorf("%s: %d records failed; first error: %v", topic, failed, err)
		}
	}
	summary := chaosCheck(t, c, ledgers, readers, watch)
	delProblems, delSummary := deletes.check(t)
	for _, p := range delProblems {
		t.Error(p)
	}
	summary += "\n" + delSummary
	summary += "\n" + txn.check(t, c)
	t.Logf("seed %d: %d rounds %v in %v; machine crashes %d (%d bytes of unsynced data dropped; %d without a journal: plain kills); crashes right after a leader change %d (%d after a logged truncation)\n%s",
		seed, rounds, counts.faults, time.Since(began).Round(time.Second), counts.crashes, counts.droppedBytes, counts.crashesNoJournal,
		counts.recrashes, counts.recrashTruncated, summary)
}

// applyFault applies one fault to a broker picked by rng (ctrl-cut and
// recrash: the leader of a partition picked by rng), waits until the
// cluster has noticed it and then for during (writes going on without the
// victim), undoes it, and returns the victim's name.
func applyFault(t *testing.T, c *harness.Cluster, rng *rand.Rand, fault string, counts *chaosCounts, during func()) string {
	t.Helper()
	victim := c.Brokers[rng.IntN(len(c.Brokers))]
	tps := append(chaosTPs(), chaosTxnTPs()...)
	tp := tps[rng.IntN(len(tps))]
	if fault == faultCtrlCut || fault == faultRecrash {
		victim = c.Broker(chaosLeader(t, c, nil, tp))
	}
	observer := chaosOther(c, victim)
	lost := func() (bool, string) { return chaosLost(observer, victim.ID, fault != faultIsolate) }
	switch fault {
	case faultKill:
		victim.MustKill()
		harness.WaitFor(t, 30*time.Second, lost)
		during()
		victim.Restart()
	case faultCrash:
		chaosMachineCrash(t, victim, counts)
		harness.WaitFor(t, 30*time.Second, lost)
		during()
		victim.Restart()
	case faultPause:
		if err := victim.Pause(); err != nil {
			t.Fatal(err)
		}
		err := harness.Poll(lostWait, lost)
		if err == nil {
			during()
		}
		if rerr := victim.Resume(); rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			t.Fatalf("paused %s: %v", victim.Name, err)
		}
	case faultIsolate:
		c.Isolate(victim)
		err := harness.Poll(lostWait, lost)
		if err == nil {
			during()
		}
		c.Rejoin(victim)
		if err != nil {
			t.Fatalf("isolated %s: %v", victim.Name, err)
		}
	case faultCtrlCut:
		chaosCtrlCut(t, c, victim, observer, tp, during)
	case faultRecrash:
		chaosRecrash(t, c, rng, victim, observer, tp, counts, during)
	default:
		t.Fatalf("unknown fault %q", fault)
	}
	return victim.Name
}

// chaosCtrlCut cuts victim, the leader of tp, from the controller, waits
// until another broker leads tp, probes victim as a deposed leader, lets
// during run and heals the cut.
func chaosCtrlCut(t *testing.T, c *harness.Cluster, victim, observer *harness.Node, tp chaosTP, during func()) {
	t.Helper()
	c.CutControllers(victim)
	err := harness.Poll(30*time.Second, func() (bool, string) {
		if l := chaosLeader(t, c, observer, tp); l == victim.ID {
			return false, fmt.Sprintf("%s still leads %s", victim.Name, tp)
		}
		return true, ""
	})
	if err == nil {
		// The deposed leader does not know yet: it must not
		// acknowledge an acks=all write it cannot replicate.
		probeDeposedLeader(t, victim, tp)
		during()
	}
	c.HealControllers(victim)
	if err != nil {
		t.Fatalf("cut %s from the controller: %v", victim.Name, err)
	}
}

// chaosRecrash deposes victim, the leader of tp (by a SIGKILL and restart
// or by a controller cut, picked by rng), then crashes it again (SIGKILL
// or machine crash, picked by rng) as soon as its log shows a truncation
// after its return (or 10 s after it, if none comes), and restarts it.
func chaosRecrash(t *testing.T, c *harness.Cluster, rng *rand.Rand, victim, observer *harness.Node, tp chaosTP, counts *chaosCounts, during func()) {
	t.Helper()
	var back int64 // victim's log size when it came back
	if rng.IntN(2) == 0 {
		victim.MustKill()
		harness.WaitFor(t, 30*time.Second, func() (bool, string) { return chaosLost(observer, victim.ID, true) })
		during()
		back = victim.LogSize()
		victim.Restart()
	} else {
		chaosCtrlCut(t, c, victim, observer, tp, func() {
			during()
			back = victim.LogSize()
		})
	}
	// Storage and the follower log these when they cut a log back.
	truncations := []string{"log truncated", "truncated diverging log", "log restarted at the leader's log start offset"}
	err := harness.Poll(10*time.Second, func() (bool, string) {
		log := victim.LogSince(back)
		for _, s := range truncations {
			if strings.Contains(log, s) {
				return true, ""
			}
		}
		return false, "no truncation logged"
	})
	counts.recrashes++
	if err == nil {
		counts.recrashTruncated++
	}
	how := "SIGKILL"
	if rng.IntN(2) == 0 {
		how = "machine crash"
		chaosMachineCrash(t, victim, counts)
	} else {
		victim.MustKill()
	}
	t.Logf("recrash: %s (deposed leader of %s) crashed again by %s, truncation logged first: %v", victim.Name, tp, how, err == nil)
	victim.Restart()
}

// chaosMachineCrash crashes victim's machine (harness.MachineCrash) and
// counts it; without a journal it was a plain SIGKILL.
func chaosMachineCrash(t *testing.T, victim *harness.Node, counts *chaosCounts) {
	t.Helper()
	r, err := victim.MachineCrash()
	switch {
	case errors.Is(err, harness.ErrNoJournal):
		counts.crashesNoJournal++
		t.Logf("machine crash of %s: no fsync journal, a plain SIGKILL", victim.Name)
	case err != nil:
		t.Fatalf("machine crash of %s: %v", victim.Name, err)
	default:
		counts.crashes++
		counts.droppedBytes += r.Dropped
		t.Logf("machine crash of %s: %s", victim.Name, r)
	}
}

// lostWait bounds the wait for the cluster to notice a paused or isolated
// broker. It leaves the ISRs only once writes reach its partitions' leaders
// and it falls behind (replica.lag.time.max.ms); a producer that was talking
// to the victim first sits out its request timeout and a metadata refresh,
// which on a loaded CI machine took more than 30 s once.
const lostWait = 60 * time.Second

// probeDeposedLeader sends one acks=all produce request for tp straight
// to b (and to b alone: no client retry may carry it to the new leader),
// which the controller has replaced as that partition's leader while b
// cannot hear it. b may refuse it or time out; an acknowledgement would be
// a write its former followers never fetch.
func probeDeposedLeader(t *testing.T, b *harness.Node, tp chaosTP) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("chaos-probe"), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = tp.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = tp.p
	rp.Records = recordBatch(harness.Value("probe", time.Now().UnixNano()))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		t.Logf("deposed leader %s did not answer the acks=all probe: %v", b.Name, err)
		return
	}
	if code := produceCode(t, resp); code != 0 {
		t.Logf("deposed leader %s refused the acks=all probe: %v", b.Name, kerr.ErrorForCode(code))
		return
	}
	t.Errorf("deposed leader %s acknowledged an acks=all write at %s@%d that its former followers do not fetch",
		b.Name, tp, resp.Topics[0].Partitions[0].BaseOffset)
}

// chaosOther returns a running broker other than b.
func chaosOther(c *harness.Cluster, b *harness.Node) *harness.Node {
	for _, o := range c.Brokers {
		if o != b && o.Running() {
			return o
		}
	}
	return nil
}

// chaosPartition is one partition in a broker's Metadata.
type chaosPartition struct {
	leader int32
	isr    []int32
}

// chaosMetadata returns the partitions of the chaos topics (the
// transactional one included) as broker b (asked directly, not through its
// proxy) sees them.
func chaosMetadata(b *harness.Node) (map[chaosTP]chaosPartition, error) {
	out := make(map[chaosTP]chaosPartition)
	for _, topic := range append(slices.Clone(chaosTopics), chaosTxnTopic) {
		want := chaosPartitions
		if topic == chaosTxnTopic {
			want = chaosTxnPartitions
		}
		parts, err := topicStateVia(b, topic)
		if err == nil && len(parts) != want {
			err = fmt.Errorf("metadata from %s lists %d partitions of %s", b.Name, len(parts), topic)
		}
		if err != nil {
			return nil, err
		}
		for p, s := range parts {
			out[chaosTP{topic, p}] = s
		}
	}
	return out, nil
}

// topicStateVia returns the leader and ISR of each partition of topic in
// broker b's Metadata (b asked directly, not through its proxy).
func topicStateVia(b *harness.Node, topic string) (map[int32]chaosPartition, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	r, err := b.Request(req, 2*time.Second)
	if err != nil {
		return nil, err
	}
	resp := r.(*kmsg.MetadataResponse)
	out := make(map[int32]chaosPartition)
	for _, mt := range resp.Topics {
		for _, p := range mt.Partitions {
			out[p.Partition] = chaosPartition{leader: p.Leader, isr: slices.Sorted(slices.Values(p.ISR))}
		}
	}
	return out, nil
}

// chaosLost reports whether observer's metadata shows that the cluster
// noticed the loss of broker id: it is in no ISR of a partition led by
// another and, with asLeader, it leads no partition with another replica
// in the ISR (partitions of the transactional topic aside). An isolated broker that still reaches the controller keeps
// its leaderships and, as Kafka does, its followers in the ISR while no
// write reaches it (a follower is in sync while its log end equals the
// leader's), so asLeader is false for it.
func chaosLost(observer *harness.Node, id int32, asLeader bool) (bool, string) {
	parts, err := chaosMetadata(observer)
	if err != nil {
		return false, err.Error()
	}
	for tp, s := range parts {
		if tp.topic == chaosTxnTopic {
			// Its writes stall while the transactional producers'
			// coordinator is cut off (until their transactions time
			// out): the victim would stay in its ISRs for that long.
			continue
		}
		if asLeader && s.leader == id && len(s.isr) > 1 || s.leader != id && slices.Contains(s.isr, id) {
			return false, fmt.Sprintf("%s: leader %d ISR %v", tp, s.leader, s.isr)
		}
	}
	return true, ""
}

// chaosFullISR waits until every running broker sees every partition with a
// leader and all three replicas in the ISR.
func chaosFullISR(t *testing.T, c *harness.Cluster, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		for _, b := range c.Brokers {
			parts, err := chaosMetadata(b)
			if err != nil {
				return false, err.Error()
			}
			for tp, s := range parts {
				if s.leader < 0 || len(s.isr) != len(c.Brokers) {
					return false, fmt.Sprintf("%s: %s: leader %d ISR %v", b.Name, tp, s.leader, s.isr)
				}
			}
		}
		return true, ""
	})
}

// chaosLeader returns the leader of tp as via sees it (nil: any running
// broker), waiting until there is one.
func chaosLeader(t *testing.T, c *harness.Cluster, via *harness.Node, tp chaosTP) int32 {
	t.Helper()
	if via == nil {
		via = chaosOther(c, nil)
	}
	var leader int32
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		parts, err := chaosMetadata(via)
		if err != nil {
			return false, err.Error()
		}
		leader = parts[tp].leader
		return leader >= 0, "no leader"
	})
	return leader
}

// keepLogsOnFailure copies the nodes' logs (and the brokers' fsync
// journals) to a directory named after the seed when the test fails (the
// data directories are removed).
func keepLogsOnFailure(t *testing.T, c *harness.Cluster, seed uint64) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("skein-chaos-%d", seed))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Logf("keep logs: %v", err)
			return
		}
		for _, n := range append(append([]*harness.Node(nil), c.Controllers...), c.Brokers...) {
			for _, path := range []string{n.LogPath, n.JournalPath} {
				if path == "" {
					continue
				}
				if b, err := os.ReadFile(path); err == nil {
					_ = os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644)
				}
			}
		}
		t.Logf("logs kept in %s", dir)
	})
}

// chaosClientLog keeps the last warnings and errors a franz-go client
// logged, printed when the test fails (why a producer stopped).
type chaosClientLog struct {
	name  string
	mu    sync.Mutex
	lines []string
}

func (*chaosClientLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l *chaosClientLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 30 {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, fmt.Sprintf("%s %s %s %v", time.Now().Format("15:04:05.000"), level, msg, keyvals))
}

func (l *chaosClientLog) dump(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) > 0 {
		t.Logf("---- %s: last %d client warnings ----\n%s", l.name, len(l.lines), strings.Join(l.lines, "\n"))
	}
}
