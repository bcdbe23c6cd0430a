package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

	"github.com/skein-io/skein/test/harness"
)

// The chaos test's transactional workload (alongside the idempotent one,
// through the same faults): transactional producers (acks=all) write
// unique values to chaosTxnTopic in transactions of 1 to
// chaosTxnMaxRecords records over its partitions, commit most, abort one
// in chaosTxnAbortOneIn on purpose and now and then abandon one half-way
// (the client is left as it is, a zombie, and a new one with the same
// transactional id takes over: InitProducerId fences the old one and
// aborts its transaction). After an error they do what an application
// does: abort if possible and, when that fails or the producer is fenced,
// start a new client with the same transactional id. When the run stops,
// each leaves its last transaction open, as a killed producer would: the
// coordinator must abort it when its timeout (chaosTxnTimeout) passes.
// A read_committed consumer follows the topic throughout. The ledger keeps
// each transaction's outcome: committed (EndTransaction(commit)
// succeeded), aborted (deliberately, after a produce error, abandoned or
// left open: it was never asked to commit) or uncertain
// (EndTransaction(commit) failed: Kafka may have committed it or not). The
// checks are listed at chaosTxnWorkload.check.
const (
	chaosTxnTopic      = "chaos-txn"
	chaosTxnPartitions = 3
	chaosTxnProducers  = 2
	chaosTxnMaxRecords = 12
	chaosTxnAbortOneIn = 4
	// chaosTxnAbandonOneIn: a transaction abandoned half-way to a new
	// client of the same transactional id (zombie fencing).
	chaosTxnAbandonOneIn = 40
	// chaosTxnTimeout is the producers' transaction.timeout.ms; the
	// brokers run with --transaction-max-timeout chaosTxnMaxTimeout and
	// look for expired transactions every chaosTxnAbortInterval.
	chaosTxnTimeout       = 8 * time.Second
	chaosTxnMaxTimeout    = 15 * time.Second
	chaosTxnAbortInterval = 500 * time.Millisecond
	// chaosTxnPace: each producer begins at most one transaction per pace.
	chaosTxnPace = 20 * time.Millisecond
	// chaosTxnLastTimeout is the timeout of the transaction each producer
	// leaves open when the run stops.
	chaosTxnLastTimeout = 2 * time.Second
)

// chaosTxnBrokerArgs are the brokers' transaction settings in the chaos
// tests: a small __transaction_state, a short maximum timeout and a
// frequent scan for expired transactions, so a transaction left open is
// aborted within seconds.
var chaosTxnBrokerArgs = []string{
	"--transaction-state-log-num-partitions", "6",
	"--transaction-max-timeout", chaosTxnMaxTimeout.String(),
	"--transaction-abort-timed-out-interval", chaosTxnAbortInterval.String(),
}

// chaosTxnTopicConfig: RF 3 (createTopic), min ISR 2, small segments (a
// transaction's records, its marker and the aborted-transactions index
// spread over several segments), no retention (every committed record
// must be there at the end).
var chaosTxnTopicConfig = map[string]string{
	"min.insync.replicas": "2",
	"segment.bytes":       strconv.Itoa(16 << 10),
}

// chaosTxnTPs lists the transactional topic's partitions.
func chaosTxnTPs() []chaosTP {
	var out []chaosTP
	for p := range int32(chaosTxnPartitions) {
		out = append(out, chaosTP{chaosTxnTopic, p})
	}
	return out
}

type chaosTxnOutcome int

const (
	txnCommitted chaosTxnOutcome = iota
	txnAborted
	txnUncertain
)

// chaosTxn is one transaction of the ledger.
type chaosTxn struct {
	name    string // "txn0#12": producer 0's transaction 12
	outcome chaosTxnOutcome
	why     string // for aborted and uncertain ones
	values  []chaosTxnValue
}

// chaosTxnValue is one record of a transaction: where it was produced and
// where it was acknowledged (offset -1: no acknowledgement).
type chaosTxnValue struct {
	value     string
	partition int32
	offset    int64
}

