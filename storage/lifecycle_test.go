package storage_test

// Regression tests for the storage lifecycle rules of design.md §8 (issue
// 10): retention never passes the high watermark, removed segments never
// come back, producer snapshots never outlive their batches, and the
// leader-epoch history is rebuilt from the log.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// copyDir copies the data directory src to dst as a process crash leaves
// it (what the page cache holds, no clean-shutdown marker written since the
// copy happens with the manager open).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if fi.Name() == ".lock" {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashCopy opens a copy of dir taken now, as a broker killed at this
// moment would find it on restart.
func crashCopy(t testing.TB, dir string) (*storage.Manager, *storage.Log) {
	t.Helper()
	dst := t.TempDir()
	copyDir(t, dir, dst)
	m := openManager(t, dst)
	t.Cleanup(func() { m.Close() })
	if m.CleanShutdown() {
		t.Fatal("crash copy has a clean-shutdown marker")
	}
	return m, m.Get(tp)
}

// TestRetentionStopsAtHighWatermark: a follower lags (the HW stays at 0)
// while retention.bytes would delete most segments; nothing above the HW
// may go, and the log start never passes the HW (defect 1).
func TestRetentionStopsAtHighWatermark(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	lc := smallSegments()
	lc.RetentionBytes = 4 << 10
	l := mustLog(t, m, lc)
	hw := int64(0)
	l.SetCleanBound(func() int64 { return hw })
	for i := 0; i < 100; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(2, 200, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.ApplyRetention(); n != 0 || l.LogStartOffset() != 0 {
		t.Fatalf("retention removed %d segments with the HW at 0; log start %d", n, l.LogStartOffset())
	}
	// The HW moves into the middle: only segments wholly below it go.
	for _, h := range []int64{37, 90, 151, l.LogEndOffset()} {
		hw = h
		m.ApplyRetention()
		if lso := l.LogStartOffset(); lso > hw {
			t.Fatalf("HW %d: log start %d passed it", hw, lso)
		}
		if _, recs := readAll(t, l, l.LogStartOffset()); recs != l.LogEndOffset()-l.LogStartOffset() {
			t.Fatalf("HW %d: %d records readable from the log start", hw, recs)
		}
	}
	if l.LogStartOffset() == 0 {
		t.Fatal("retention removed nothing once the HW reached the log end")
	}
}

// TestRetentionWithoutBoundKeepsActive: a log without a bound (not yet
// served by a partition) treats its log end as the bound.
func TestRetentionWithoutBound(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	lc := smallSegments()
	lc.RetentionBytes = 0
	l := mustLog(t, m, lc)
	for i := 0; i < 50; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(2, 200, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
	}
	m.ApplyRetention()
	if l.LogStartOffset() > l.LogEndOffset() || l.LogStartOffset() == 0 {
		t.Fatalf("log start %d, log end %d", l.LogStartOffset(), l.LogEndOffset())
	}
}

var _ = errors.Is

// appendN appends n one-record batches of size bytes in leader epoch
// epoch and returns the last AppendInfo.
func appendN(t testing.TB, l *storage.Log, n, size int, epoch int32) storage.AppendInfo {
	t.Helper()
	var info storage.AppendInfo
	for i := 0; i < n; i++ {
		var err error
		if info, err = l.AppendAsLeader(storagetest.MakeBatch(values(1, size, byte(i)), -1, -1, -1), epoch); err != nil {
			t.Fatal(err)
		}
	}
	return info
}

// checkContiguous reads the whole log and checks its offsets are
// contiguous from the log start to the log end; it returns each offset's
// batch leader epoch.
func checkContiguous(t testing.TB, l *storage.Log) []int32 {
	t.Helper()
	rr, err := l.Read(l.LogStartOffset(), 1<<30, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int32
	next := l.LogStartOffset()
	for {
		data, err := rr.ReadInto(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			break
		}
		_ = storage.SplitBatches(data, func(b []byte) error {
			h, _ := storage.ParseBatchHeader(b)
			if h.BaseOffset != next {
				t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
			}
			for o := h.BaseOffset; o <= h.LastOffset(); o++ {
				epochs = append(epochs, h.PartitionLeaderEpoch)
			}
			next = h.LastOffset() + 1
			return nil
		})
		if next >= l.LogEndOffset() {
			break
		}
		if rr, err = l.Read(next, 1<<30, l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	if next != l.LogEndOffset() {
		t.Fatalf("read up to %d, log end %d", next, l.LogEndOffset())
	}
	return epochs
}

// TestTruncatedSegmentsStayGoneAfterCrash: segments removed by a
// truncation must not come back when the broker is killed before the
// delayed delete (defect 2).
func TestTruncatedSegmentsStayGoneAfterCrash(t *testing.T) {
	for _, regrow := range []bool{false, true} {
		t.Run(map[bool]string{false: "truncate", true: "regrow"}[regrow], func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			defer m.Close()
			l := mustLog(t, m, smallSegments())
			appendN(t, l, 60, 300, 1)
			if n, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log")); len(n) < 4 {
				t.Fatalf("%d segments", len(n))
			}
			if err := l.Truncate(11); err != nil {
				t.Fatal(err)
			}
			more := 2
			if regrow {
				more = 40
			}
			appendN(t, l, more, 300, 2)
			want := l.EpochHistory()
			wantEnd := l.LogEndOffset()
			_, l2 := crashCopy(t, dir)
			if l2.LogEndOffset() != wantEnd {
				t.Fatalf("log end after crash %d, want %d", l2.LogEndOffset(), wantEnd)
			}
			if got := l2.EpochHistory(); len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
				t.Fatalf("epochs after crash %v, want %v", got, want)
			}
			epochs := checkContiguous(t, l2)
			for o, e := range epochs {
				if wantE := int32(map[bool]int32{true: 1, false: 2}[o < 11]); e != wantE {
					t.Fatalf("offset %d has epoch %d, want %d", o, e, wantE)
				}
			}
		})
	}
}

// idem returns a one-record idempotent batch of producer 42, epoch 1.
func idem(seq int32, size int) []byte {
	return storagetest.MakeBatch(values(1, size, byte(seq)), 42, 1, seq)
}

// TestProducerSnapshotDiesWithTruncation: truncating below the producer
// snapshot, re-extending past it and crashing must not make the truncated
// batches "known" again (defect 3).
func TestProducerSnapshotDiesWithTruncation(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	defer m.Close()
	l := mustLog(t, m, smallSegments())
	for seq := int32(0); seq < 30; seq++ {
		if _, err := l.AppendAsLeader(idem(seq, 300), 1); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log")); len(n) < 3 {
		t.Fatalf("%d segments, want a roll (and its snapshot) past offset 5", len(n))
	}
	if err := l.Truncate(5); err != nil {
		t.Fatal(err)
	}
	// Other records take offsets 5..34 without a roll.
	if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(30, 5, 0), -1, -1, -1), 2); err != nil {
		t.Fatal(err)
	}
	_, l2 := crashCopy(t, dir)
	if info, err := l2.AppendAsLeader(idem(25, 300), 2); errors.Is(err, storage.ErrDuplicateSequence) {
		t.Fatalf("retry of truncated sequence 25 answered as a duplicate at %d..%d", info.FirstOffset, info.LastOffset)
	}
	info, err := l2.AppendAsLeader(idem(5, 300), 2)
	if err != nil || info.FirstOffset != 35 {
		t.Fatalf("retry of truncated sequence 5: %+v %v, want it appended at 35", info, err)
	}
}

