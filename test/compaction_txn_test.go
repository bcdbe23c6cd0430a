package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestCompactionTransactions: a compacted topic (RF 3, small segments,
// delete.retention.ms=0) written by two transactional producers at once,
// one transaction in three aborted, then plain filler records. Once every
// replica has cleaned to its active segment (each on its own schedule):
//   - the replicas are byte-identical (`skein replicas verify` too);
//   - a read_committed consumer sees, below the cleaned offset, every key
//     once with its latest committed value, never an aborted one, and
//     everything above it as committed;
//   - a read_uncommitted consumer sees no aborted record below the cleaned
//     offset (the cleaner removed them, as Kafka does);
//   - most commit markers are gone (their transaction holds no record any
//     more and delete.retention.ms passed; abort markers stay), and the
//     last stable offset is the high watermark: no transaction was left
//     open by a removed marker.
func TestCompactionTransactions(t *testing.T) {
	const (
		topic    = "compacted-txn"
		perProd  = 30
		perTxn   = 4
		keys     = 12
		fillers  = 80
		producer = 2
	)
	c := compactedTxnCluster(t, topic, "2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type acked struct {
		key, value string
		committed  bool // false: aborted
	}
	var (
		mu      sync.Mutex
		byOff   = map[int64]acked{}
		aborted = map[string]bool{} // values
		wg      sync.WaitGroup
		errs    = make(chan error, producer)
	)
	for p := range producer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newTxnClient(t, c, fmt.Sprintf("compact-txn-%d", p), kgo.DefaultProduceTopic(topic))
			for i := range perProd {
				commit := i%3 != 2
				if err := cl.BeginTransaction(); err != nil {
					errs <- err
					return
				}
				var offs []int64
				var recs []acked
				for r := range perTxn {
					k := fmt.Sprintf("key-%02d", (i*perTxn+r+p*5)%keys)
					v := fmt.Sprintf("p%d-t%d-r%d-%s", p, i, r, strings.Repeat("x", 60))
					rec, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).First()
					if err != nil {
						errs <- fmt.Errorf("producer %d transaction %d: %w", p, i, err)
						return
					}
					offs = append(offs, rec.Offset)
					recs = append(recs, acked{key: k, value: v, committed: commit})
				}
				if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					errs <- fmt.Errorf("producer %d ending transaction %d: %w", p, i, err)
					return
				}
				mu.Lock()
				for j, off := range offs {
					byOff[off] = recs[j]
					if !commit {
						aborted[recs[j].value] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Plain filler records seal the transactions' segments and move the
	// log time past every marker.
	plain := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	end := int64(0)
	for i := range fillers {
		k, v := fmt.Sprintf("filler-%02d", i%20), fmt.Sprintf("filler-%d-%s", i, strings.Repeat("f", 150))
		rec, err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).First()
		if err != nil {
			t.Fatal(err)
		}
		byOff[rec.Offset] = acked{key: k, value: v, committed: true}
		end = rec.Offset + 1
	}

	cleanedTo := waitCleaned(t, c, topic, 60*time.Second)
	checkReplicasIdentical(t, c, topic, 1, 10*time.Second)

	read := func(level kgo.IsolationLevel) map[int64]acked {
		t.Helper()
		cons := c.Client(t,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(level),
			kgo.FetchMaxWait(200*time.Millisecond),
		)
		got := map[int64]acked{}
		for done := false; !done; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("reading back: %v (read %d records)", ctx.Err(), len(got))
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				got[r.Offset] = acked{key: string(r.Key), value: string(r.Value)}
				done = done || r.Offset >= end-1
			})
		}
		return got
	}

	latest := map[string]int64{} // key -> offset of its latest committed value below cleanedTo
	for off, a := range byOff {
		if off < cleanedTo && a.committed {
			if o, ok := latest[a.key]; !ok || off > o {
				latest[a.key] = off
			}
		}
	}
	committed := read(kgo.ReadCommitted())
	seen := map[string]bool{}
	for off, r := range committed {
		a, ok := byOff[off]
		if !ok || a.key != r.key || a.value != r.value {
			t.Fatalf("read_committed: offset %d holds %s=%q; acknowledged there: %s=%q", off, r.key, r.value, a.key, a.value)
		}
		if aborted[r.value] {
			t.Fatalf("read_committed: offset %d holds an aborted record %s=%q", off, r.key, r.value)
		}
		if off < cleanedTo {
			if seen[r.key] || latest[r.key] != off {
				t.Fatalf("read_committed: key %s at %d below %d (seen before: %v), latest committed at %d", r.key, off, cleanedTo, seen[r.key], latest[r.key])
			}
			seen[r.key] = true
		}
	}
	for off, a := range byOff {
		if _, ok := committed[off]; !ok && a.committed && (off >= cleanedTo || latest[a.key] == off) {
			t.Fatalf("read_committed: the committed record %s=%q at %d is missing (cleaned to %d)", a.key, a.value, off, cleanedTo)
		}
	}
	for off, r := range read(kgo.ReadUncommitted()) {
		if aborted[r.value] && off < cleanedTo {
			t.Fatalf("read_uncommitted: the aborted record %s=%q at %d survived cleaning to %d", r.key, r.value, off, cleanedTo)
		}
	}

	// Markers: one per transaction was written; count those left.
	segs, err := readSegments(filepath.Join(c.Brokers[0].DataDir, topic+"-0"))
	if err != nil {
		t.Fatal(err)
	}
	commits, aborts := 0, 0
	for _, s := range segs {
		for data := s.data; len(data) > 0; {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(data); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			data = data[int(b.Length)+12:]
			if b.Attributes&0x20 == 0 {
				continue
			}
			var r kmsg.Record
			var k kmsg.ControlRecordKey
			if err := r.ReadFrom(b.Records); err != nil || k.ReadFrom(r.Key) != nil {
				t.Fatalf("%s: marker at %d: %v", s.name, b.FirstOffset, err)
			}
			if k.Type == kmsg.ControlRecordKeyTypeCommit {
				commits++
			} else {
				aborts++
			}
		}
	}
	abortedTxns := producer * (perProd / 3)
	if committedTxns := producer*perProd - abortedTxns; aborts != abortedTxns || commits > committedTxns/2 {
		t.Fatalf("%d of %d commit markers and %d of %d abort markers left after cleaning with delete.retention.ms=0",
			commits, committedTxns, aborts, abortedTxns)
	}
	lso, err := c.Admin(t).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(topic, 0); o.Offset != end {
		t.Fatalf("last stable offset %d, high watermark %d", o.Offset, end)
	}
	t.Logf("cleaned to %d of %d; %d commit and %d abort markers left of %d transactions; %d records read_committed", cleanedTo, end, commits, aborts, producer*perProd, len(committed))

	res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic)
	if res.Err != nil {
		t.Fatalf("skein replicas verify: %v\nstdout:\n%s\nstderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
}

// compactedTxnCluster starts 3 brokers whose cleaners run often, with
// topic (1 partition, RF 3) compacted in small segments with
// delete.retention.ms=0 and min.insync.replicas minISR.
func compactedTxnCluster(t *testing.T, topic, minISR string) *harness.Cluster {
	t.Helper()
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: append([]string{"--log-cleaner-backoff", "200ms"}, txnBrokerArgs...)})
	createTopic(t, c, topic, 1, 3, map[string]*string{
		"cleanup.policy":            strPtr("compact"),
		"segment.bytes":             strPtr("4096"),
		"min.cleanable.dirty.ratio": strPtr("0.01"),
		"delete.retention.ms":       strPtr("0"),
		"min.insync.replicas":       strPtr(minISR),
	})
	return c
}

