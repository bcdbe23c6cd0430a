package storage_test

// A model-based test of one log over its whole life: a seeded random
// sequence of appends (idempotent or not, transactional with commit and
// abort markers, retries of earlier batches,
// several batches per call so rolls happen mid-append, tiny segments),
// leader epoch changes, truncations, full truncations, retention under a
// moving high watermark, flushes, clean restarts and machine crashes (over
// a storagetest.CrashableDir, torn or not). A model keeps the batches the
// log should hold; after every step and every reopen the log is checked
// against it.
//
// SKEIN_TEST_SEED repeats a run; SKEIN_MODEL_STEPS sets its length
// (default 300 steps, a second or two).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// mBatch is one batch as the model knows it.
type mBatch struct {
	id      uint64 // unique, in every record's value
	base    int64
	count   int32
	epoch   int32 // partition leader epoch
	pid     int64 // -1 when not idempotent
	pepoch  int16
	seq     int32
	payload []byte // the batch as sent (offsets unassigned)
	// Transactions (producer txnPID only): txn marks a transactional
	// batch; marker a transaction marker (commit says which), bumped one
	// written with a new producer epoch (the next batch starts at
	// sequence 0).
	txn, marker, commit, bumped bool
}

// txnPID is the model's transactional producer.
const txnPID = 3

func (b mBatch) last() int64 { return b.base + int64(b.count) - 1 }

// logModel is what the log must hold.
type logModel struct {
	start   int64    // log start offset
	batches []mBatch // the log's batches, contiguous from start
	// durable: batches[:durable] survive any crash (flushed or closed).
	durable int
	epoch   int32 // current leader epoch
	nextID  uint64
	// producer epochs in use (bumped when a producer has no batch left
	// in the log, so its next batch is accepted whatever the log
	// remembers of it).
	pepochs map[int64]int16
}

func (m *logModel) end() int64 {
	if n := len(m.batches); n > 0 {
		return m.batches[n-1].last() + 1
	}
	return m.start
}

// truncate keeps the batches wholly below offset.
func (m *logModel) truncate(offset int64) {
	n := 0
	for n < len(m.batches) && m.batches[n].last() < offset {
		n++
	}
	m.batches = m.batches[:n]
	m.durable = min(m.durable, n)
}

// lastOf returns the indexes of producer pid's batches in the log.
func (m *logModel) lastOf(pid int64) []int {
	var out []int
	for i, b := range m.batches {
		if b.pid == pid {
			out = append(out, i)
		}
	}
	return out
}

func modelSeed(t *testing.T) (int64, int) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("SKEIN_TEST_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("SKEIN_TEST_SEED: %v", err)
		}
		seed = v
	}
	steps := 300
	if s := os.Getenv("SKEIN_MODEL_STEPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SKEIN_MODEL_STEPS: %v", err)
		}
		steps = v
	}
	return seed, steps
}

// modelRun is one run's state.
type modelRun struct {
	t     *testing.T
	rng   *rand.Rand
	seed  int64
	step  int
	op    string
	cfg   storage.LogConfig
	crash *storagetest.CrashableDir
	mgr   *storage.Manager
	log   *storage.Log
	hw    int64
	m     logModel
}

func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d (SKEIN_TEST_SEED=%d), step %d (%s): %s", r.seed, r.seed, r.step, r.op, fmt.Sprintf(format, args...))
}

func (r *modelRun) open() {
	r.t.Helper()
	mgr, err := storage.OpenManager(storage.DefaultConfig(r.crash.Dir()))
	if err != nil {
		r.fatalf("open: %v", err)
	}
	r.mgr = mgr
	l, err := mgr.GetOrCreate(tp, [16]byte{7}, r.cfg)
	if err != nil {
		r.fatalf("get log: %v", err)
	}
	if err := l.SetConfig(r.cfg); err != nil {
		r.fatalf("config: %v", err)
	}
	r.log = l
	l.SetCleanBound(func() int64 { return r.hw })
}