// TestProducerSnapshotAtRollMidAppend: one append whose batches span a
// roll; the snapshot taken at the roll must hold the batches before it,
// so after a crash their retry is a duplicate (defect 4).
func TestProducerSnapshotAtRollMidAppend(t *testing.T) {
	for _, follower := range []bool{false, true} {
		t.Run(map[bool]string{false: "leader", true: "follower"}[follower], func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			defer m.Close()
			l := mustLog(t, m, smallSegments())
			var all []byte
			for seq := int32(0); seq < 12; seq++ {
				all = append(all, idem(seq, 300)...)
			}
			all = append(all, storagetest.MakeBatch(values(1, 1000, 0), -1, -1, -1)...)
			if follower {
				// Offsets as a leader would have assigned them.
				src := mustLogAt(t, m, "src", smallSegments())
				if _, err := src.AppendAsLeader(all, 1); err != nil {
					t.Fatal(err)
				}
				all = nil
				for off := int64(0); off < src.LogEndOffset(); {
					rr, _ := src.Read(off, 1<<20, src.LogEndOffset())
					all, _ = rr.ReadInto(all)
					_ = storage.SplitBatches(all, func(b []byte) error {
						h, _ := storage.ParseBatchHeader(b)
						off = h.LastOffset() + 1
						return nil
					})
				}
				if _, err := l.AppendAsFollower(all); err != nil {
					t.Fatal(err)
				}
			} else if _, err := l.AppendAsLeader(all, 1); err != nil {
				t.Fatal(err)
			}
			if n, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log")); len(n) != 2 {
				t.Fatalf("%d segments, want the append to roll once", len(n))
			}
			_, l2 := crashCopy(t, dir)
			// The roll comes after sequence 10 (offset 10).
			info, err := l2.AppendAsLeader(idem(10, 300), 1)
			if !errors.Is(err, storage.ErrDuplicateSequence) || info.FirstOffset != 10 {
				t.Fatalf("retry of sequence 10 after the crash: %+v %v, want a duplicate at 10", info, err)
			}
		})
	}
}

