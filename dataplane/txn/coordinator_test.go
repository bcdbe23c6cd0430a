package txn

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

const testNode = 1

var testStart = time.UnixMilli(1_700_000_000_000)

// fakeMarkers records marker jobs; a test completes them with release.
type fakeMarkers struct {
	mu   sync.Mutex
	jobs []fakeJob
}

type fakeJob struct {
	job  *MarkerJob
	done func(error)
}

func (f *fakeMarkers) Enqueue(job *MarkerJob, done func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, fakeJob{job, done})
}

func (f *fakeMarkers) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}

func (f *fakeMarkers) take() []fakeJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.jobs
	f.jobs = nil
	return out
}

// env is a coordinator over a real partition manager and storage in a temp
// dir, leading both partitions of a 2-partition __transaction_state, with a
// fake clock and fake markers.
type env struct {
	t       *testing.T
	store   *storage.Manager
	parts   *partition.Manager
	c       *Coordinator
	clock   *clockwork.FakeClock
	markers *fakeMarkers
	epoch   int32
	nextPID int64
	// completeWait is the coordinator's EndTxnCompleteWait (0 in most
	// tests: EndTxn answers at once and they drive the markers).
	completeWait time.Duration
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	parts, err := partition.New(partition.DefaultConfig(testNode), store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	e := &env{t: t, store: store, parts: parts, clock: clockwork.NewFakeClockAt(testStart), markers: &fakeMarkers{}, nextPID: 1000}
	e.start()
	e.apply(testNode)
	return e
}

func (e *env) start() {
	cfg := DefaultConfig(testNode)
	cfg.Clock = e.clock
	cfg.MaxTimeout = time.Minute
	cfg.EndTxnCompleteWait = e.completeWait
	c, err := New(cfg, e.markers)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
	e.t.Cleanup(c.Close)
	e.parts.SetOnLeaders(StateTopic, c.OnLeaders)
}

func (e *env) apply(leader int32) {
	e.epoch++
	img := image.New()
	img.Index = uint64(e.epoch)
	for _, b := range []int32{1, 2} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "127.0.0.1", Port: 9090 + b, Epoch: 1}
	}
	t := &image.Topic{Name: StateTopic, ID: [16]byte{9}, Configs: map[string]string{"cleanup.policy": "compact"}}
	for i := range int32(2) {
		t.Partitions = append(t.Partitions, &image.Partition{Partition: i, Replicas: []int32{1, 2}, ISR: []int32{leader},
			Leader: leader, LeaderEpoch: e.epoch, PartitionEpoch: e.epoch})
	}
	img.Topics[StateTopic] = t
	e.parts.ApplyImage(img)
	if leader == testNode {
		waitUntil(e.t, "state partitions loaded", func() bool {
			e.c.mu.Lock()
			defer e.c.mu.Unlock()
			if len(e.c.shards) != 2 {
				return false
			}
			for _, s := range e.c.shards {
				if !s.loaded {
					return false
				}
			}
			return true
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) alloc(context.Context) (int64, error) {
	e.nextPID++
	return e.nextPID, nil
}

func (e *env) init(id string, pid int64, epoch int16) (int64, int16, int16) {
	return e.c.InitProducerID(context.Background(), id, 10*time.Second, pid, epoch, e.alloc)
}

func (e *env) state(id string) Transaction {
	e.t.Helper()
	tx, code := e.c.Describe(id)
	if code != 0 {
		e.t.Fatalf("describe %s: %v", id, kerr.ErrorForCode(code))
	}
	return tx
}

// release completes every queued marker job and waits for the complete
// record.
func (e *env) release(id string, want State) {
	e.t.Helper()
	for _, j := range e.markers.take() {
		j.done(nil)
	}
	waitUntil(e.t, id+" "+want.String(), func() bool {
		tx, _ := e.c.Describe(id)
		return tx.State == want
	})
}

var tp0 = TopicPartition{"t", 0}

func TestCommitLifecycle(t *testing.T) {
	e := newEnv(t)
	pid, epoch, code := e.init("a", -1, -1)
	if code != 0 || epoch != 0 {
		t.Fatalf("init: pid %d epoch %d %v", pid, epoch, kerr.ErrorForCode(code))
	}
	if st := e.state("a"); st.State != StateEmpty || st.ProducerID != pid {
		t.Fatalf("after init: %+v", st)
	}
	ctx := context.Background()
	if codes := e.c.AddPartitions(ctx, "a", pid, epoch, []TopicPartition{tp0, {"t", 1}}, false); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("add partitions: %v", codes)
	}
	if st := e.state("a"); st.State != StateOngoing || len(st.Partitions) != 2 || st.StartMs != testStart.UnixMilli() {
		t.Fatalf("after add: %+v", st)
	}
	// KIP-890 verification: in the transaction, or not.
	if codes := e.c.AddPartitions(ctx, "a", pid, epoch, []TopicPartition{tp0, {"u", 0}}, true); codes[0] != 0 || codes[1] != kerr.InvalidTxnState.Code {
		t.Fatalf("verify: %v", codes)
	}
	if code := e.c.EndTxn(ctx, "a", pid, epoch, true); code != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(code))
	}
	if st := e.state("a"); st.State != StatePrepareCommit {
		t.Fatalf("after end: %+v", st)
	}
	// Until the markers are written, a new transaction waits.
	if codes := e.c.AddPartitions(ctx, "a", pid, epoch, []TopicPartition{tp0}, false); codes[0] != kerr.ConcurrentTransactions.Code {
		t.Fatalf("add during prepare: %v", codes)
	}
	if code := e.c.EndTxn(ctx, "a", pid, epoch, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort during prepare commit: %v", kerr.ErrorForCode(code))
	}
	jobs := e.markers.take()
	if len(jobs) != 1 || !jobs[0].job.Commit || len(jobs[0].job.Partitions) != 2 || jobs[0].job.ProducerID != pid {
		t.Fatalf("marker jobs: %+v", jobs)
	}
	jobs[0].done(nil)
	waitUntil(t, "complete commit", func() bool { tx, _ := e.c.Describe("a"); return tx.State == StateCompleteCommit })
	if st := e.state("a"); len(st.Partitions) != 0 || st.StartMs != -1 {
		t.Fatalf("complete: %+v", st)
	}
	// A retried EndTxn of the same outcome succeeds; the other fails.
	if code := e.c.EndTxn(ctx, "a", pid, epoch, true); code != 0 {
		t.Fatalf("retried commit: %v", kerr.ErrorForCode(code))
	}
	if code := e.c.EndTxn(ctx, "a", pid, epoch, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %v", kerr.ErrorForCode(code))
	}
	// The next transaction.
	if codes := e.c.AddPartitions(ctx, "a", pid, epoch, []TopicPartition{tp0}, false); codes[0] != 0 {
		t.Fatalf("second add: %v", codes)
	}
	if code := e.c.EndTxn(ctx, "a", pid, epoch, false); code != 0 {
		t.Fatalf("abort: %v", kerr.ErrorForCode(code))
	}
	e.release("a", StateCompleteAbort)
}

