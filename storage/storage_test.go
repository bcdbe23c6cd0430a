package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

var tp = storage.TopicPartition{Topic: "t", Partition: 0}

func values(n, size int, tag byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{tag + byte(i)}, size)
	}
	return out
}

func smallSegments() storage.LogConfig {
	c := storage.DefaultLogConfig()
	c.SegmentBytes = 4 << 10
	c.IndexIntervalBytes = 256
	return c
}

func openManager(t testing.TB, dir string) *storage.Manager {
	t.Helper()
	cfg := storage.DefaultConfig(dir)
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustLog(t testing.TB, m *storage.Manager, cfg storage.LogConfig) *storage.Log {
	t.Helper()
	l, err := m.GetOrCreate(tp, [16]byte{1, 2, 3}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// readAll returns the base offsets of every batch from offset on, reading
// in small steps as a consumer would.
func readAll(t testing.TB, l *storage.Log, from int64) (bases []int64, recs int64) {
	t.Helper()
	off := from
	for off < l.LogEndOffset() {
		rr, err := l.Read(off, 1000, l.LogEndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if rr.Size == 0 {
			t.Fatalf("empty read at %d below log end %d", off, l.LogEndOffset())
		}
		data, err := rr.ReadInto(nil)
		if err != nil {
			t.Fatal(err)
		}
		var next int64
		if err := storage.SplitBatches(data, func(b []byte) error {
			if err := storage.ValidateBatch(b); err != nil {
				return err
			}
			h, _ := storage.ParseBatchHeader(b)
			next = h.LastOffset() + 1
			if h.LastOffset() >= off {
				bases = append(bases, h.BaseOffset)
				recs += int64(h.RecordCount)
				off = h.LastOffset() + 1
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if rr.NextOffset != next {
			t.Fatalf("read at %d: NextOffset %d, the batches end at %d", off, rr.NextOffset, next)
		}
	}
	return bases, recs
}

func TestAppendReadRollAndReopen(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, smallSegments())
	var want []int64
	for i := 0; i < 200; i++ {
		info, err := l.AppendAsLeader(storagetest.MakeBatch(values(3, 50, byte(i)), -1, -1, -1), 2)
		if err != nil {
			t.Fatal(err)
		}
		if info.FirstOffset != int64(3*i) || info.LastOffset != int64(3*i+2) {
			t.Fatalf("append %d: offsets %d..%d", i, info.FirstOffset, info.LastOffset)
		}
		want = append(want, info.FirstOffset)
	}
	segs, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	if len(segs) < 5 {
		t.Fatalf("%d segments, want the log to have rolled", len(segs))
	}
	if l.Segments() != len(segs) {
		t.Fatalf("Segments() = %d, %d segment files", l.Segments(), len(segs))
	}
	check := func(l *storage.Log) {
		t.Helper()
		got, recs := readAll(t, l, 0)
		if fmt.Sprint(got) != fmt.Sprint(want) || recs != 600 {
			t.Fatalf("read %d batches / %d records; want %d / 600", len(got), recs, len(want))
		}
		// Reading from the middle of a batch starts with that batch.
		rr, err := l.Read(301, 1, 600)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := rr.ReadInto(nil)
		h, err := storage.ParseBatchHeader(data)
		if err != nil || h.BaseOffset != 300 || int64(len(data)) != h.Size() {
			t.Fatalf("read at 301: base %d, %d bytes, %v", h.BaseOffset, len(data), err)
		}
		// The max offset excludes batches ending at or past it.
		if rr, _ := l.Read(300, 1<<20, 302); rr.Size != 0 {
			t.Fatalf("read below a max offset inside the batch returned %d bytes", rr.Size)
		}
		if _, err := l.Read(601, 100, 700); !errors.Is(err, storage.ErrOffsetOutOfRange) {
			t.Fatalf("read past the end: %v", err)
		}
	}
	check(l)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".kafka_cleanshutdown")); err != nil {
		t.Fatalf("no clean-shutdown marker: %v", err)
	}
	m2 := openManager(t, dir)
	defer m2.Close()
	if !m2.CleanShutdown() {
		t.Fatal("clean shutdown not recognised")
	}
	l2 := m2.Get(tp)
	if l2 == nil || l2.LogEndOffset() != 600 || l2.TopicID() != [16]byte{1, 2, 3} {
		t.Fatalf("reopened log: %v", l2)
	}
	check(l2)
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, storage.DefaultLogConfig())
	for i := 0; i < 10; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(2, 100, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
	}
	segPath := filepath.Join(l.Dir(), "00000000000000000000.log")
	// Simulate a crash: no Close, then tear the last batch in half and
	// flip a byte in the one before.
	st, _ := os.Stat(segPath)
	batch := st.Size() / 10
	if err := os.Truncate(segPath, st.Size()-batch/2); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(segPath, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 8*batch+100)
	f.Close()
	m.Close()
	os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))

	m2 := openManager(t, dir)
	defer m2.Close()
	if m2.CleanShutdown() {
		t.Fatal("unclean stop taken for clean")
	}
	l2 := m2.Get(tp)
	if got := l2.LogEndOffset(); got != 16 {
		t.Fatalf("log end after recovery %d, want 16 (8 whole batches)", got)
	}
	if _, recs := readAll(t, l2, 0); recs != 16 {
		t.Fatalf("recovered %d records, want 16", recs)
	}
	// Appends continue right after the last good batch.
	info, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 10, 0), -1, -1, -1), 1)
	if err != nil || info.FirstOffset != 16 {
		t.Fatalf("append after recovery: %+v %v", info, err)
	}
}