func mustLogAt(t testing.TB, m *storage.Manager, topic string, cfg storage.LogConfig) *storage.Log {
	t.Helper()
	l, err := m.GetOrCreate(storage.TopicPartition{Topic: topic}, [16]byte{9}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestEpochCacheRebuiltFromLog: a missing, damaged or inconsistent
// leader-epoch-checkpoint is rebuilt from the batches' partition leader
// epochs (defect 7).
func TestEpochCacheRebuiltFromLog(t *testing.T) {
	damage := map[string]string{
		"missing":      "",
		"garbage":      "0\n3\n1 0\nx\n",
		"beyond-end":   "0\n2\n1 0\n9 100000\n",
		"not-growing":  "0\n3\n1 0\n3 20\n2 30\n",
		"empty":        "0\n0\n",
		"offsets-back": "0\n2\n1 10\n2 5\n",
	}
	for name, content := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			defer m.Close()
			l := mustLog(t, m, smallSegments())
			appendN(t, l, 20, 300, 1)
			appendN(t, l, 15, 300, 3)
			appendN(t, l, 10, 300, 4)
			if err := l.Truncate(40); err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 5, 300, 6)
			want := l.EpochHistory()
			if len(want) != 4 {
				t.Fatalf("history %v", want)
			}
			m2, l2 := func() (*storage.Manager, *storage.Log) {
				dst := t.TempDir()
				copyDir(t, dir, dst)
				ck := filepath.Join(dst, filepath.Base(l.Dir()), "leader-epoch-checkpoint")
				if content == "" {
					os.Remove(ck)
				} else if err := os.WriteFile(ck, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				m2 := openManager(t, dst)
				return m2, m2.Get(tp)
			}()
			defer m2.Close()
			if got := l2.EpochHistory(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("history after reopen %v, want %v", got, want)
			}
			for _, c := range []struct {
				epoch, wantEpoch int32
				wantEnd          int64
			}{{0, -1, -1}, {1, 1, 20}, {2, 1, 20}, {3, 3, 35}, {4, 4, 40}, {5, 4, 40}, {6, 6, 45}, {9, 6, 45}} {
				if e, end := l2.EndOffsetForEpoch(c.epoch); e != c.wantEpoch || end != c.wantEnd {
					t.Fatalf("end offset for epoch %d: %d %d, want %d %d", c.epoch, e, end, c.wantEpoch, c.wantEnd)
				}
			}
			// The rebuilt history was written back.
			m2.Close()
			m3 := openManager(t, m2.Dir())
			defer m3.Close()
			if got := m3.Get(tp).EpochHistory(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("history after a second reopen %v, want %v", got, want)
			}
		})
	}
}

// crashable returns a CrashableDir over a new directory and a manager
// on it.
func crashable(t testing.TB) (*storagetest.CrashableDir, *storage.Manager) {
	t.Helper()
	c, err := storagetest.NewCrashableDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, openManager(t, c.Dir())
}