// chaosTxnWorkload runs the transactional producers and the read_committed
// follower.
type chaosTxnWorkload struct {
	c         *harness.Cluster
	bootstrap []string
	stopCh    chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
	committed []atomic.Int64 // per producer
	reader    *chaosTxnReader
	logs      []*chaosClientLog

	mu        sync.Mutex
	txns      []*chaosTxn
	clients   []*kgo.Client // every client made, closed at the end
	recreated int           // clients replaced after an error
	errs      map[string]int
	timeline  []string // the first errors, with their time
}

func startChaosTxn(t *testing.T, c *harness.Cluster, seed uint64) *chaosTxnWorkload {
	t.Helper()
	w := &chaosTxnWorkload{
		c: c, bootstrap: strings.Split(c.Bootstrap(), ","), stopCh: make(chan struct{}),
		committed: make([]atomic.Int64, chaosTxnProducers), errs: make(map[string]int),
	}
	for i := range chaosTxnProducers {
		klog := &chaosClientLog{name: fmt.Sprintf("transactional producer %d", i)}
		w.logs = append(w.logs, klog)
		w.wg.Add(1)
		go w.produce(i, rand.New(rand.NewPCG(seed, uint64(i)+0x7a)), klog)
	}
	w.reader = startChaosTxnReader(t, c)
	return w
}

// client makes a transactional client of id (one that fails to start is
// retried: the cluster may be in the middle of a fault).
func (w *chaosTxnWorkload) client(id string, klog *chaosClientLog, timeout time.Duration) *kgo.Client {
	for {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(w.bootstrap...),
			kgo.ClientID(id),
			kgo.WithLogger(klog),
			kgo.TransactionalID(id),
			kgo.TransactionTimeout(timeout),
			kgo.DefaultProduceTopic(chaosTxnTopic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(kgo.NoCompression()), // the check decodes the files
			kgo.ProducerLinger(time.Millisecond),
			kgo.RecordDeliveryTimeout(30*time.Second),
			kgo.RetryTimeout(30*time.Second),
			kgo.RequestTimeoutOverhead(5*time.Second),
			kgo.MetadataMinAge(100*time.Millisecond),
			kgo.MetadataMaxAge(2*time.Second),
		)
		if err == nil {
			w.mu.Lock()
			w.clients = append(w.clients, cl)
			w.mu.Unlock()
			return cl
		}
		w.countErr("new client", err)
		time.Sleep(100 * time.Millisecond) // a retry pace, not a wait for a condition
	}
}

func (w *chaosTxnWorkload) countErr(what string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	w.errs[what+": "+msg]++
	if len(w.timeline) < 40 {
		w.timeline = append(w.timeline, fmt.Sprintf("%s %s: %s", time.Now().Format("15:04:05.000"), what, msg))
	}
}

func (w *chaosTxnWorkload) record(tx *chaosTxn, outcome chaosTxnOutcome, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tx.outcome, tx.why = outcome, why
	w.txns = append(w.txns, tx)
}

