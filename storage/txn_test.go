package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
		bases := func(l *storage.Log) []int64 {
			var out []int64
			for data := readBatches(t, l); len(data) > 0; {
				h, _ := storage.ParseBatchHeader(data)
				out = append(out, h.BaseOffset)
				data = data[h.Size():]
			}
			return out
		}
		written := bases(l)
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
		g, w := viewOf(got), viewOf(ref)
		// Did recovery keep a prefix of the batches written, or lose a
		// damaged segment before others it kept?
		kept := bases(got)
		hole := len(kept) > len(written) || !slices.Equal(kept, written[:len(kept)])
		if hole {
			// A damaged segment was lost before others that were kept (a
			// hole, below the recovery point, that recovery does not see
			// as a torn tail). The intact segments' aborted transactions
			// index still describes the transactions as they really
			// ended, markers in the hole included, where a replay of the
			// surviving batches alone joins a transaction whose marker was
			// lost to the producer's next one: neither is the other's
			// copy. What must hold is the producer state and the last
			// stable offset: no transaction left open by the loss.
			if !reflect.DeepEqual(g.Producers, w.Producers) || g.LSO != w.LSO {
				t.Fatalf("after losing a segment, the recovered producers or LSO differ from a copy of the batches:\n got %+v %d\nwant %+v %d",
					g.Producers, g.LSO, w.Producers, w.LSO)
			}
		} else if !reflect.DeepEqual(g, w) {
			t.Fatalf("recovered transactional state differs from a copy of its batches:\n got %+v\nwant %+v", g, w)
		}
	})
}

// TestCleanerRemovesAbortedTransactions: compaction never lets a record of
// an aborted transaction remove the committed value it would have
// replaced; it removes the aborted records themselves (as Kafka does) and
// keeps their marker and index entry.
func TestCleanerRemovesAbortedTransactions(t *testing.T) {
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
	if !vals["k=committed"] || vals["k=aborted"] {
		t.Fatalf("k=committed kept: %v, k=aborted kept: %v", vals["k=committed"], vals["k=aborted"])
	}
	if vals["p=old"] || !vals["p=new"] {
		t.Fatal("plain records were not compacted")
	}
	if got := l.AbortedTxns(0, l.LogEndOffset()); len(got) != 1 || got[0].ProducerID != 5 {
		t.Fatalf("aborted transactions after cleaning: %+v", got)
	}
}

