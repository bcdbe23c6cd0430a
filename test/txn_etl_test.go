package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestTxnETLMember is not a test: TestTransactionalETL runs the test
// binary with -test.run of this name and the arguments bootstrap, group,
// input, output, transactional id after "--" to get one member of its
// consume-transform-produce pipeline in a process it can SIGKILL. It
// prints "committed N" after each committed transaction.
func TestTxnETLMember(t *testing.T) {
	if flag.NArg() != 5 {
		t.Skip("helper process of TestTransactionalETL")
	}
	a := flag.Args()
	bootstrap, group, input, output, id := a[0], a[1], a[2], a[3], a[4]
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(10*time.Second),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.DefaultProduceTopic(output),
		kgo.SessionTimeout(2*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.RebalanceTimeout(5*time.Second),
		kgo.RetryTimeout(30*time.Second),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RequireStableFetchOffsets(),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "session:", err)
		os.Exit(2)
	}
	defer sess.Close()
	ctx := context.Background()
	for {
		fs := sess.PollRecords(ctx, 100)
		fs.EachError(func(topic string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", topic, p, err)
		})
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Fprintln(os.Stderr, "begin:", err)
			os.Exit(3)
		}
		var produced atomic.Int64
		var failed atomic.Value
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Store(err)
					return
				}
				produced.Add(1)
			})
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "end:", err)
		case committed:
			fmt.Printf("committed %d\n", produced.Load())
		default:
			fmt.Fprintf(os.Stderr, "aborted %d (%v)\n", fs.NumRecords(), failed.Load())
		}
	}
}

// TestTransactionalETL: franz-go's GroupTransactSession runs a
// consume-transform-produce pipeline (three member processes, one group,
// input topic of n records copied to an output topic) across 3 brokers. A
// member is SIGKILLed mid-run, then the broker coordinating the group;
// every input record must appear exactly once in the output under
// read_committed.
func TestTransactionalETL(t *testing.T) {
	const n = 3000
	args := append([]string{"--group-min-session-timeout", "500ms"}, txnBrokerArgs...)
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: args, ControllerArgs: fastFenceControllerArgs})
	const input, output, group = "etl-in", "etl-out", "etl"
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, topic := range []string{input, output} {
		if _, err := adm.CreateTopic(ctx, 6, 3, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	prod := c.Client(t, kgo.DefaultProduceTopic(input))
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("rec-" + strconv.Itoa(i))})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	members := map[int]*harness.Child{}
	start := func(i int) {
		name := fmt.Sprintf("etl-member-%d", i)
		members[i] = harness.StartChild(t, name, bin,
			[]string{"-test.run", "^TestTxnETLMember$", "--", c.Bootstrap(), group, input, output, fmt.Sprintf("etl-txn-%d", i)},
			harness.ChildOutput{
				Stdout: func(line string) {
					if v, ok := strings.CutPrefix(line, "committed "); ok {
						k, _ := strconv.Atoi(v)
						committed.Add(int64(k))
					}
				},
				Stderr: func(line string) { t.Logf("%s: %s", name, line) },
			})
	}
	for i := range 3 {
		start(i)
	}
	waitCommitted := func(atLeast int64) {
		harness.WaitFor(t, 60*time.Second, func() (bool, string) {
			return committed.Load() >= atLeast, fmt.Sprintf("%d records committed by the members", committed.Load())
		})
	}
	waitCommitted(n / 10)
	members[0].Kill(t)
	t.Logf("SIGKILLed member 0 after %d committed", committed.Load())
	start(3) // a replacement joins
	waitCommitted(n / 3)
	coords := adm.FindGroupCoordinators(ctx, group)
	if err := coords[group].Err; err != nil {
		t.Fatal(err)
	}
	coord := coords[group].NodeID
	broker := c.Broker(coord)
	broker.MustKill()
	t.Logf("SIGKILLed the group coordinator, broker %d, after %d committed", coord, committed.Load())

	// Read the output under read_committed until every input record is
	// there.
	seen := map[string]int{}
	cons := c.Client(t, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	total := 0
	harness.WaitFor(t, 90*time.Second, func() (bool, string) {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
		})
		return len(seen) == n, fmt.Sprintf("%d of %d input records in the output (%d read, %d committed by members)",
			len(seen), n, total, committed.Load())
	})
	broker.Restart()
	// Stop the members; their open transactions end (timeout or fencing)
	// and then the output is read once more to its last stable offset.
	for _, m := range members {
		m.Kill(t)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		l, err := adm.ListTransactions(ctx, nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
		if err != nil {
			return false, err.Error()
		}
		return len(l) == 0, fmt.Sprintf("%d transactions not complete", len(l))
	})
	// Every transaction is complete: a reader from the start gets every
	// committed record at once. It reads until it has every input record
	// and then a poll brings nothing more.
	recount := map[string]int{}
	final := c.Client(t, kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	quiet := false
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		got := 0
		final.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			recount[string(r.Value)]++
			got++
		})
		quiet = got == 0 && len(recount) == n
		return quiet, fmt.Sprintf("final read: %d distinct records", len(recount))
	})
	dups := 0
	for v, k := range recount {
		if k > 1 {
			dups++
			if dups < 5 {
				t.Errorf("%s appears %d times in the output", v, k)
			}
		}
	}
	for i := range n {
		if recount["rec-"+strconv.Itoa(i)] == 0 {
			t.Fatalf("rec-%d is missing from the output", i)
		}
	}
	if dups > 0 {
		t.Fatalf("%d input records appear more than once in the output", dups)
	}
	t.Logf("%d records, each exactly once in the output under read_committed (%d committed by the members)", n, committed.Load())
	for _, topic := range []string{output, "__consumer_offsets", "__transaction_state"} {
		if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic); res.Err != nil {
			t.Fatalf("skein replicas verify %s: %v\n%s%s", topic, res.Err, res.Stdout, res.Stderr)
		} else if topic == output {
			t.Logf("skein replicas verify %s:\n%s", topic, res.Stdout)
		}
	}
}