func TestIdempotentProducerStateSurvivesRestart(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			l := mustLog(t, m, smallSegments())
			seq := int32(0)
			var last storage.AppendInfo
			for i := 0; i < 50; i++ {
				info, err := l.AppendAsLeader(storagetest.MakeBatch(values(4, 60, byte(i)), 42, 1, seq), 0)
				if err != nil {
					t.Fatal(err)
				}
				seq += 4
				last = info
			}
			if clean {
				m.Close()
			} else {
				m.Close()
				os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
				os.Remove(filepath.Join(l.Dir(), "producer-state.snapshot"))
			}
			m2 := openManager(t, dir)
			defer m2.Close()
			l2 := m2.Get(tp)
			dup, err := l2.AppendAsLeader(storagetest.MakeBatch(values(4, 60, 49), 42, 1, seq-4), 0)
			if !errors.Is(err, storage.ErrDuplicateSequence) || dup.FirstOffset != last.FirstOffset || dup.LastOffset != last.LastOffset {
				t.Fatalf("retry after restart: %+v %v, want duplicate of %+v", dup, err, last)
			}
			if _, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 60, 0), 42, 1, seq+3), 0); !errors.Is(err, storage.ErrOutOfOrderSequence) {
				t.Fatalf("gap: %v", err)
			}
			if _, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 60, 0), 42, 0, 0), 0); !errors.Is(err, storage.ErrInvalidProducerEpoch) {
				t.Fatalf("old epoch: %v", err)
			}
			if _, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 60, 0), 42, 1, seq), 0); err != nil {
				t.Fatalf("next in sequence: %v", err)
			}
			if l2.LogEndOffset() != 201 {
				t.Fatalf("log end %d, want 201", l2.LogEndOffset())
			}
		})
	}
}