// produce is producer i's loop.
func (w *chaosTxnWorkload) produce(i int, rng *rand.Rand, klog *chaosClientLog) {
	defer w.wg.Done()
	id := fmt.Sprintf("chaos-txn-%d", i)
	stream := fmt.Sprintf("txn%d", i)
	var seq int64
	cl := w.client(id, klog, chaosTxnTimeout)
	var zombies []*kgo.Client // abandoned clients, closed after the next commit
	replace := func() {
		w.closeClient(cl)
		cl = w.client(id, klog, chaosTxnTimeout)
		w.mu.Lock()
		w.recreated++
		w.mu.Unlock()
	}
	// end bounds EndTransaction (the client retries for RetryTimeout).
	end := func(how kgo.TransactionEndTry) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return cl.EndTransaction(ctx, how)
	}
	tick := time.NewTicker(chaosTxnPace)
	defer tick.Stop()
	for n := 0; ; n++ {
		stopping := false
		select {
		case <-w.stopCh:
			stopping = true
		case <-tick.C:
		}
		if stopping {
			// The last transaction, left open: a new instance (which
			// fences the current one) with a short timeout, so that
			// the check does not wait long for the abort.
			cl = w.client(id, klog, chaosTxnLastTimeout)
		}
		if err := cl.BeginTransaction(); err != nil {
			w.countErr("begin", err)
			replace()
			continue
		}
		tx := &chaosTxn{name: fmt.Sprintf("%s#%d", stream, n)}
		for range 1 + rng.IntN(chaosTxnMaxRecords) {
			tx.values = append(tx.values, chaosTxnValue{harness.Value(stream, seq), int32(rng.IntN(chaosTxnPartitions)), -1})
			seq++
		}
		abandon := stopping || rng.IntN(chaosTxnAbandonOneIn) == 0
		var pwg sync.WaitGroup
		var perrMu sync.Mutex
		var perr error
		for j := range tx.values {
			v := &tx.values[j]
			r := &kgo.Record{Partition: v.partition, Value: []byte(v.value)}
			if abandon {
				cl.TryProduce(context.Background(), r, nil)
				continue
			}
			pwg.Add(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer pwg.Done()
				if err != nil {
					err = fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, err)
					perrMu.Lock()
					perr = cmpOr(perr, err)
					perrMu.Unlock()
					return
				}
				v.offset = r.Offset
			})
		}
		if abandon {
			// Left open, its records maybe still in flight: a killed
			// producer. At the end of the run the coordinator's timeout
			// must abort it; during the run the new client's
			// InitProducerId fences this one and aborts it.
			if stopping {
				cl.Flush(context.Background()) //nolint:errcheck // outcome irrelevant: aborted either way
				w.record(tx, txnAborted, "left open at the end")
				return
			}
			w.record(tx, txnAborted, "abandoned to a new client (zombie)")
			zombies = append(zombies, cl)
			cl = w.client(id, klog, chaosTxnTimeout)
			continue
		}
		pwg.Wait()
		if perr != nil {
			w.countErr(stream+" produce", perr)
			w.record(tx, txnAborted, "produce failed: "+perr.Error())
			if err := end(kgo.TryAbort); err != nil {
				w.countErr("abort after a produce error", err)
				replace()
			}
			continue
		}
		commit := rng.IntN(chaosTxnAbortOneIn) != 0
		err := end(kgo.TransactionEndTry(commit))
		switch {
		case err == nil && commit:
			w.record(tx, txnCommitted, "")
			w.committed[i].Add(1)
			for _, z := range zombies {
				w.closeClient(z) // fenced by now: the new instance committed
			}
			zombies = zombies[:0]
			continue
		case err == nil:
			w.record(tx, txnAborted, "deliberately")
			continue
		case !commit:
			w.countErr("abort", err)
			w.record(tx, txnAborted, "deliberately; the abort failed: "+err.Error())
		case errors.Is(err, kerr.OperationNotAttempted):
			w.countErr("commit", err)
			w.record(tx, txnAborted, "commit not attempted: "+err.Error())
		default:
			w.countErr("commit", err)
			w.record(tx, txnUncertain, err.Error())
		}
		// An EndTransaction failed: abort if possible; a new client
		// otherwise (also when fenced).
		if aerr := end(kgo.TryAbort); aerr != nil || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
			if aerr != nil {
				w.countErr("abort after an EndTransaction error", aerr)
			}
			replace()
		}
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// progress waits until every producer has committed another transaction.
func (w *chaosTxnWorkload) progress(t *testing.T, timeout time.Duration) {
	t.Helper()
	before := make([]int64, len(w.committed))
	for i := range w.committed {
		before[i] = w.committed[i].Load()
	}
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("txn: waited %v for a commit of every transactional producer", d.Round(time.Millisecond))
		}
	}()
	harness.WaitFor(t, timeout, func() (bool, string) {
		for i := range w.committed {
			if w.committed[i].Load() == before[i] {
				w.mu.Lock()
				errs := fmt.Sprint(w.errs)
				w.mu.Unlock()
				return false, fmt.Sprintf("transactional producer %d: no commit since %d (errors so far: %s)", i, before[i], errs)
			}
		}
		return true, ""
	})
}