// Committed transactions are compacted like any records: a committed
// record supersedes older values of its key and is superseded by newer
// ones; an aborted transaction's records go and supersede nothing; markers
// stay until delete.retention.ms.
func TestCleanerCompactsCommittedTransactions(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, compactConfig())
	appendB := func(b []byte) {
		t.Helper()
		if _, err := l.AppendAsLeader(b, 1); err != nil {
			t.Fatal(err)
		}
	}
	plain := func(k, v string, ts int64) []byte {
		return storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte(k), Value: []byte(v)}}, storagetest.None, -1, -1, -1, ts)
	}
	txn := func(pid int64, ts int64, kvs ...string) []byte {
		var recs []storagetest.KV
		for i := 0; i < len(kvs); i += 2 {
			recs = append(recs, storagetest.KV{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
		}
		b := storagetest.MakeKeyedBatch(recs, storagetest.None, pid, 0, 0, ts)
		b[22] |= 0x10 // transactional
		return storage.SealBatch(b)
	}
	appendB(plain("a", "plain-old", 1000))
	appendB(plain("d", "plain-kept", 1000))
	appendB(txn(7, 1001, "a", "committed", "b", "committed-old")) // commits: supersedes a=plain-old
	appendB(plain("b", "plain-new", 1002))                        // supersedes b=committed-old (committed later, offset wins)
	appendB(storage.MakeMarkerBatch(7, 0, true, 0, 1003))
	appendB(txn(9, 1004, "d", "aborted")) // aborted: supersedes nothing
	appendB(storage.MakeMarkerBatch(9, 0, false, 0, 1005))
	workloadKeys(t, l, "fill", 400, 50, 5, storagetest.None, 2000, 0, -1)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	vals := map[string]bool{}
	for _, r := range readRecords(t, l) {
		vals[string(r.Key)+"="+string(r.Value)] = true
	}
	for _, want := range []string{"a=committed", "b=plain-new", "d=plain-kept"} {
		if !vals[want] {
			t.Errorf("%s is gone after cleaning", want)
		}
	}
	for _, gone := range []string{"a=plain-old", "b=committed-old", "d=aborted"} {
		if vals[gone] {
			t.Errorf("%s survived cleaning", gone)
		}
	}
	if got := l.AbortedTxns(0, l.LogEndOffset()); len(got) != 1 || got[0].ProducerID != 9 {
		t.Fatalf("aborted transactions after cleaning: %+v", got)
	}
}

// FuzzCleanTxn cleans logs mixing plain records with the transactions of
// three producers (committed, aborted, left open), with a delete.retention.ms
// that lets some markers expire: cleaning in two steps gives the bytes of
// cleaning at once; records above the cleaned offset and every record of
// an open transaction are kept, an aborted one's only go with its marker
// in the cleaned range; the read_committed value of every key is the same
// before and after; and a read_committed consumer of the cleaned log (its
// markers and aborted transactions index) gets exactly the plain and
// committed records left, up to a last stable offset that only the open
// transactions hold back; all of which holds again after the producer
// state and the indexes are rebuilt from the cleaned batches alone.
func FuzzCleanTxn(f *testing.F) {
	f.Add([]byte{0x01, 0x41, 0x42, 0x03, 0xc1, 0x44, 0x05, 0xe2, 0x46, 0x07, 0x80}, uint16(200), uint8(3), uint8(255))
	f.Add(bytes.Repeat([]byte{0x40, 0x21, 0x61, 0xc0, 0x12, 0xa1, 0x33, 0x04}, 10), uint16(300), uint8(5), uint8(4))
	f.Add(bytes.Repeat([]byte{0x40, 0x48, 0xa1, 0xe1, 0xe9, 0x12, 0xc0, 0xf8, 0x03}, 12), uint16(100), uint8(0), uint8(0))
	// A commit marker expires while its record stays the latest of its key,
	// and the producer's next transaction aborts: removing that marker
	// would merge the two transactions for a replay and abort both.
	for _, seg := range []uint16{0, 80, 160, 300} {
		f.Add([]byte{0x40, 0xa0, 0x41, 0xe0, 0x02, 0x03, 0x04}, seg, uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, segBytes uint16, step, retention uint8) {
		if len(data) > 600 {
			data = data[:600]
		}
		cfg := compactConfig()
		cfg.SegmentBytes = 150 + int64(segBytes%1500)
		cfg.DeleteRetention = time.Duration(retention) * 3 * time.Millisecond
		type rec struct {
			kv       storagetest.KV
			pid      int64 // -1: plain
			txnFirst int64 // the first offset of its transaction
		}
		var recs map[int64]rec
		outcome := map[int64]map[int64]bool{}   // pid -> first offset of a transaction -> committed
		markerAt := map[int64]map[int64]int64{} // pid -> first offset of a transaction -> its marker's offset
		var open map[int64]int64                // pid -> first offset of its open transaction
		fill := func(l *storage.Log) {
			recs = map[int64]rec{}
			clear(outcome)
			clear(markerAt)
			open = map[int64]int64{}
			seq := map[int64]int32{}
			ts := int64(1000)
			for i, b := range data {
				ts++
				key := []byte(fmt.Sprintf("k%d", b&7))
				val := []byte(fmt.Sprintf("v%d", i))
				pid := int64(20 + int(b>>3&3)%3)
				switch b >> 5 {
				case 0, 1: // plain
					info, err := l.AppendAsLeader(storagetest.MakeKeyedBatch([]storagetest.KV{{Key: key, Value: val}}, storagetest.None, -1, -1, -1, ts), 1)
					if err != nil {
						t.Fatal(err)
					}
					recs[info.FirstOffset] = rec{storagetest.KV{Key: key, Value: val}, -1, -1}
				case 2, 3, 4: // a transactional record
					bt := storagetest.MakeKeyedBatch([]storagetest.KV{{Key: key, Value: val}}, storagetest.None, pid, 0, seq[pid], ts)
					bt[22] |= 0x10
					info, err := l.AppendAsLeader(storage.SealBatch(bt), 1)
					if err != nil {
						t.Fatal(err)
					}
					seq[pid]++
					if _, ok := open[pid]; !ok {
						open[pid] = info.FirstOffset
					}
					recs[info.FirstOffset] = rec{storagetest.KV{Key: key, Value: val}, pid, open[pid]}
				default: // a marker: commit (5, 6) or abort (7)
					first, ok := open[pid]
					if !ok {
						continue
					}
					info, err := l.AppendAsLeader(storage.MakeMarkerBatch(pid, 0, b>>5 != 7, 0, ts), 1)
					if err != nil {
						t.Fatal(err)
					}
					if outcome[pid] == nil {
						outcome[pid], markerAt[pid] = map[int64]bool{}, map[int64]int64{}
					}
					outcome[pid][first] = b>>5 != 7
					markerAt[pid][first] = info.FirstOffset
					delete(open, pid)
				}
			}
		}
		// committed says whether the transaction starting at first of
		// producer pid ended, and with a commit.
		committed := func(pid, first int64) (ended, commit bool) {
			commit, ended = outcome[pid][first]
			return ended, commit
		}
		visible := func(offsets map[int64]bool) map[string]string {
			latest := map[string]int64{}
			out := map[string]string{}
			for off, r := range recs {
				if !offsets[off] {
					continue
				}
				if r.pid >= 0 {
					if ended, commit := committed(r.pid, r.txnFirst); !ended || !commit {
						continue
					}
				}
				k := string(r.kv.Key)
				if cur, ok := latest[k]; !ok || off > cur {
					latest[k], out[k] = off, string(r.kv.Value)
				}
			}
			return out
		}
		b, _, rb := cleanTwoWays(t, cfg, fill, func(end int64) int64 { return end * int64(step%8) / 8 })
		all := map[int64]bool{}
		for off := range recs {
			all[off] = true
		}
		kept := map[int64]bool{}
		for _, r := range readRecords(t, b) {
			want, ok := recs[r.Offset]
			if !ok || !bytes.Equal(r.Key, want.kv.Key) || !bytes.Equal(r.Value, want.kv.Value) {
				t.Fatalf("offset %d holds %q=%q", r.Offset, r.Key, r.Value)
			}
			kept[r.Offset] = true
		}
		for off, r := range recs {
			if kept[off] {
				continue
			}
			if off >= rb.CleanedTo {
				t.Fatalf("record at %d (above the cleaned offset %d) lost", off, rb.CleanedTo)
			}
			if r.pid >= 0 {
				ended, commit := committed(r.pid, r.txnFirst)
				if !ended {
					t.Fatalf("record at %d of producer %d's open transaction lost", off, r.pid)
				}
				if at := markerAt[r.pid][r.txnFirst]; !commit && at >= rb.CleanedTo {
					t.Fatalf("record at %d of producer %d's aborted transaction lost, its marker at %d above the cleaned offset %d", off, r.pid, at, rb.CleanedTo)
				}
			}
		}
		before, after := visible(all), visible(kept)
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("read_committed value of %s: %q before cleaning, %q after", k, v, after[k])
			}
		}

		// What a read_committed consumer of the cleaned log gets: the plain
		// and committed records kept, below the first open transaction.
		lso := b.LogEndOffset()
		for _, first := range open {
			lso = min(lso, first)
		}
		want := map[int64]bool{}
		for off := range kept {
			r := recs[off]
			if ended, commit := committed(r.pid, r.txnFirst); off < lso && (r.pid < 0 || ended && commit) {
				want[off] = true
			}
		}
		check := func(l *storage.Log, when string) {
			t.Helper()
			if got := l.LastStableOffset(l.LogEndOffset()); got != lso {
				t.Fatalf("%s: last stable offset %d, want %d (open transactions %v)", when, got, lso, open)
			}
			for _, p := range l.Producers() {
				if first, ok := open[p.ProducerID]; p.TxnStartOffset >= 0 && (!ok || first != p.TxnStartOffset) {
					t.Fatalf("%s: producer %d has a transaction open at %d, want %v", when, p.ProducerID, p.TxnStartOffset, open)
				}
			}
			got, err := storagetest.CommittedRecords(readBatches(t, l), l.AbortedTxns(0, l.LogEndOffset()), l.LastStableOffset(l.LogEndOffset()))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int64]bool{}
			for _, r := range got {
				if !want[r.Offset] {
					t.Fatalf("%s: a read_committed consumer reads %q=%q at %d (producer %d)", when, r.Key, r.Value, r.Offset, recs[r.Offset].pid)
				}
				seen[r.Offset] = true
			}
			for off := range want {
				if !seen[off] {
					t.Fatalf("%s: a read_committed consumer misses the record at %d", when, off)
				}
			}
		}
		check(b, "after cleaning")
		// Rebuilt from the batches alone: no producer snapshot, no index.
		dst := t.TempDir()
		copyDir(t, filepath.Dir(b.Dir()), dst)
		ents, _ := os.ReadDir(filepath.Join(dst, filepath.Base(b.Dir())))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), "index") || strings.HasSuffix(e.Name(), ".snapshot") {
				os.Remove(filepath.Join(dst, filepath.Base(b.Dir()), e.Name()))
			}
		}
		m := openManager(t, dst)
		defer m.Close()
		check(m.Get(tp), "rebuilt")
	})
}