func TestLogModel(t *testing.T) {
	seed, steps := modelSeed(t)
	t.Logf("seed %d (repeat with SKEIN_TEST_SEED=%d), %d steps", seed, seed, steps)
	rng := rand.New(rand.NewSource(seed))
	c, err := storagetest.NewCrashableDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := storage.DefaultLogConfig()
	cfg.SegmentBytes = 1024 + int64(rng.Intn(2048))
	cfg.IndexIntervalBytes = int32(64 + rng.Intn(512))
	cfg.RetentionBytes = 3 * cfg.SegmentBytes
	cfg.FileDeleteDelay = 0
	if rng.Intn(4) == 0 {
		cfg.FlushMessages = 1
	}
	r := &modelRun{t: t, rng: rng, seed: seed, cfg: cfg, crash: c, m: logModel{epoch: 1, pepochs: map[int64]int16{}}}
	r.open()
	defer func() { r.mgr.Close() }()
	counts := map[string]int{}
	for r.step = 0; r.step < steps; r.step++ {
		switch p := rng.Intn(100); {
		case p < 40:
			r.op = "append"
			r.append()
		case p < 45:
			r.op = "marker"
			r.marker()
		case p < 55:
			r.op = "retry"
			r.retry()
		case p < 60:
			r.op = "new leader epoch"
			r.m.epoch += int32(1 + rng.Intn(2))
		case p < 66:
			r.op = "flush"
			if err := r.log.Flush(); err != nil {
				r.fatalf("flush: %v", err)
			}
			r.m.durable = len(r.m.batches)
		case p < 73:
			r.op = "truncate"
			r.truncate()
		case p < 75:
			r.op = "truncate fully"
			off := r.m.end() + int64(1+rng.Intn(20))
			if err := r.log.TruncateFullyAndStartAt(off); err != nil {
				r.fatalf("truncate fully to %d: %v", off, err)
			}
			r.m.batches, r.m.durable, r.m.start = nil, 0, off
		case p < 83:
			r.op = "retention"
			r.retention()
		case p < 88:
			r.op = "clean restart"
			if err := r.mgr.Close(); err != nil {
				r.fatalf("close: %v", err)
			}
			r.m.durable = len(r.m.batches)
			r.open()
			r.verifyReopened()
		default:
			torn := rng.Intn(2) == 0
			r.op = map[bool]string{false: "crash", true: "torn crash"}[torn]
			r.mgr.Abandon()
			if torn {
				err = c.CrashTorn(rng)
			} else {
				err = c.Crash()
			}
			if err != nil {
				r.fatalf("crash: %v", err)
			}
			r.open()
			if r.mgr.CleanShutdown() {
				r.fatalf("clean-shutdown marker after a crash")
			}
			r.verifyReopened()
		}
		counts[r.op]++
		r.verify()
	}
	t.Logf("checked %d steps %v; log [%d, %d), %d batches", steps, counts, r.log.LogStartOffset(), r.log.LogEndOffset(), len(r.m.batches))
}

// makeBatch builds a batch for the model: records whose values start with
// the batch id.
func (r *modelRun) makeBatch(pid int64, pepoch int16, seq int32) mBatch {
	r.m.nextID++
	n := 1 + r.rng.Intn(4)
	vals := make([][]byte, n)
	for i := range vals {
		v := make([]byte, 8+r.rng.Intn(300))
		binary.BigEndian.PutUint64(v, r.m.nextID)
		vals[i] = v
	}
	if pid < 0 {
		pepoch, seq = -1, -1
	}
	return mBatch{
		id: r.m.nextID, count: int32(n), epoch: r.m.epoch, pid: pid, pepoch: pepoch, seq: seq,
		payload: storagetest.MakeBatch(vals, pid, pepoch, seq),
	}
}

