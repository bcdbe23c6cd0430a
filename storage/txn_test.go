package storage_test

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// txnAppend appends a transactional batch of n records from pid.
func txnAppend(t testing.TB, l *storage.Log, pid int64, seq int32, n int) storage.AppendInfo {
	t.Helper()
	info, err := l.AppendAsLeader(storagetest.MakeTxnBatch(values(n, 40, byte(pid)), pid, 0, seq), 1)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func marker(t testing.TB, l *storage.Log, pid int64, commit bool) int64 {
	t.Helper()
	info, err := l.AppendAsLeader(storage.MakeMarkerBatch(pid, 0, commit, 3, 1000), 1)
	if err != nil {
		t.Fatal(err)
	}
	return info.FirstOffset
}

// TestLastStableOffset: the LSO stops at the first offset of an open
// transaction, stays there after its marker until the high watermark
// passes the marker, and is the high watermark without transactions.
func TestLastStableOffset(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, smallSegments())
	appendN(t, l, 3, 10, 1) // 0..2, not transactional
	if got := l.LastStableOffset(3); got != 3 {
		t.Fatalf("LSO without transactions = %d, want 3", got)
	}
	a := txnAppend(t, l, 7, 0, 2) // 3..4
	b := txnAppend(t, l, 8, 0, 2) // 5..6
	appendN(t, l, 1, 10, 1)       // 7
	if a.FirstOffset != 3 || b.FirstOffset != 5 {
		t.Fatalf("offsets %d %d", a.FirstOffset, b.FirstOffset)
	}
	if got := l.LastStableOffset(8); got != 3 {
		t.Fatalf("LSO with open transactions = %d, want 3", got)
	}
	if got := l.LastStableOffset(2); got != 2 {
		t.Fatalf("LSO below the HW = %d, want 2", got)
	}
	// A non-transactional batch of a producer with an open transaction is refused.
	if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 10, 0), 7, 0, 2), 1); !errors.Is(err, storage.ErrInvalidTxnState) {
		t.Fatalf("non-transactional write in a transaction: %v", err)
	}
	// A newer epoch of the producer while its transaction is open here:
	// the coordinator wrote the marker elsewhere (this log's replica was
	// deposed). Retriable, not INVALID_TXN_STATE.
	if _, err := l.AppendAsLeader(storagetest.MakeTxnBatch(values(1, 10, 0), 7, 1, 0), 1); !errors.Is(err, storage.ErrMarkerMissing) || errors.Is(err, storage.ErrInvalidTxnState) {
		t.Fatalf("newer epoch's transactional write while the older one's transaction is open: %v", err)
	}
	ca := marker(t, l, 7, true) // 8
	if got := l.LastStableOffset(8); got != 3 {
		t.Fatalf("LSO with the commit marker above the HW = %d, want 3", got)
	}
	if got := l.LastStableOffset(9); got != 5 {
		t.Fatalf("LSO once the HW passed the commit = %d, want 5 (producer 8 still open)", got)
	}
	if first, ok := l.OngoingTxnFirstOffset(8); !ok || first != 5 {
		t.Fatalf("producer 8's transaction: %d %v", first, ok)
	}
	ab := marker(t, l, 8, false) // 9
	if got := l.LastStableOffset(10); got != 10 {
		t.Fatalf("LSO after both markers = %d, want 10", got)
	}
	want := []storage.AbortedTxn{{ProducerID: 8, FirstOffset: 5, LastOffset: ab, LastStableOffset: ab + 1}}
	if got := l.AbortedTxns(0, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted = %+v, want %+v", got, want)
	}
	if got := l.AbortedTxns(0, 5); len(got) != 0 {
		t.Fatalf("aborted before the transaction = %+v", got)
	}
	if got := l.AbortedTxns(ab+1, 20); len(got) != 0 {
		t.Fatalf("aborted after the marker = %+v", got)
	}
	_ = ca
	// A marker from an older coordinator epoch is fenced; an older producer epoch too.
	if _, err := l.AppendAsLeader(storage.MakeMarkerBatch(8, 0, false, 2, 1000), 1); !errors.Is(err, storage.ErrCoordinatorFenced) {
		t.Fatalf("stale coordinator epoch: %v", err)
	}
	if _, err := l.AppendAsLeader(storage.MakeMarkerBatch(8, 1, false, 3, 1000), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(storage.MakeMarkerBatch(8, 0, false, 3, 1000), 1); !errors.Is(err, storage.ErrInvalidProducerEpoch) {
		t.Fatalf("stale producer epoch: %v", err)
	}
	ps := l.Producers()
	if len(ps) != 2 || ps[1].ProducerID != 8 || ps[1].ProducerEpoch != 1 || ps[1].CoordinatorEpoch != 3 || ps[1].TxnStartOffset != -1 {
		t.Fatalf("producers %+v", ps)
	}
}