// TestCleanerRemovesExpiredMarkers: a commit marker goes once it is older
// than delete.retention.ms (log time) and its transaction holds no record
// any more; an abort marker stays (with its aborted transactions index
// entry), and so does a marker that is its producer's newest; nothing goes
// before delete.retention.ms. The transactional state rebuilt from the
// cleaned batches alone has no open transaction.
func TestCleanerRemovesExpiredMarkers(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	cfg := compactConfig()
	l := mustLog(t, m, cfg)
	appendB := func(b []byte) int64 {
		t.Helper()
		info, err := l.AppendAsLeader(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		return info.FirstOffset
	}
	seq := map[int64]int32{}
	txn := func(pid int64, ts int64, k, v string) {
		b := storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte(k), Value: []byte(v)}}, storagetest.None, pid, 0, seq[pid], ts)
		b[22] |= 0x10 // transactional
		seq[pid]++
		appendB(storage.SealBatch(b))
	}
	appendB(storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte("a"), Value: []byte("plain")}}, storagetest.None, -1, -1, -1, 1000))
	txn(7, 1001, "a", "c1")
	supersededCommit := appendB(storage.MakeMarkerBatch(7, 0, true, 0, 1002))
	txn(9, 1003, "d", "aborted")
	abort := appendB(storage.MakeMarkerBatch(9, 0, false, 0, 1004))
	txn(7, 1005, "a", "c2")
	newest7 := appendB(storage.MakeMarkerBatch(7, 0, true, 0, 1006))
	txn(9, 1007, "e", "c")
	newest9 := appendB(storage.MakeMarkerBatch(9, 0, true, 0, 1008))
	workloadKeys(t, l, "fill", 400, 50, 5, storagetest.None, 10000, 0, -1)

	markers := func() map[int64]bool {
		out := map[int64]bool{}
		data := readBatches(t, l)
		for len(data) > 0 {
			h, _ := storage.ParseBatchHeader(data)
			if h.Control() {
				out[h.BaseOffset] = true
			}
			data = data[h.Size():]
		}
		return out
	}
	// delete.retention.ms (an hour) has not passed: every marker stays.
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	if got := markers(); len(got) != 4 || len(l.AbortedTxns(0, l.LogEndOffset())) != 1 {
		t.Fatalf("before delete.retention.ms: markers %v, aborted %+v", got, l.AbortedTxns(0, l.LogEndOffset()))
	}
	cfg.DeleteRetention = time.Second
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	got := markers()
	if got[supersededCommit] || !got[abort] || !got[newest7] || !got[newest9] {
		t.Fatalf("markers left %v: want %d gone, %d, %d and %d kept", got, supersededCommit, abort, newest7, newest9)
	}
	if a := l.AbortedTxns(0, l.LogEndOffset()); len(a) != 1 || a[0].LastOffset != abort {
		t.Fatalf("aborted transactions after cleaning: %+v", a)
	}
	vals := map[string]bool{}
	for _, r := range readRecords(t, l) {
		vals[string(r.Key)+"="+string(r.Value)] = true
	}
	if !vals["a=c2"] || !vals["e=c"] || vals["a=c1"] || vals["d=aborted"] || vals["a=plain"] {
		t.Fatalf("records after cleaning: %v", vals)
	}
	// Rebuilt from the batches alone.
	dst := t.TempDir()
	copyDir(t, filepath.Dir(l.Dir()), dst)
	for _, suf := range []string{".index", ".timeindex", ".txnindex", ".snapshot"} {
		files, _ := filepath.Glob(filepath.Join(dst, filepath.Base(l.Dir()), "*"+suf))
		for _, f := range files {
			os.Remove(f)
		}
	}
	m2 := openManager(t, dst)
	defer m2.Close()
	l2 := m2.Get(tp)
	if lso, leo := l2.LastStableOffset(l2.LogEndOffset()), l2.LogEndOffset(); lso != leo {
		t.Fatalf("rebuilt: last stable offset %d, log end %d (a transaction left open)", lso, leo)
	}
}