// nextSeq is what producer pid sends next: the sequence after its last
// batch in the log (a retry of what was truncated or lost), or sequence 0
// of a new producer epoch when it has none left.
func (r *modelRun) nextSeq(pid int64, pending []mBatch) (int16, int32) {
	for i := len(pending) - 1; i >= 0; i-- {
		if pending[i].pid == pid {
			return pending[i].pepoch, pending[i].seq + pending[i].count
		}
	}
	if idx := r.m.lastOf(pid); len(idx) > 0 {
		b := r.m.batches[idx[len(idx)-1]]
		return b.pepoch, b.seq + b.count
	}
	r.m.pepochs[pid]++
	return r.m.pepochs[pid], 0
}

// nextTxn is what the transactional producer sends next: its epoch and
// sequence (after its last data batch, or 0 after a marker that bumped
// the epoch); bump says it has nothing left in the log, so its epoch is
// bumped and an abort marker of the new epoch must come first (as a
// coordinator fencing a lost transaction does).
func (r *modelRun) nextTxn(pending []mBatch) (pepoch int16, seq int32, bump bool) {
	all := append(append([]mBatch(nil), r.m.batches...), pending...)
	for i := len(all) - 1; i >= 0; i-- {
		b := all[i]
		if b.pid != txnPID {
			continue
		}
		if b.marker {
			if b.bumped {
				return b.pepoch, 0, false
			}
			continue
		}
		return b.pepoch, b.seq + b.count, false
	}
	r.m.pepochs[txnPID]++
	return r.m.pepochs[txnPID], 0, true
}

// makeMarker builds a marker of the transactional producer.
func (r *modelRun) makeMarker(pepoch int16, commit, bumped bool) mBatch {
	r.m.nextID++
	return mBatch{id: r.m.nextID, count: 1, epoch: r.m.epoch, pid: txnPID, pepoch: pepoch, seq: -1,
		marker: true, commit: commit, bumped: bumped,
		payload: storage.MakeMarkerBatch(txnPID, pepoch, commit, 0, time.Now().UnixMilli())}
}

// marker ends the transactional producer's transaction (commit or abort;
// a marker without an open transaction is written too).
func (r *modelRun) marker() {
	pe, _, bump := r.nextTxn(nil)
	b := r.makeMarker(pe, r.rng.Intn(2) == 0, bump)
	info, err := r.log.AppendAsLeader(append([]byte(nil), b.payload...), r.m.epoch)
	if err != nil {
		r.fatalf("marker: %v", err)
	}
	if info.FirstOffset != r.m.end() {
		r.fatalf("marker at %d, log end was %d", info.FirstOffset, r.m.end())
	}
	b.base = info.FirstOffset
	r.m.batches = append(r.m.batches, b)
	if r.cfg.FlushMessages == 1 {
		r.m.durable = len(r.m.batches)
	}
}