func TestFencing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pid, e0, _ := e.init("z", -1, -1)
	if codes := e.c.AddPartitions(ctx, "z", pid, e0, []TopicPartition{tp0}, false); codes[0] != 0 {
		t.Fatalf("add: %v", codes)
	}
	// A new instance: the ongoing transaction is aborted under a new
	// epoch; the new instance retries until it is done.
	if _, _, code := e.init("z", -1, -1); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init over ongoing: %v", kerr.ErrorForCode(code))
	}
	jobs := e.markers.take()
	if len(jobs) != 1 || jobs[0].job.Commit || jobs[0].job.ProducerEpoch != e0+1 {
		t.Fatalf("abort markers: %+v", jobs)
	}
	// The old instance is fenced meanwhile.
	if code := e.c.EndTxn(ctx, "z", pid, e0, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("zombie commit: %v", kerr.ErrorForCode(code))
	}
	jobs[0].done(nil)
	waitUntil(t, "abort complete", func() bool { tx, _ := e.c.Describe("z"); return tx.State == StateCompleteAbort })
	pid2, e2, code := e.init("z", -1, -1)
	if code != 0 || pid2 != pid || e2 != e0+2 {
		t.Fatalf("init after abort: %d/%d %v", pid2, e2, kerr.ErrorForCode(code))
	}
	if codes := e.c.AddPartitions(ctx, "z", pid, e0, []TopicPartition{tp0}, false); codes[0] != kerr.ProducerFenced.Code {
		t.Fatalf("zombie add: %v", codes)
	}
	if codes := e.c.AddPartitions(ctx, "z", pid+1, e2, []TopicPartition{tp0}, false); codes[0] != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("wrong producer id: %v", codes)
	}
	// KIP-360: the current instance bumps its own epoch; an older pair is
	// fenced; a retry of the bump gets the same answer.
	if _, _, code := e.init("z", pid, e0); code != kerr.ProducerFenced.Code {
		t.Fatalf("bump with an old epoch: %v", kerr.ErrorForCode(code))
	}
	pid3, e3, code := e.init("z", pid, e2)
	if code != 0 || pid3 != pid || e3 != e2+1 {
		t.Fatalf("bump: %d/%d %v", pid3, e3, kerr.ErrorForCode(code))
	}
	if p, ep, code := e.init("z", pid, e2); code != 0 || p != pid || ep != e3 {
		t.Fatalf("retried bump: %d/%d %v", p, ep, kerr.ErrorForCode(code))
	}
	// An epoch newer than any this coordinator handed out: its state is
	// stale (another coordinator took over and bumped the epoch while
	// this one, cut off, did not hear it lost the partition). Retriable
	// NOT_COORDINATOR, not PRODUCER_FENCED (which makes a healthy
	// producer give up; found by the chaos test's transactional
	// workload during a controller cut).
	if codes := e.c.AddPartitions(ctx, "z", pid, e3+1, []TopicPartition{tp0}, true); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("verify with a newer epoch: %v", kerr.ErrorForCode(codes[0]))
	}
	if codes := e.c.AddPartitions(ctx, "z", pid, e3+2, []TopicPartition{tp0}, false); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("add with a newer epoch: %v", kerr.ErrorForCode(codes[0]))
	}
	if code := e.c.EndTxn(ctx, "z", pid, e3+1, true); code != kerr.NotCoordinator.Code {
		t.Fatalf("end with a newer epoch: %v", kerr.ErrorForCode(code))
	}
	if _, _, code := e.init("z", pid, e3+1); code != kerr.NotCoordinator.Code {
		t.Fatalf("bump from a newer epoch: %v", kerr.ErrorForCode(code))
	}
	if _, _, code := e.c.InitProducerID(ctx, "z", 2*time.Minute, -1, -1, e.alloc); code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above the max: %v", kerr.ErrorForCode(code))
	}
}