// stop ends the producers (each leaves its last transaction open).
func (w *chaosTxnWorkload) stop() {
	w.stopOnce.Do(func() { close(w.stopCh) })
	w.wg.Wait()
}

// abort stops everything at cleanup (also after a failure: the clients
// are closed first so no producer waits on a broken cluster).
func (w *chaosTxnWorkload) abort() {
	w.stopOnce.Do(func() { close(w.stopCh) })
	w.closeClients()
	w.wg.Wait()
	w.closeClients()
	w.reader.stop()
}

// commits returns the number of transactions committed so far.
func (w *chaosTxnWorkload) commits() int64 {
	var n int64
	for i := range w.committed {
		n += w.committed[i].Load()
	}
	return n
}

// closeClient closes one producer client.
func (w *chaosTxnWorkload) closeClient(cl *kgo.Client) {
	w.mu.Lock()
	w.clients = slices.DeleteFunc(w.clients, func(c *kgo.Client) bool { return c == cl })
	w.mu.Unlock()
	cl.Close()
}

// closeClients closes every producer client, zombies included.
func (w *chaosTxnWorkload) closeClients() {
	w.mu.Lock()
	cls := w.clients
	w.clients = nil
	w.mu.Unlock()
	for _, cl := range cls {
		cl.Close()
	}
}

// chaosTxnReader is a read_committed consumer of every partition of the
// transactional topic from the start that keeps what it was given and
// checks at delivery that offsets only go up.
type chaosTxnReader struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	seen     map[int32][]harness.Stored
	problems []string
	errs     []string
}

func startChaosTxnReader(t *testing.T, c *harness.Cluster) *chaosTxnReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &chaosTxnReader{cancel: cancel, done: make(chan struct{}), seen: make(map[int32][]harness.Stored)}
	cl := c.Client(t, chaosTxnConsumerOpts("chaos-txn-reader")...)
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			r.mu.Lock()
			fetches.EachError(func(topic string, p int32, err error) {
				if _, loss := errors.AsType[*kgo.ErrDataLoss](err); loss {
					r.problem("%s/%d: %v", topic, p, err)
				}
				if ctx.Err() == nil && len(r.errs) < 20 {
					r.errs = append(r.errs, fmt.Sprintf("%s/%d: %v", topic, p, err))
				}
			})
			fetches.EachRecord(func(rec *kgo.Record) {
				seen := r.seen[rec.Partition]
				if n := len(seen); n > 0 && rec.Offset <= seen[n-1].Offset {
					r.problem("%s/%d: offset %d delivered after %d (repeat or rewind)", rec.Topic, rec.Partition, rec.Offset, seen[n-1].Offset)
				}
				r.seen[rec.Partition] = append(seen, harness.Stored{Offset: rec.Offset, Value: string(rec.Value)})
			})
			r.mu.Unlock()
		}
	}()
	return r
}