func TestRetentionBySizeAndTime(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cfg := storage.DefaultConfig(dir)
	cfg.Now = func() time.Time { return now }
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lc := smallSegments()
	lc.RetentionBytes = 10 << 10
	l := mustLog(t, m, lc)
	old := now.Add(-time.Hour).UnixMilli()
	for i := 0; i < 100; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatchAt(values(2, 200, byte(i)), -1, -1, -1, old+int64(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if m.ApplyRetention() == 0 || l.LogStartOffset() == 0 {
		t.Fatal("retention.bytes removed nothing")
	}
	if _, err := l.Read(0, 100, 1000); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if _, recs := readAll(t, l, l.LogStartOffset()); recs != l.LogEndOffset()-l.LogStartOffset() {
		t.Fatalf("records after retention %d", recs)
	}
	lc.RetentionBytes = -1
	lc.RetentionTime = time.Minute
	if err := l.SetConfig(lc); err != nil {
		t.Fatal(err)
	}
	m.ApplyRetention()
	// Only the active segment is left (its files stay; removed ones are
	// deleted after file.delete.delay.ms).
	segs, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	if want := fmt.Sprintf("%020d.log", l.LogStartOffset()); filepath.Base(segs[len(segs)-1]) != want {
		t.Fatalf("log start %d is not the active segment's base (%s)", l.LogStartOffset(), segs[len(segs)-1])
	}
}

func TestTimestampsAndTruncate(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, smallSegments())
	for i := 0; i < 100; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatchAt(values(1, 100, byte(i)), -1, -1, -1, 1000+int64(i)*10), int32(i/50)); err != nil {
			t.Fatal(err)
		}
	}
	off, ts, ok, err := l.OffsetForTimestamp(1255)
	if err != nil || !ok || off != 26 || ts != 1260 {
		t.Fatalf("offset for 1255: %d %d %v %v", off, ts, ok, err)
	}
	if _, _, ok, _ := l.OffsetForTimestamp(5000); ok {
		t.Fatal("found an offset for a timestamp after every record")
	}
	if ts, off := l.MaxTimestamp(); ts != 1990 || off != 99 {
		t.Fatalf("max timestamp %d at %d", ts, off)
	}
	if e, end := l.EndOffsetForEpoch(0); e != 0 || end != 50 {
		t.Fatalf("end of epoch 0: %d %d", e, end)
	}
	if err := l.Truncate(37); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 37 || l.LatestEpoch() != 0 {
		t.Fatalf("after truncate: end %d epoch %d", l.LogEndOffset(), l.LatestEpoch())
	}
	if _, recs := readAll(t, l, 0); recs != 37 {
		t.Fatalf("%d records after truncate", recs)
	}
	info, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 10, 0), -1, -1, -1), 3)
	if err != nil || info.FirstOffset != 37 {
		t.Fatalf("append after truncate %+v %v", info, err)
	}
}

func TestFollowerAppendKeepsBytes(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	leader := mustLog(t, m, storage.DefaultLogConfig())
	ftp := storage.TopicPartition{Topic: "f", Partition: 0}
	follower, err := m.GetOrCreate(ftp, [16]byte{}, storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		leader.AppendAsLeader(storagetest.MakeBatch(values(3, 20, byte(i)), 9, 0, int32(3*i)), 4)
	}
	rr, _ := leader.Read(0, 1<<20, leader.LogEndOffset())
	data, _ := rr.ReadInto(nil)
	if _, err := follower.AppendAsFollower(data); err != nil {
		t.Fatal(err)
	}
	rr2, _ := follower.Read(0, 1<<20, follower.LogEndOffset())
	data2, _ := rr2.ReadInto(nil)
	if !bytes.Equal(data, data2) {
		t.Fatal("follower bytes differ from the leader's")
	}
	if _, err := follower.AppendAsFollower(data[:len(data)/2]); err == nil {
		t.Fatal("follower accepted a torn batch")
	}
	if _, err := follower.AppendAsFollower(data); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("follower accepted offsets below its end: %v", err)
	}
}

func TestDataDirLockAndDelete(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	defer m.Close()
	if _, err := storage.OpenManager(storage.DefaultConfig(dir)); err == nil {
		t.Fatal("a second manager opened a directory in use")
	}
	l := mustLog(t, m, storage.DefaultLogConfig())
	l.AppendAsLeader(storagetest.MakeBatch(values(1, 1, 0), -1, -1, -1), 0)
	if err := m.Delete(tp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Dir()); !os.IsNotExist(err) {
		t.Fatalf("log directory still there: %v", err)
	}
	if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 1, 0), -1, -1, -1), 0); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("append to deleted log: %v", err)
	}
}