func (r *modelRun) append() {
	n := 1 + r.rng.Intn(3)
	var batches []mBatch
	var all []byte
	for i := 0; i < n; i++ {
		pid := int64(-1)
		if r.rng.Intn(3) > 0 {
			pid = int64(1 + r.rng.Intn(3))
		}
		if pid == txnPID {
			pe, seq, bump := r.nextTxn(batches)
			if bump {
				m := r.makeMarker(pe, false, true)
				batches = append(batches, m)
				all = append(all, m.payload...)
			}
			b := r.makeBatch(pid, pe, seq)
			b.txn = true
			b.payload = storagetest.MakeTxnBatch(storagetestValues(b.payload), pid, pe, seq)
			batches = append(batches, b)
			all = append(all, b.payload...)
			continue
		}
		pe, seq := r.nextSeq(pid, batches)
		b := r.makeBatch(pid, pe, seq)
		batches = append(batches, b)
		all = append(all, b.payload...)
	}
	var info storage.AppendInfo
	var err error
	if r.rng.Intn(4) == 0 {
		// As a follower: the offsets and leader epoch as a leader
		// assigned them (neither is covered by the CRC).
		all = all[:0]
		next := r.m.end()
		for _, b := range batches {
			p := append([]byte(nil), b.payload...)
			binary.BigEndian.PutUint64(p[0:], uint64(next))
			binary.BigEndian.PutUint32(p[12:], uint32(r.m.epoch))
			next += int64(b.count)
			all = append(all, p...)
		}
		r.op = "append as follower"
		info, err = r.log.AppendAsFollower(all)
	} else {
		info, err = r.log.AppendAsLeader(append([]byte(nil), all...), r.m.epoch)
	}
	if err != nil {
		r.fatalf("append of %d batches: %v", n, err)
	}
	next := r.m.end()
	if info.FirstOffset != next {
		r.fatalf("appended at %d, log end was %d", info.FirstOffset, next)
	}
	for _, b := range batches {
		b.base = next
		next += int64(b.count)
		r.m.batches = append(r.m.batches, b)
	}
	if info.LastOffset != next-1 {
		r.fatalf("append ended at %d, want %d", info.LastOffset, next-1)
	}
	if r.cfg.FlushMessages == 1 {
		r.m.durable = len(r.m.batches)
	}
}

// retry resends one of a producer's last batches in the log: a duplicate
// answered with its original offsets.
func (r *modelRun) retry() {
	pid := int64(1 + r.rng.Intn(2))
	idx := r.m.lastOf(pid)
	if len(idx) == 0 {
		return
	}
	lastEpoch := r.m.batches[idx[len(idx)-1]].pepoch
	var cands []int
	for _, i := range idx[max(0, len(idx)-5):] {
		if r.m.batches[i].pepoch == lastEpoch {
			cands = append(cands, i)
		}
	}
	b := r.m.batches[cands[r.rng.Intn(len(cands))]]
	info, err := r.log.AppendAsLeader(append([]byte(nil), b.payload...), r.m.epoch)
	if !errors.Is(err, storage.ErrDuplicateSequence) || info.FirstOffset != b.base || info.LastOffset != b.last() {
		r.fatalf("retry of producer %d sequence %d (offsets %d..%d): %+v %v, want a duplicate", pid, b.seq, b.base, b.last(), info, err)
	}
}

func (r *modelRun) truncate() {
	lo, hi := r.m.start, r.m.end()
	off := lo + r.rng.Int63n(hi-lo+1)
	if r.rng.Intn(10) == 0 {
		off = max(0, lo-int64(r.rng.Intn(5)))
	}
	if err := r.log.Truncate(off); err != nil {
		r.fatalf("truncate to %d: %v", off, err)
	}
	if off >= r.m.end() {
		return
	}
	if off <= r.m.start {
		r.m.batches, r.m.durable, r.m.start = nil, 0, off
		return
	}
	r.m.truncate(off)
}

func (r *modelRun) retention() {
	lo, hi := r.m.start, r.m.end()
	r.hw = lo + r.rng.Int63n(hi-lo+1)
	r.mgr.ApplyRetention()
	lso := r.log.LogStartOffset()
	if lso > r.hw || lso < r.m.start {
		r.fatalf("retention moved the log start from %d to %d with the HW at %d", r.m.start, lso, r.hw)
	}
	n := 0
	for n < len(r.m.batches) && r.m.batches[n].base < lso {
		n++
	}
	if n < len(r.m.batches) && r.m.batches[n].base != lso || n == len(r.m.batches) && lso != r.m.end() {
		r.fatalf("log start %d is not a batch boundary", lso)
	}
	r.m.batches = r.m.batches[n:]
	r.m.durable = max(0, r.m.durable-n)
	r.m.start = lso
}