// chaosTxnConsumerOpts: read_committed, every partition of the
// transactional topic from the start.
func chaosTxnConsumerOpts(id string) []kgo.Opt {
	parts := make(map[int32]kgo.Offset)
	for p := range int32(chaosTxnPartitions) {
		parts[p] = kgo.NewOffset().AtStart()
	}
	return []kgo.Opt{
		kgo.ClientID(id),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{chaosTxnTopic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
	}
}

func (r *chaosTxnReader) problem(format string, args ...any) {
	if len(r.problems) < 20 {
		r.problems = append(r.problems, "read_committed follower: "+fmt.Sprintf(format, args...))
	}
}

func (r *chaosTxnReader) stop() {
	r.cancel()
	<-r.done
}

// waitUntil waits until the reader has been given each partition's last
// record in last (partition -> offset), then stops it.
func (r *chaosTxnReader) waitUntil(last map[int32]int64, timeout time.Duration) error {
	err := harness.Poll(timeout, func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for p, o := range last {
			seen := r.seen[p]
			if len(seen) == 0 || seen[len(seen)-1].Offset < o {
				got := int64(-1)
				if len(seen) > 0 {
					got = seen[len(seen)-1].Offset
				}
				return false, fmt.Sprintf("%s/%d: read up to %d of %d (fetch errors: %v)", chaosTxnTopic, p, got, o, r.errs)
			}
		}
		return true, ""
	})
	r.stop()
	return err
}