// TestFollowerRollsWhereLeaderRolled appends a leader's batches one by one
// and a follower's as one chunk: the segment files must be identical.
func TestFollowerRollsWhereLeaderRolled(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	cfg := smallSegments()
	leader := mustLog(t, m, cfg)
	ftp := storage.TopicPartition{Topic: "f", Partition: 0}
	follower, err := m.GetOrCreate(ftp, [16]byte{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if _, err := leader.AppendAsLeader(storagetest.MakeBatch(values(1+i%4, 90+i*7%200, byte(i)), -1, -1, -1), 1); err != nil {
			t.Fatal(err)
		}
	}
	var all []byte
	for off := int64(0); off < leader.LogEndOffset(); {
		rr, err := leader.Read(off, 1<<20, leader.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		data, _ := rr.ReadInto(nil)
		all = append(all, data...)
		_ = storage.SplitBatches(data, func(b []byte) error {
			h, _ := storage.ParseBatchHeader(b)
			off = h.LastOffset() + 1
			return nil
		})
	}
	if _, err := follower.AppendAsFollower(all); err != nil {
		t.Fatal(err)
	}
	lsegs, _ := filepath.Glob(filepath.Join(leader.Dir(), "*.log"))
	fsegs, _ := filepath.Glob(filepath.Join(follower.Dir(), "*.log"))
	if len(lsegs) < 3 || len(lsegs) != len(fsegs) {
		t.Fatalf("leader has %d segments, follower %d", len(lsegs), len(fsegs))
	}
	for i := range lsegs {
		a, _ := os.ReadFile(lsegs[i])
		b, _ := os.ReadFile(fsegs[i])
		if filepath.Base(lsegs[i]) != filepath.Base(fsegs[i]) || !bytes.Equal(a, b) {
			t.Fatalf("segment %s differs from the follower's %s", lsegs[i], fsegs[i])
		}
	}
}

// Producers idle for longer than producer.id.expiration.ms are forgotten
// (the state would otherwise grow with every producer the log ever saw); a
// producer with an open transaction is kept, and one that writes again
// after expiring is new to the log.
func TestProducerIDExpiration(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cfg := storage.DefaultConfig(dir)
	cfg.Now = func() time.Time { return now }
	cfg.ProducerIDExpiration = time.Hour
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l := mustLog(t, m, smallSegments())
	old, recent := now.Add(-2*time.Hour).UnixMilli(), now.Add(-time.Minute).UnixMilli()
	appendOK := func(b []byte) {
		t.Helper()
		if _, err := l.AppendAsLeader(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	appendOK(storagetest.MakeBatchAt(values(2, 10, 1), 1, 0, 0, old))    // idle: expires
	appendOK(storagetest.MakeBatchAt(values(2, 10, 2), 2, 0, 0, recent)) // active: kept
	appendOK(storagetest.MakeTxnBatch(values(2, 10, 3), 3, 0, 0))        // open transaction: kept
	if n := len(l.Producers()); n != 3 {
		t.Fatalf("%d producers before expiry, want 3", n)
	}
	if n := m.ExpireProducers(); n < 1 {
		t.Fatalf("expired %d producers, want producer 1", n)
	}
	ids := map[int64]bool{}
	for _, p := range l.Producers() {
		ids[p.ProducerID] = true
	}
	if ids[1] || !ids[2] || !ids[3] {
		t.Fatalf("producers after expiry: %v, want 2 and 3", ids)
	}
	// Producer 1 is unknown now: a sequence far from its last is accepted;
	// producer 2 still gets its gap refused.
	appendOK(storagetest.MakeBatchAt(values(1, 10, 4), 1, 0, 57, recent))
	if _, err := l.AppendAsLeader(storagetest.MakeBatchAt(values(1, 10, 5), 2, 0, 57, recent), 0); !errors.Is(err, storage.ErrOutOfOrderSequence) {
		t.Fatalf("producer 2's gap: %v", err)
	}
}