// verifyReopened checks a reopened log against the model: its end lies
// between what was durable and what was appended; then the model drops
// what the crash lost.
func (r *modelRun) verifyReopened() {
	r.t.Helper()
	l := r.log
	if l.LogStartOffset() != r.m.start {
		r.fatalf("log start %d after reopen, want %d", l.LogStartOffset(), r.m.start)
	}
	lo := r.m.start
	if r.m.durable > 0 {
		lo = r.m.batches[r.m.durable-1].last() + 1
	}
	end := l.LogEndOffset()
	if end < lo || end > r.m.end() {
		r.fatalf("log end %d after reopen, want within [%d (durable), %d (appended)]", end, lo, r.m.end())
	}
	r.m.truncate(end)
	if r.m.end() != end {
		r.fatalf("log end %d after reopen is inside a batch of the model", end)
	}
	r.m.durable = len(r.m.batches) // what is on disk now is what survived
	// Every producer's last batch is still a duplicate.
	for pid := int64(1); pid <= 2; pid++ {
		if idx := r.m.lastOf(pid); len(idx) > 0 {
			b := r.m.batches[idx[len(idx)-1]]
			info, err := l.AppendAsLeader(append([]byte(nil), b.payload...), r.m.epoch)
			if !errors.Is(err, storage.ErrDuplicateSequence) || info.FirstOffset != b.base {
				r.fatalf("after reopen, retry of producer %d's last batch (offset %d): %+v %v, want a duplicate", pid, b.base, info, err)
			}
		}
	}
}

// verify checks the log holds exactly the model's batches, with a
// consistent leader epoch history.
func (r *modelRun) verify() {
	r.t.Helper()
	l := r.log
	if l.LogStartOffset() != r.m.start || l.LogEndOffset() != r.m.end() {
		r.fatalf("log [%d, %d), model [%d, %d)", l.LogStartOffset(), l.LogEndOffset(), r.m.start, r.m.end())
	}
	i := 0
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		rr, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			r.fatalf("read at %d: %v", off, err)
		}
		data, err := rr.ReadInto(nil)
		if err != nil || len(data) == 0 {
			r.fatalf("read at %d: %d bytes, %v", off, len(data), err)
		}
		err = storage.SplitBatches(data, func(b []byte) error {
			if err := storage.ValidateBatch(b); err != nil {
				return err
			}
			h, _ := storage.ParseBatchHeader(b)
			if i >= len(r.m.batches) {
				return fmt.Errorf("batch at %d beyond the model", h.BaseOffset)
			}
			want := r.m.batches[i]
			if h.BaseOffset != want.base || h.LastOffset() != want.last() || h.PartitionLeaderEpoch != want.epoch ||
				h.ProducerID != want.pid || h.BaseSequence != want.seq {
				return fmt.Errorf("batch %d: offsets %d..%d epoch %d producer %d seq %d; model has %d..%d epoch %d producer %d seq %d (id %d)",
					i, h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, h.ProducerID, h.BaseSequence,
					want.base, want.last(), want.epoch, want.pid, want.seq, want.id)
			}
			if want.marker {
				if m, ok, err := storage.ParseControlBatch(b); err != nil || !ok || m.Commit() != want.commit {
					return fmt.Errorf("batch at %d: marker %+v %v %v, model has commit=%v", h.BaseOffset, m, ok, err, want.commit)
				}
			} else if got := recordID(b); got != want.id {
				return fmt.Errorf("batch at %d holds the records of batch %d, model has %d", h.BaseOffset, got, want.id)
			}
			off = h.LastOffset() + 1
			i++
			return nil
		})
		if err != nil {
			r.fatalf("%v", err)
		}
	}
	if i != len(r.m.batches) {
		r.fatalf("log has %d batches, model %d", i, len(r.m.batches))
	}
	r.verifyEpochs()
	r.verifyTxns()
}