// check runs the end-of-run checks of the transactional workload (the
// producers stopped):
//
//  1. The last stable offset reaches the high watermark on every
//     partition (ListOffsets read_committed and read_uncommitted through
//     the leaders), within chaosTxnTimeout and a margin: the transactions
//     left open (by the producers' stop, abandoned zombies, a client lost
//     in a fault) are aborted by the coordinator.
//  2. Replicas (chaosReplicas, as for the other chaos topics): byte-identical
//     batches, markers included, the same end, no hole; and every
//     replica's files hold a marker for every transaction (none open).
//  3. The read_committed view of the files (harness Committed: the records
//     of committed transactions by Kafka's rule) against the ledger: no
//     record of an aborted transaction; every record of a committed
//     transaction present, at the offset it was acknowledged at; each
//     uncertain transaction present entirely or not at all; no value
//     twice; per partition each producer's values in the order produced;
//     no value the ledger does not know.
//  4. A full read_committed read of every partition through the Kafka
//     read path (franz-go) returns exactly that view.
//  5. The follower that read under read_committed through the faults was
//     given a prefix of that view on every partition (so never an aborted
//     record, a repeat or a record out of order) and reached its end.
//
// It returns the summary lines.
func (w *chaosTxnWorkload) check(t *testing.T, c *harness.Cluster) string {
	t.Helper()
	w.stop()
	defer w.closeClients()
	var summary []string
	problems := 0
	fail := func(format string, args ...any) {
		problems++
		if problems <= 30 {
			t.Errorf("txn: "+format, args...)
		}
	}

	// 1. LSO = HW.
	adm := c.Admin(t)
	start := time.Now()
	var lastLSO string
	err := harness.Poll(chaosTxnTimeout+time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hw, err := adm.ListEndOffsets(ctx, chaosTxnTopic)
		if err == nil {
			err = hw.Error()
		}
		if err != nil {
			return false, "high watermarks: " + err.Error()
		}
		lso, err := adm.ListCommittedOffsets(ctx, chaosTxnTopic)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			return false, "last stable offsets: " + err.Error()
		}
		var behind []string
		for p := range int32(chaosTxnPartitions) {
			h, _ := hw.Lookup(chaosTxnTopic, p)
			l, _ := lso.Lookup(chaosTxnTopic, p)
			if l.Offset != h.Offset {
				behind = append(behind, fmt.Sprintf("%s/%d: LSO %d, high watermark %d", chaosTxnTopic, p, l.Offset, h.Offset))
			}
		}
		lastLSO = strings.Join(behind, "; ")
		return len(behind) == 0, lastLSO
	})
	if err != nil {
		fail("the last stable offset did not reach the high watermark (a transaction left hanging): %v", err)
	}
	lsoWait := time.Since(start).Round(100 * time.Millisecond)

	// 2. Replicas, and the files' read_committed view.
	view := make(map[int32][]harness.Stored)
	for _, tp := range chaosTxnTPs() {
		_, _, msgs := chaosReplicas(t, c, tp)
		for _, m := range msgs {
			fail("%s", m)
		}
		for _, b := range c.Brokers {
			pl, err := harness.ReadPartitionLog(filepath.Join(b.DataDir, tp.topic+"-"+strconv.Itoa(int(tp.p))))
			if err != nil {
				fail("%s: %s: %v", tp, b.Name, err)
				continue
			}
			recs, open, err := pl.Committed()
			if err != nil {
				fail("%s: %s: %v", tp, b.Name, err)
				continue
			}
			if len(open) > 0 {
				fail("%s: %s holds transactions without a marker (producer id: first offset): %v", tp, b.Name, open)
			}
			if _, ok := view[tp.p]; !ok {
				view[tp.p] = recs
			}
		}
	}

	// 3. The view against the ledger.
	w.mu.Lock()
	txns := slices.Clone(w.txns)
	recreated := w.recreated
	errs := w.errs
	if len(w.timeline) > 0 {
		t.Logf("txn: first producer errors:\n%s", strings.Join(w.timeline, "\n"))
	}
	w.mu.Unlock()
	type where struct {
		tx *chaosTxn
		v  chaosTxnValue
	}
	ledger := make(map[string]where)
	outcomes := make(map[chaosTxnOutcome]int)
	whys := make(map[string]int)
	records := 0
	for _, tx := range txns {
		outcomes[tx.outcome]++
		if tx.outcome == txnAborted {
			why, _, _ := strings.Cut(tx.why, ":")
			whys[why]++
		}
		for _, v := range tx.values {
			ledger[v.value] = where{tx, v}
			records++
		}
	}
	found := make(map[string]int64) // value -> offset in the view
	present := make(map[*chaosTxn]int)
	lastEnd := make(map[int32]int64) // partition -> offset of the last committed record
	committedRecs := 0
	for p, recs := range view {
		lastSeq := make(map[string]int64)
		for _, r := range recs {
			lastEnd[p] = r.Offset
			committedRecs++
			tp := chaosTP{chaosTxnTopic, p}
			if o, dup := found[r.Value]; dup {
				fail("%s: %q at %d and at %d (duplicated)", tp, r.Value, o, r.Offset)
			}
			found[r.Value] = r.Offset
			wh, ok := ledger[r.Value]
			if !ok {
				fail("%s: %q at %d: no producer wrote it", tp, r.Value, r.Offset)
				continue
			}
			present[wh.tx]++
			switch {
			case wh.tx.outcome == txnAborted:
				fail("%s: %q at %d is readable under read_committed, but its transaction %s was aborted (%s)", tp, r.Value, r.Offset, wh.tx.name, wh.tx.why)
			case wh.v.partition != p:
				fail("%s: %q at %d was produced to partition %d", tp, r.Value, r.Offset, wh.v.partition)
			case wh.v.offset >= 0 && wh.v.offset != r.Offset:
				fail("%s: %q at %d was acknowledged at %d", tp, r.Value, r.Offset, wh.v.offset)
			}
			if stream, seq, ok := harness.ParseValue(r.Value); ok {
				if last, ok := lastSeq[stream]; ok && seq <= last {
					fail("%s: %q at %d after seq %d of the same producer (order lost)", tp, r.Value, r.Offset, last)
				}
				lastSeq[stream] = seq
			}
		}
	}
	uncertainIn := 0
	for _, tx := range txns {
		switch n := present[tx]; {
		case tx.outcome == txnCommitted && n != len(tx.values):
			var lost []string
			for _, v := range tx.values {
				if _, ok := found[v.value]; !ok {
					lost = append(lost, fmt.Sprintf("%q (acknowledged at %s/%d@%d)", v.value, chaosTxnTopic, v.partition, v.offset))
				}
			}
			fail("committed transaction %s: %d of its %d records readable; lost: %s", tx.name, n, len(tx.values), strings.Join(lost, ", "))
		case tx.outcome == txnUncertain && n != 0 && n != len(tx.values):
			fail("uncertain transaction %s (%s): %d of its %d records readable: neither all nor none", tx.name, tx.why, n, len(tx.values))
		case tx.outcome == txnUncertain && n > 0:
			uncertainIn++
		}
	}

	// 4. The Kafka read path under read_committed.
	got := chaosTxnReadAll(t, c, lastEnd, time.Minute)
	for p, want := range view {
		tp := chaosTP{chaosTxnTopic, p}
		g := got[p]
		if !slices.Equal(g, want) {
			i := 0
			for i < len(g) && i < len(want) && g[i] == want[i] {
				i++
			}
			switch {
			case i < len(g) && i < len(want):
				fail("%s: read_committed read %q at %d where the files' committed view holds %q at %d", tp, g[i].Value, g[i].Offset, want[i].Value, want[i].Offset)
			case i < len(g):
				fail("%s: read_committed read %q at %d beyond the files' committed view (%d records)", tp, g[i].Value, g[i].Offset, len(want))
			default:
				fail("%s: read_committed read %d records, the files' committed view holds %d (next %q at %d)", tp, len(g), len(want), want[i].Value, want[i].Offset)
			}
		}
	}

	// 5. The follower.
	if err := w.reader.waitUntil(lastEnd, time.Minute); err != nil {
		fail("read_committed follower: %v", err)
	}
	for _, m := range w.reader.problems {
		fail("%s", m)
	}
	followed := 0
	for p, seen := range w.reader.seen {
		want := view[p]
		tp := chaosTP{chaosTxnTopic, p}
		for i, r := range seen {
			followed++
			if i >= len(want) || r != want[i] {
				what := "not in the files' committed view"
				if wh, ok := ledger[r.Value]; ok && wh.tx.outcome == txnAborted {
					what = fmt.Sprintf("of aborted transaction %s (%s)", wh.tx.name, wh.tx.why)
				}
				if i < len(want) {
					what += fmt.Sprintf("; the view holds %q at %d there", want[i].Value, want[i].Offset)
				}
				fail("read_committed follower: %s: given %q at %d, %s", tp, r.Value, r.Offset, what)
				break
			}
		}
	}

	summary = append(summary,
		fmt.Sprintf("%s: %d transactions (%d records): %d committed, %d aborted %v, %d uncertain (%d of them committed); %d clients replaced after errors; LSO reached the high watermark %v after the producers stopped",
			chaosTxnTopic, len(txns), records, outcomes[txnCommitted], outcomes[txnAborted], whys, outcomes[txnUncertain], uncertainIn, recreated, lsoWait),
		fmt.Sprintf("%s: %d committed records checked in the files, the same read under read_committed; the follower read %d", chaosTxnTopic, committedRecs, followed),
		fmt.Sprintf("%s: producer errors: %v", chaosTxnTopic, errs),
		fmt.Sprintf("%s problems: %d", chaosTxnTopic, problems))
	if problems > 30 {
		t.Errorf("txn: ... %d problems in all", problems)
	}
	return strings.Join(summary, "\n")
}

// chaosTxnReadAll reads every partition of the transactional topic from
// the start under read_committed until it has been given the record at
// last[p] (or timeout passes), and then for one more fetch wait (anything
// beyond would be a record the files' view does not have).
func chaosTxnReadAll(t *testing.T, c *harness.Cluster, last map[int32]int64, timeout time.Duration) map[int32][]harness.Stored {
	t.Helper()
	cl := c.Client(t, chaosTxnConsumerOpts("chaos-txn-final")...)
	defer cl.Close()
	out := make(map[int32][]harness.Stored)
	done := func() bool {
		for p, o := range last {
			if n := len(out[p]); n == 0 || out[p][n-1].Offset < o {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	extra := false
	for ctx.Err() == nil {
		if done() {
			if extra {
				break
			}
			extra = true
			var c2 context.CancelFunc
			ctx, c2 = context.WithTimeout(ctx, time.Second)
			defer c2()
		}
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], harness.Stored{Offset: r.Offset, Value: string(r.Value)})
		})
	}
	if !done() {
		t.Errorf("txn: the final read_committed read did not reach the end of every partition in %v", timeout)
	}
	return out
}