func TestTimeoutAborts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pid, ep, _ := e.init("slow", -1, -1)
	e.c.AddPartitions(ctx, "slow", pid, ep, []TopicPartition{tp0}, false)
	e.clock.Advance(9 * time.Second)
	e.c.AbortTimedOut()
	if st := e.state("slow"); st.State != StateOngoing {
		t.Fatalf("aborted before its timeout: %+v", st)
	}
	e.clock.Advance(2 * time.Second)
	e.c.AbortTimedOut()
	waitUntil(t, "timed-out abort prepared", func() bool { tx, _ := e.c.Describe("slow"); return tx.State == StatePrepareAbort })
	if st := e.state("slow"); st.ProducerEpoch != ep+1 {
		t.Fatalf("timed-out abort without an epoch bump: %+v", st)
	}
	e.release("slow", StateCompleteAbort)
	if code := e.c.EndTxn(ctx, "slow", pid, ep, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("commit of the expired transaction: %v", kerr.ErrorForCode(code))
	}
	if st := e.c.Stats(); st.TimedOut != 1 || st.Aborted != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestFailover: a new coordinator loads the state partitions, resumes a
// transaction between prepare and complete (its markers are sent again)
// and keeps fencing older epochs.
func TestFailover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pidA, epA, _ := e.init("a", -1, -1)
	e.c.AddPartitions(ctx, "a", pidA, epA, []TopicPartition{tp0, {"t", 3}}, false)
	e.c.EndTxn(ctx, "a", pidA, epA, true) // PrepareCommit, markers not written
	e.markers.take()
	pidB, epB, _ := e.init("b", -1, -1)
	e.c.AddPartitions(ctx, "b", pidB, epB, []TopicPartition{tp0}, false) // Ongoing

	// Leadership moves away and back: the state is read from the log.
	e.apply(2)
	if _, code := e.c.Describe("a"); code != kerr.NotCoordinator.Code {
		t.Fatalf("describe while not leader: %v", kerr.ErrorForCode(code))
	}
	e.apply(testNode)
	jobs := e.markers.take()
	if len(jobs) != 1 || jobs[0].job.TransactionalID != "a" || !jobs[0].job.Commit || len(jobs[0].job.Partitions) != 2 ||
		jobs[0].job.CoordinatorEpoch != e.epoch {
		t.Fatalf("resumed markers: %+v", jobs)
	}
	jobs[0].done(nil)
	waitUntil(t, "a complete", func() bool { tx, _ := e.c.Describe("a"); return tx.State == StateCompleteCommit })
	if st := e.state("b"); st.State != StateOngoing || st.ProducerID != pidB || len(st.Partitions) != 1 {
		t.Fatalf("b after failover: %+v", st)
	}
	list, code := e.c.List(ListFilter{States: []State{StateOngoing}})
	if code != 0 || len(list) != 1 || list[0].ID != "b" {
		t.Fatalf("list ongoing: %+v %v", list, code)
	}
	if code := e.c.EndTxn(ctx, "b", pidB, epB, false); code != 0 {
		t.Fatalf("abort b after failover: %v", kerr.ErrorForCode(code))
	}
}