// machineCrash abandons m, drops everything not fsynced and reopens.
func machineCrash(t testing.TB, c *storagetest.CrashableDir, m *storage.Manager) *storage.Manager {
	t.Helper()
	m.Abandon()
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	m2 := openManager(t, c.Dir())
	if m2.CleanShutdown() {
		t.Fatal("clean-shutdown marker after a crash")
	}
	return m2
}

// TestTruncationSurvivesMachineCrash: a truncation (in place and of whole
// segments) followed by a machine crash that drops every unsynced byte
// must not bring the truncated records back (defect 2).
func TestTruncationSurvivesMachineCrash(t *testing.T) {
	c, m := crashable(t)
	l := mustLog(t, m, smallSegments())
	appendN(t, l, 60, 300, 1)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(7); err != nil {
		t.Fatal(err)
	}
	if n, _ := filepath.Glob(filepath.Join(l.Dir(), "00000000000000000000.log")); len(n) != 1 {
		t.Fatal("segment 0 gone")
	}
	// Not flushed: lost in the crash, which must leave the truncated
	// log, not the one before the truncation.
	appendN(t, l, 2, 300, 2)
	m2 := machineCrash(t, c, m)
	defer m2.Close()
	l2 := m2.Get(tp)
	if l2.LogEndOffset() != 7 || fmt.Sprint(l2.EpochHistory()) != "[{1 0}]" {
		t.Fatalf("after the crash: log end %d, epochs %v; want 7, [{1 0}]", l2.LogEndOffset(), l2.EpochHistory())
	}
	for o, e := range checkContiguous(t, l2) {
		if e != 1 {
			t.Fatalf("offset %d has epoch %d", o, e)
		}
	}
}

// TestTruncateCleanedSegmentSurvivesMachineCrash: a segment rewritten by
// the cleaner keeps the file it was written as (".log.cleaned", renamed
// since); truncating it in place must still make the cut durable under
// the segment's current name.
func TestTruncateCleanedSegmentSurvivesMachineCrash(t *testing.T) {
	c, m := crashable(t)
	l := mustLog(t, m, compactConfig())
	workload(t, l, 600, 450, 4, storagetest.None, 1000, 0, -1)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Clean(); err != nil || res.SegmentsRewritten == 0 {
		t.Fatalf("clean: %+v %v", res, err)
	}
	// Truncate inside the first (rewritten) segment.
	rr, err := l.Read(0, 1<<20, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := rr.ReadInto(nil)
	var bases []int64
	_ = storage.SplitBatches(data, func(b []byte) error {
		h, _ := storage.ParseBatchHeader(b)
		bases = append(bases, h.BaseOffset)
		return nil
	})
	if len(bases) < 3 {
		t.Fatalf("first segment has %d batches", len(bases))
	}
	cut := bases[len(bases)/2]
	if err := l.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	want := l.LogEndOffset()
	m2 := machineCrash(t, c, m)
	defer m2.Close()
	if got := m2.Get(tp).LogEndOffset(); got != want {
		t.Fatalf("log end after the crash %d, want %d (truncated at %d)", got, want, cut)
	}
}

// TestStrayEmptySegmentBelowLogEnd: an empty segment file whose name lies
// inside the previous segment's offsets (on-disk damage, or a leftover) is
// removed when the log opens; it must not become the active segment and
// pull the log end back below records the log holds.
func TestStrayEmptySegmentBelowLogEnd(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, storage.DefaultLogConfig())
	appendN(t, l, 3, 100, 1)
	logDir := l.Dir()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(logDir, "00000000000000000001.log")
	if err := os.WriteFile(stray, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	t.Cleanup(func() { m.Close() })
	l = m.Get(tp)
	if got := l.LogEndOffset(); got != 3 {
		t.Fatalf("log end after reopening with a stray empty segment at 1: %d, want 3", got)
	}
	checkContiguous(t, l)
	appendN(t, l, 1, 100, 1)
	if got := l.LogEndOffset(); got != 4 {
		t.Fatalf("log end after one more append: %d, want 4", got)
	}
}