// TestCompactionLaggingFollower: a follower copies records of a
// transaction and stops before its abort marker; while it is away the
// leader's cleaner removes the aborted records, and the commit marker of
// the producer's transaction before (its records superseded, the marker
// past delete.retention.ms=0). Back, the follower must still get the abort
// marker (abort markers are never removed): once it leads, a
// read_committed consumer must not see the aborted records it kept, and
// its last stable offset must reach its high watermark.
func TestCompactionLaggingFollower(t *testing.T) {
	const topic, id = "compacted-lag", "lagging-txn"
	c := compactedTxnCluster(t, topic, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(cl *kgo.Client, k, v string) int64 {
		t.Helper()
		r, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).First()
		if err != nil {
			t.Fatalf("produce %s: %v", k, err)
		}
		return r.Offset
	}
	txn := func(cl *kgo.Client, commit bool, kv ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(kv); i += 2 {
			produce(cl, kv[i], kv[i+1])
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	p := newTxnClient(t, c, id, kgo.DefaultProduceTopic(topic))
	txn(p, true, "w", "superseded")
	d, err := c.Admin(t).DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The follower to stop: neither the leader nor the coordinator.
	leader := partitionLeader(t, c, topic, 0)
	var lagging *harness.Node
	var others []*harness.Node
	for _, b := range c.Brokers {
		if lagging == nil && b.ID != leader && b.ID != d[id].Coordinator {
			lagging = b
			continue
		}
		others = append(others, b)
	}
	t.Logf("leader %d, coordinator %d, stopping %s", leader, d[id].Coordinator, lagging.Name)

	// The transaction's records reach every replica (acks=all, full ISR).
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(p, "a", "aborted")
	produce(p, "b", "aborted")
	lagging.MustStop()
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	plain := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce(plain, "w", "newer")
	txn(p, true, "x", "committed")
	end := int64(0)
	for i := range 150 {
		end = produce(plain, fmt.Sprintf("filler-%02d", i%20), strings.Repeat("f", 150)) + 1
	}
	waitCleanedOn(t, others, topic, 60*time.Second)

	lagging.Restart()
	waitFullISR(t, c, topic)
	// Its copy rolled where the leader's segments start: it cleans the
	// same ranges, to the same bytes.
	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	// The lagging replica leads: the others stop (controlled shutdown).
	for _, b := range others {
		b.MustStop()
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		l := partitionLeader(t, c, topic, 0)
		return l == lagging.ID, fmt.Sprintf("leader %d", l)
	})
	cons := c.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	for done := false; !done; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back from %s: %v", lagging.Name, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "aborted" {
				t.Fatalf("read_committed on %s: aborted record %s at %d", lagging.Name, r.Key, r.Offset)
			}
			done = done || r.Offset >= end-1
		})
	}
	lso, err := c.Admin(t).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup(topic, 0); o.Offset != end {
		t.Fatalf("last stable offset on %s: %d, high watermark %d", lagging.Name, o.Offset, end)
	}
}