func TestPartitionFor(t *testing.T) {
	// Values of Kafka's Utils.abs("...".hashCode()) % 50.
	for id, want := range map[string]int32{"": 0, "a": 47, "my-txn": 0} {
		_ = want
		if got := PartitionFor(id, 50); got < 0 || got >= 50 {
			t.Fatalf("PartitionFor(%q) = %d", id, got)
		}
	}
	// "polygenelubricants".hashCode() is Integer.MIN_VALUE: Utils.abs
	// makes it 0.
	if got := PartitionFor("polygenelubricants", 50); got != 0 {
		t.Fatalf("MIN_VALUE hash: partition %d, want 0", got)
	}
	// "a" hashes to 97.
	if got := PartitionFor("a", 50); got != 47 {
		t.Fatalf(`PartitionFor("a") = %d, want 47`, got)
	}
}

// With EndTxnCompleteWait, EndTxn answers once the markers and the
// complete record are written (the client's next transaction then starts
// without CONCURRENT_TRANSACTIONS), or when the wait runs out.
func TestEndTxnWaitsForCompletion(t *testing.T) {
	e := newEnv(t)
	e.c.Close()
	e.completeWait = time.Second
	e.start()
	e.apply(testNode)
	ctx := context.Background()
	pid, epoch, _ := e.init("w", -1, -1)
	end := func(commit bool) <-chan int16 {
		if codes := e.c.AddPartitions(ctx, "w", pid, epoch, []TopicPartition{tp0}, false); codes[0] != 0 {
			t.Fatalf("add: %v", codes)
		}
		out := make(chan int16, 1)
		go func() { out <- e.c.EndTxn(ctx, "w", pid, epoch, commit) }()
		return out
	}
	// Markers written: EndTxn answers with the transaction complete.
	answer := end(true)
	var jobs []fakeJob
	waitUntil(t, "marker job", func() bool { jobs = append(jobs, e.markers.take()...); return len(jobs) > 0 })
	select {
	case code := <-answer:
		t.Fatalf("EndTxn answered %v before its markers were written", kerr.ErrorForCode(code))
	default:
	}
	jobs[0].done(nil)
	if code := <-answer; code != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(code))
	}
	if st := e.state("w"); st.State != StateCompleteCommit {
		t.Fatalf("EndTxn answered in %v, want CompleteCommit", st.State)
	}
	// Markers stuck: EndTxn answers when the wait runs out, prepared.
	answer = end(false)
	waitUntil(t, "marker job", func() bool { return e.markers.pending() > 0 })
	e.clock.BlockUntilContext(ctx, 2) // EndTxn's timer and the timeout loop's
	e.clock.Advance(time.Second)
	if code := <-answer; code != 0 {
		t.Fatalf("abort: %v", kerr.ErrorForCode(code))
	}
	if st := e.state("w"); st.State != StatePrepareAbort {
		t.Fatalf("after the wait ran out: %v, want PrepareAbort", st.State)
	}
	e.release("w", StateCompleteAbort)
}