// TestFailedRollSnapshotRemovesStaleOne: when the producer snapshot cannot
// be written at a roll, the older one goes, so no snapshot is ever older
// than the active segment (the cleaner removes commit markers below it; a
// replay from an older snapshot holding their transactions open would
// never see them end). Opening then replays the whole log.
func TestFailedRollSnapshotRemovesStaleOne(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, smallSegments())
	snap := filepath.Join(l.Dir(), "producer-state.snapshot")
	txnAppend(t, l, 5, 0, 2)
	for l.Segments() < 2 {
		appendN(t, l, 1, 500, 1) // a roll snapshots the open transaction
	}
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("no producer snapshot after a roll: %v", err)
	}
	marker(t, l, 5, true)
	// The next snapshot cannot be written: its temporary file's name is
	// taken by a directory that is not empty.
	if err := os.MkdirAll(filepath.Join(snap+".tmp", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for l.Segments() < 3 {
		appendN(t, l, 1, 500, 1)
	}
	if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the snapshot older than the active segment is still there: %v", err)
	}
	os.RemoveAll(snap + ".tmp")
	want := viewOf(l)
	_, cl := crashCopy(t, dir)
	if got := viewOf(cl); !reflect.DeepEqual(got, want) || got.LSO != cl.LogEndOffset() {
		t.Fatalf("reopened without a snapshot:\n got %+v\nwant %+v (log end %d)", got, want, cl.LogEndOffset())
	}
}