// verifyTxns checks the transactional state against the model: every
// aborted transactions index entry is an abort marker of the model's,
// and once the model holds a marker of the transactional producer, its
// open transaction (none, or the first data batch after its last marker)
// is the log's. (Before that the log may remember a transaction whose
// start retention deleted.)
func (r *modelRun) verifyTxns() {
	l := r.log
	for _, a := range l.AbortedTxns(l.LogStartOffset(), l.LogEndOffset()) {
		ok := false
		for _, b := range r.m.batches {
			if b.base == a.LastOffset {
				ok = b.marker && !b.commit && a.ProducerID == txnPID && a.FirstOffset <= a.LastOffset
			}
		}
		if !ok {
			r.fatalf("aborted transactions index entry %+v is no abort marker of the log", a)
		}
	}
	lastMarker := -1
	for i, b := range r.m.batches {
		if b.pid == txnPID && b.marker {
			lastMarker = i
		}
	}
	if lastMarker < 0 {
		return
	}
	want, open := int64(0), false
	for _, b := range r.m.batches[lastMarker+1:] {
		if b.pid == txnPID && b.txn {
			want, open = b.base, true
			break
		}
	}
	got, gotOpen := l.OngoingTxnFirstOffset(txnPID)
	if gotOpen != open || got != want {
		r.fatalf("transactional producer: open %v at %d, model %v at %d", gotOpen, got, open, want)
	}
	if lso := l.LastStableOffset(l.LogEndOffset()); open && lso > want {
		r.fatalf("LSO %d above the open transaction's first offset %d", lso, want)
	}
}

// storagetestValues returns the record values of an uncompressed batch
// built by storagetest.MakeBatch.
func storagetestValues(b []byte) [][]byte {
	recs, err := storagetest.Records(b)
	if err != nil {
		panic(err)
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

// recordID returns the batch id in the first record's value (an
// uncompressed batch from storagetest.MakeBatch: the value is the record's
// last bytes before the headers count, so read it from the records).
func recordID(b []byte) uint64 {
	rec := b[storage.BatchHeaderSize:]
	// length, attributes, timestamp delta, offset delta, key length (-1),
	// value length: varints.
	pos := 0
	varint := func() int64 {
		v, n := binary.Varint(rec[pos:])
		pos += n
		return v
	}
	varint() // length
	pos++    // attributes
	varint() // timestamp delta
	varint() // offset delta
	varint() // key length (-1)
	varint() // value length
	return binary.BigEndian.Uint64(rec[pos:])
}

// verifyEpochs checks the epoch history against the batches: increasing,
// nothing at or past the log end, the epoch covering each batch is its
// own, and EndOffsetForEpoch answers from it.
func (r *modelRun) verifyEpochs() {
	hist := r.log.EpochHistory()
	end := r.m.end()
	for i, e := range hist {
		if e.StartOffset >= end || i > 0 && (e.Epoch <= hist[i-1].Epoch || e.StartOffset <= hist[i-1].StartOffset) {
			r.fatalf("epoch history %v (log end %d)", hist, end)
		}
	}
	covering := func(off int64) int32 {
		ep := int32(-1)
		for _, e := range hist {
			if e.StartOffset <= off {
				ep = e.Epoch
			}
		}
		return ep
	}
	for i, b := range r.m.batches {
		if got := covering(b.base); got != b.epoch {
			r.fatalf("epoch history %v gives epoch %d for the batch at %d, which has %d", hist, got, b.base, b.epoch)
		}
		// The end of b's epoch: the first later batch with a larger one.
		if i+1 < len(r.m.batches) && r.m.batches[i+1].epoch == b.epoch {
			continue
		}
		wantEnd := end
		if i+1 < len(r.m.batches) {
			wantEnd = r.m.batches[i+1].base
		}
		if e, got := r.log.EndOffsetForEpoch(b.epoch); e != b.epoch || got != wantEnd {
			r.fatalf("end offset for epoch %d: %d %d, want %d %d (history %v)", b.epoch, e, got, b.epoch, wantEnd, hist)
		}
	}
}