// txnWorkload writes interleaved transactions of three producers over
// several segments, aborting every other one, and returns the log end.
func txnWorkload(t testing.TB, l *storage.Log) {
	t.Helper()
	seq := map[int64]int32{}
	for round := 0; round < 12; round++ {
		for pid := int64(1); pid <= 3; pid++ {
			txnAppend(t, l, pid, seq[pid], 3)
			seq[pid] += 3
			appendN(t, l, 1, 200, 1)
		}
		for pid := int64(1); pid <= 3; pid++ {
			if (int64(round)+pid)%4 == 0 {
				continue // stays open a round longer
			}
			if _, ok := l.OngoingTxnFirstOffset(pid); ok {
				marker(t, l, pid, (int64(round)+pid)%2 == 0)
			}
		}
	}
	txnAppend(t, l, 1, seq[1], 2) // one open at the end
}

type txnView struct {
	Aborted   []storage.AbortedTxn
	Producers []storage.ProducerInfo
	LSO       int64
}

func viewOf(l *storage.Log) txnView {
	return txnView{Aborted: l.AbortedTxns(0, l.LogEndOffset()), Producers: l.Producers(), LSO: l.LastStableOffset(l.LogEndOffset())}
}

// TestTxnIndexRebuiltOnRecovery: the aborted transactions index and the
// open transactions come back the same after a clean restart, after the
// index files and the producer snapshot are deleted, and after a crash.
func TestTxnIndexRebuiltOnRecovery(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, smallSegments())
	txnWorkload(t, l)
	want := viewOf(l)
	if len(want.Aborted) < 5 || l.Segments() < 4 {
		t.Fatalf("workload too small: %d aborted, %d segments", len(want.Aborted), l.Segments())
	}
	crashM, crashL := crashCopy(t, l.Dir()+"/..")
	_ = crashM
	if got := viewOf(crashL); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a crash:\n got %+v\nwant %+v", got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "t-0"))
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".txnindex") {
			n++
			st, _ := f.Info()
			if st.Size()%34 != 0 {
				t.Fatalf("%s: %d bytes", f.Name(), st.Size())
			}
		}
	}
	if n == 0 {
		t.Fatal("no .txnindex file written")
	}
	m = openManager(t, dir)
	if got := viewOf(m.Get(tp)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a clean restart:\n got %+v\nwant %+v", got, want)
	}
	m.Close()
	for _, f := range files {
		name := f.Name()
		if strings.HasSuffix(name, ".txnindex") || strings.HasSuffix(name, ".index") || strings.HasSuffix(name, ".timeindex") || name == "producer-state.snapshot" {
			if err := os.Remove(filepath.Join(dir, "t-0", name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m = openManager(t, dir)
	defer m.Close()
	if got := viewOf(m.Get(tp)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting the indexes and the snapshot:\n got %+v\nwant %+v", got, want)
	}
}

// TestTruncateBelowMarker: truncating below a marker reopens its
// transaction and drops its index entry; a crash and recovery after the
// truncation give the same state.
func TestTruncateBelowMarker(t *testing.T) {
	c, m := crashable(t)
	l := mustLog(t, m, smallSegments())
	appendN(t, l, 2, 10, 1)
	first := txnAppend(t, l, 5, 0, 2).FirstOffset
	txnAppend(t, l, 6, 0, 2)
	ab := marker(t, l, 5, false)
	txnAppend(t, l, 6, 2, 2)
	if len(l.AbortedTxns(0, l.LogEndOffset())) != 1 {
		t.Fatal("no aborted transaction")
	}
	if err := l.Truncate(ab); err != nil {
		t.Fatal(err)
	}
	if got := l.AbortedTxns(0, 100); len(got) != 0 {
		t.Fatalf("aborted after truncation = %+v", got)
	}
	if got := l.LastStableOffset(l.LogEndOffset()); got != first {
		t.Fatalf("LSO after truncation = %d, want %d (transaction open again)", got, first)
	}
	want := viewOf(l)
	m = machineCrash(t, c, m)
	defer m.Close()
	if got := viewOf(m.Get(tp)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after truncation and crash:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzRecoveryTxn writes a log of interleaved transactions (commits,
// aborts, open ones, plain batches) over small segments, damages one
// segment file (a cut and one flipped byte) or deletes the index files and
// the producer snapshot, and reopens it as after a crash. Recovery must
// never panic, and the transactional state it rebuilds (the aborted
// transactions index, the producer table with its open transactions, the
// LSO) must be exactly that of a fresh log that copied the surviving
// batches (as a follower would).
func FuzzRecoveryTxn(f *testing.F) {
	f.Add(int64(1), uint8(40), uint8(2), uint32(3000), uint32(100), uint8(0xff), false)
	f.Add(int64(7), uint8(90), uint8(0), uint32(1<<30), uint32(1<<30), uint8(0), true)
	f.Add(int64(3), uint8(20), uint8(9), uint32(61), uint32(62), uint8(0x10), false)
	f.Fuzz(func(t *testing.T, seed int64, steps uint8, segPick uint8, cut, flipAt uint32, flip uint8, dropIndexes bool) {
		rng := rand.New(rand.NewSource(seed))
		dir := t.TempDir()
		m := openManager(t, dir)
		l := mustLog(t, m, smallSegments())
		seq := map[int64]int32{}
		open := map[int64]bool{}
		epoch := map[int64]int16{}
		for i := 0; i < int(steps)%120+5; i++ {
			pid := int64(rng.Intn(4) + 1)
			var b []byte
			switch k := rng.Intn(10); {
			case k < 5:
				b = storagetest.MakeTxnBatch(values(rng.Intn(3)+1, rng.Intn(200)+1, byte(i)), pid, epoch[pid], seq[pid])
				open[pid] = true
			case k < 8:
				b = storage.MakeMarkerBatch(pid, epoch[pid], k == 6, 0, int64(1000+i))
				if !open[pid] && rng.Intn(2) == 0 {
					epoch[pid]++ // an abort after a timeout bumps the epoch
					seq[pid] = 0
					b = storage.MakeMarkerBatch(pid, epoch[pid], false, 0, int64(1000+i))
				}
				open[pid] = false
			default:
				b = storagetest.MakeBatch(values(1, rng.Intn(300)+1, byte(i)), -1, -1, -1)
			}
			if _, err := l.AppendAsLeader(b, 1); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if h, _ := storage.ParseBatchHeader(b); h.Transactional() && !h.Control() {
				seq[pid] += h.LastOffsetDelta + 1
			}
		}
		logDir := l.Dir()
		m.Close()
		os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
		files, _ := os.ReadDir(logDir)
		var segs []string
		for _, fi := range files {
			name := fi.Name()
			if strings.HasSuffix(name, ".log") {
				segs = append(segs, name)
			}
			if dropIndexes && (strings.HasSuffix(name, "index") || name == "producer-state.snapshot") {
				os.Remove(filepath.Join(logDir, name))
			}
		}
		if !dropIndexes && len(segs) > 0 {
			seg := filepath.Join(logDir, segs[int(segPick)%len(segs)])
			data, _ := os.ReadFile(seg)
			if c := int(cut % uint32(len(data)+1)); c < len(data) {
				data = data[:c]
			}
			if at := int(flipAt); at < len(data) {
				data[at] ^= flip
			}
			os.WriteFile(seg, data, 0o644)
		}
		m2, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer m2.Close()
		got := m2.Get(tp)
		// The reference: a fresh log copying the surviving batches.
		ref := mustLog(t, openManager(t, t.TempDir()), smallSegments())
		for off := got.LogStartOffset(); off < got.LogEndOffset(); {
			rr, err := got.Read(off, 1<<30, got.LogEndOffset())
			if err != nil || rr.Size == 0 {
				t.Fatalf("read at %d: %v", off, err)
			}
			data, err := rr.ReadInto(nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ref.AppendAsFollower(data); err != nil {
				t.Fatal(err)
			}
			off = rr.NextOffset
		}
		if g, w := viewOf(got), viewOf(ref); !reflect.DeepEqual(g, w) {
			t.Fatalf("recovered transactional state differs from a copy of its batches:\n got %+v\nwant %+v", g, w)
		}
	})
}

// TestCleanerKeepsTransactions: compaction never lets a record of an
// aborted transaction remove the committed value it would have replaced,
// and keeps transactional batches and markers as they are (Skein's
// conservative cleaner), while still compacting plain records.
func TestCleanerKeepsTransactions(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, compactConfig())
	kv := func(k, v string) []storagetest.KV { return []storagetest.KV{{Key: []byte(k), Value: []byte(v)}} }
	appendKV := func(b []byte) {
		t.Helper()
		if _, err := l.AppendAsLeader(b, 1); err != nil {
			t.Fatal(err)
		}
	}
	appendKV(storagetest.MakeKeyedBatch(kv("k", "committed"), storagetest.None, -1, -1, -1, 1000))
	appendKV(storagetest.MakeKeyedBatch(kv("p", "old"), storagetest.None, -1, -1, -1, 1000))
	txn := storagetest.MakeKeyedBatch(kv("k", "aborted"), storagetest.None, 5, 0, 0, 1001)
	txn[22] |= 0x10 // transactional
	appendKV(storage.SealBatch(txn))
	appendKV(storage.MakeMarkerBatch(5, 0, false, 0, 1002))
	appendKV(storagetest.MakeKeyedBatch(kv("p", "new"), storagetest.None, -1, -1, -1, 1003))
	// Fill sealed segments so everything above is cleanable.
	workloadKeys(t, l, "fill", 400, 50, 5, storagetest.None, 2000, 0, -1)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	vals := map[string]bool{}
	for _, r := range readRecords(t, l) {
		vals[string(r.Key)+"="+string(r.Value)] = true
	}
	if !vals["k=committed"] || !vals["k=aborted"] {
		t.Fatalf("the committed value or the transactional record of k is gone: %v", vals["k=committed"])
	}
	if vals["p=old"] || !vals["p=new"] {
		t.Fatal("plain records were not compacted")
	}
	if got := l.AbortedTxns(0, l.LogEndOffset()); len(got) != 1 || got[0].ProducerID != 5 {
		t.Fatalf("aborted transactions after cleaning: %+v", got)
	}
}
