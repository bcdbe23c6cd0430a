package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// txnBrokerArgs keep the transaction and offsets topics small and fence a
// killed broker quickly.
var txnBrokerArgs = append([]string{
	"--group-initial-rebalance-delay", "100ms",
	"--offsets-topic-num-partitions", "6",
	"--transaction-state-log-num-partitions", "6",
	"--transaction-abort-timed-out-interval", "200ms",
}, fastFenceBrokerArgs...)

// newTxnClient is a kgo transactional producer of id.
func newTxnClient(t *testing.T, c *harness.Cluster, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return c.Client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
}

// produceTxn produces values to topic in one transaction and ends it.
func produceTxn(ctx context.Context, cl *kgo.Client, topic string, commit bool, values ...string) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			return fmt.Errorf("produce %s: %w", v, err)
		}
	}
	return cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
}

// readAll consumes topic from the start until it has n records or the
// timeout passes, and returns the values.
func readAll(t *testing.T, c *harness.Cluster, topic string, level kgo.IsolationLevel, n int, timeout time.Duration) []string {
	t.Helper()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// TestTransactions: franz-go transactional producers on 3 brokers.
//   - A committed transaction is read by read_committed and
//     read_uncommitted consumers; an aborted one by read_uncommitted only.
//   - DescribeTransactions and ListTransactions (kadm) show the producer.
//   - Zombie fencing: a second producer with the same transactional id
//     fences the first, whose next transaction fails with PRODUCER_FENCED
//     (or INVALID_PRODUCER_EPOCH), and whose ongoing transaction is aborted.
//   - The replicas stay byte-identical with the markers.
func TestTransactions(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: txnBrokerArgs, ControllerArgs: fastFenceControllerArgs})
	const topic = "txn-basic"
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	p1 := newTxnClient(t, c, "tx-a")
	if err := produceTxn(ctx, p1, topic, true, "c1", "c2", "c3"); err != nil {
		t.Fatalf("committed transaction: %v", err)
	}
	if err := produceTxn(ctx, p1, topic, false, "a1", "a2"); err != nil {
		t.Fatalf("aborted transaction: %v", err)
	}
	if err := produceTxn(ctx, p1, topic, true, "c4"); err != nil {
		t.Fatalf("second committed transaction: %v", err)
	}
	committed := readAll(t, c, topic, kgo.ReadCommitted(), 4, 10*time.Second)
	if len(committed) != 4 {
		t.Fatalf("read_committed read %v, want c1-c4", committed)
	}
	for _, v := range committed {
		if v[0] != 'c' {
			t.Fatalf("read_committed read an aborted record: %v", committed)
		}
	}
	all := readAll(t, c, topic, kgo.ReadUncommitted(), 6, 10*time.Second)
	if len(all) != 6 {
		t.Fatalf("read_uncommitted read %v, want 6 records", all)
	}

	described, err := adm.DescribeTransactions(ctx, "tx-a")
	if err != nil {
		t.Fatalf("describe transactions: %v", err)
	}
	d, ok := described["tx-a"]
	if !ok || d.Err != nil || d.ProducerID < 0 {
		t.Fatalf("describe tx-a: %+v", described)
	}
	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatalf("list transactions: %v", err)
	}
	if _, ok := listed["tx-a"]; !ok {
		t.Fatalf("list transactions: %+v", listed)
	}

	// Zombie fencing. The old instance has a transaction open.
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatalf("zombie's produce: %v", err)
	}
	p2 := newTxnClient(t, c, "tx-a")
	if err := produceTxn(ctx, p2, topic, true, "c5"); err != nil {
		t.Fatalf("new instance's transaction: %v", err)
	}
	err = p1.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	committed = readAll(t, c, topic, kgo.ReadCommitted(), 5, 10*time.Second)
	if len(committed) != 5 || committed[len(committed)-1] == "zombie" {
		t.Fatalf("read_committed after fencing: %v", committed)
	}
	for _, v := range committed {
		if v == "zombie" {
			t.Fatalf("the zombie's record was committed: %v", committed)
		}
	}

	// skein transactions: an ongoing transaction is listed and described;
	// abort --start-offset ends it on its partition (a hanging
	// transaction), so read_committed gets past it at once.
	const hang = "txn-hang"
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, hang); err != nil {
		t.Fatal(err)
	}
	p3 := newTxnClient(t, c, "tx-hang", kgo.TransactionTimeout(time.Minute))
	if err := p3.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p3.ProduceSync(ctx, &kgo.Record{Topic: hang, Value: []byte("hanging")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := c.Client(t).ProduceSync(ctx, &kgo.Record{Topic: hang, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res := c.RunCLI(t, 30*time.Second, nil, "transactions", "list", "--state", "Ongoing")
	if res.Err != nil || !strings.Contains(res.Stdout, "tx-hang") || strings.Contains(res.Stdout, "tx-a") {
		t.Fatalf("skein transactions list --state Ongoing: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "transactions", "describe", "tx-hang")
	if res.Err != nil || !strings.Contains(res.Stdout, "Ongoing") || !strings.Contains(res.Stdout, hang+"-0") {
		t.Fatalf("skein transactions describe tx-hang: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("skein transactions describe tx-hang:\n%s", res.Stdout)
	if got := readAll(t, c, hang, kgo.ReadCommitted(), 1, time.Second); len(got) != 0 {
		t.Fatalf("read_committed read %v past an open transaction", got)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "transactions", "abort", "--topic", hang, "--partition", "0", "--start-offset", "0")
	if res.Err != nil {
		t.Fatalf("skein transactions abort: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	if got := readAll(t, c, hang, kgo.ReadCommitted(), 1, 10*time.Second); len(got) != 1 || got[0] != "after" {
		t.Fatalf("read_committed after the abort read %v, want [after]", got)
	}
	for _, tp := range []string{topic, hang} {
		if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", tp); res.Err != nil {
			t.Fatalf("skein replicas verify %s: %v\n%s%s", tp, res.Err, res.Stdout, res.Stderr)
		}
	}
	if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", "__transaction_state"); res.Err != nil {
		t.Fatalf("skein replicas verify __transaction_state: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
}

// TestTransactionTimeout: a producer that opens a transaction and stops
// holds the last stable offset back only until transaction.timeout.ms:
// the coordinator aborts it (with an epoch bump that fences the producer)
// and read_committed consumers get past it.
func TestTransactionTimeout(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, HTTP: true, BrokerArgs: txnBrokerArgs, ControllerArgs: fastFenceControllerArgs})
	const topic = "txn-timeout"
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := newTxnClient(t, c, "tx-slow", kgo.TransactionTimeout(1500*time.Millisecond))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hanging")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A plain producer writes after it: read_committed cannot see this
	// record while the transaction is open.
	plain := c.Client(t)
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	l, err := adm.ListEndOffsets(ctx, topic) // read_uncommitted: the HW
	if err != nil {
		t.Fatal(err)
	}
	if hw, _ := l.Lookup(topic, 0); hw.Offset != 2 {
		t.Fatalf("high watermark %d, want 2", hw.Offset)
	}
	start := time.Now()
	var got []string
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		got = readAll(t, c, topic, kgo.ReadCommitted(), 1, 500*time.Millisecond)
		return len(got) == 1, fmt.Sprintf("read_committed read %v", got)
	})
	if got[0] != "after" {
		t.Fatalf("read_committed read %q, want the record after the aborted one", got[0])
	}
	if waited := time.Since(start); waited < time.Second {
		t.Logf("note: LSO moved %v after the produce", waited)
	}
	// The markers are in (the LSO moved); the coordinator records
	// CompleteAbort once they are acknowledged, a moment later.
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		d, err := adm.DescribeTransactions(ctx, "tx-slow")
		if err != nil {
			return false, err.Error()
		}
		st := d["tx-slow"].State
		return st == "CompleteAbort", fmt.Sprintf("state after the timeout: %q, want CompleteAbort", st)
	})
	err = p.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		t.Fatalf("the expired transaction committed")
	}
	t.Logf("expired producer's commit: %v", err)
	// The coordinator counted it (skein_transactions_timed_out_total).
	var timedOut, markers float64
	for _, b := range c.Brokers {
		fams, err := b.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := harness.MetricValue(fams, "skein_transactions_timed_out_total", nil)
		timedOut += v
		v, _ = harness.MetricValue(fams, "skein_transaction_markers_written_total", nil)
		markers += v
	}
	if timedOut != 1 || markers < 1 {
		t.Fatalf("metrics: %v transactions timed out, %v markers written; want 1 and at least 1", timedOut, markers)
	}
}

// TestTransactionsTLS: with TLS everywhere (mutual), the coordinator's
// markers and the partitions' KIP-890 verifications reach the other
// brokers over the TLS inter-broker listener.
func TestTransactionsTLS(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, TLS: &harness.TLSOptions{Mutual: true},
		BrokerArgs: txnBrokerArgs, ControllerArgs: fastFenceControllerArgs})
	const topic = "txn-tls"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Admin(t).CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	p := newTxnClient(t, c, "tx-tls", kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	vals := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	if err := produceTxn(ctx, p, topic, true, vals...); err != nil {
		t.Fatalf("committed transaction: %v", err)
	}
	if err := produceTxn(ctx, p, topic, false, "a0", "a1", "a2"); err != nil {
		t.Fatalf("aborted transaction: %v", err)
	}
	if got := readAll(t, c, topic, kgo.ReadCommitted(), len(vals), 10*time.Second); len(got) != len(vals) {
		t.Fatalf("read_committed read %v, want %v", got, vals)
	}
	if got := readAll(t, c, topic, kgo.ReadUncommitted(), 9, 10*time.Second); len(got) != 9 {
		t.Fatalf("read_uncommitted read %v, want 9 records", got)
	}
}
