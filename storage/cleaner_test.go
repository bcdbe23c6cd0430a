package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

func compactConfig() storage.LogConfig {
	c := storage.DefaultLogConfig()
	c.SegmentBytes = 4 << 10
	c.IndexIntervalBytes = 256
	c.Compact, c.Delete = true, false
	c.MinCleanableDirtyRatio = 0.01
	c.DeleteRetention = time.Hour
	return c
}

// update is one record the workload appends: value "<key>@<n>".
type update struct {
	key  string
	tomb bool
}

// workload appends n updates over keys keys in batches of per records,
// with codec, timestamps base+i ms, a tombstone every tombEvery records (0:
// none), as producer pid (>= 0: idempotent). It returns the offset of each
// record.
func workload(t testing.TB, l *storage.Log, n, keys, per int, codec int8, base int64, tombEvery int, pid int64) map[int64]update {
	return workloadKeys(t, l, "key", n, keys, per, codec, base, tombEvery, pid)
}

func workloadKeys(t testing.TB, l *storage.Log, prefix string, n, keys, per int, codec int8, base int64, tombEvery int, pid int64) map[int64]update {
	t.Helper()
	offs := map[int64]update{}
	seq := int32(0)
	for i := 0; i < n; i += per {
		var kvs []storagetest.KV
		var ups []update
		for j := i; j < i+per && j < n; j++ {
			k := fmt.Sprintf("%s-%03d", prefix, (j*7)%keys)
			kv := storagetest.KV{Key: []byte(k), Value: []byte(fmt.Sprintf("%s@%d", k, j))}
			tomb := tombEvery > 0 && j%tombEvery == tombEvery-1
			if tomb {
				kv.Value = nil
			}
			kvs = append(kvs, kv)
			ups = append(ups, update{key: k, tomb: tomb})
		}
		epoch := int16(-1)
		bseq := int32(-1)
		if pid >= 0 {
			epoch, bseq = 0, seq
			seq += int32(len(kvs))
		}
		info, err := l.AppendAsLeader(storagetest.MakeKeyedBatch(kvs, codec, pid, epoch, bseq, base+int64(i)), 1)
		if err != nil {
			t.Fatal(err)
		}
		for j, u := range ups {
			offs[info.FirstOffset+int64(j)] = u
		}
	}
	return offs
}

// records scales a workload down for lz4, whose encoder is slow under the
// race detector.
func records(codec int8, n int) int {
	if codec == storagetest.Lz4 {
		return n / 4
	}
	return n
}

func readRecords(t testing.TB, l *storage.Log) []storagetest.Record {
	t.Helper()
	recs, err := storagetest.Records(readBatches(t, l))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// readBatches reads every batch of l (checked), concatenated.
func readBatches(t testing.TB, l *storage.Log) []byte {
	t.Helper()
	var data []byte
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		rr, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if rr.Size == 0 {
			t.Fatalf("empty read at %d below log end %d", off, l.LogEndOffset())
		}
		chunk, err := rr.ReadInto(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.SplitBatches(chunk, func(b []byte) error {
			if err := storage.ValidateBatch(b); err != nil {
				return err
			}
			h, _ := storage.ParseBatchHeader(b)
			if h.LastOffset() >= off {
				data = append(data, b...)
				off = h.LastOffset() + 1
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// checkCompacted checks that below cleanedTo every key appears once, with
// its latest value, at the offset it was appended at; and that records at
// or after it are all there.
func checkCompacted(t *testing.T, l *storage.Log, offs map[int64]update, cleanedTo int64, tombstonesGone bool) {
	t.Helper()
	latest := map[string]int64{}
	for off, u := range offs {
		if off >= cleanedTo {
			continue
		}
		if o, ok := latest[u.key]; !ok || off > o {
			latest[u.key] = off
		}
	}
	seen := map[string]bool{}
	prev := int64(-1)
	above := 0
	for _, r := range readRecords(t, l) {
		if r.Offset <= prev {
			t.Fatalf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		u, ok := offs[r.Offset]
		if !ok || string(r.Key) != u.key || (r.Value == nil) != u.tomb {
			t.Fatalf("offset %d holds %q=%q, appended %+v", r.Offset, r.Key, r.Value, u)
		}
		if !u.tomb && !strings.HasPrefix(string(r.Value), u.key+"@") {
			t.Fatalf("offset %d: value %q", r.Offset, r.Value)
		}
		if r.Offset >= cleanedTo {
			above++
			continue
		}
		if seen[u.key] {
			t.Fatalf("key %s twice below %d", u.key, cleanedTo)
		}
		seen[u.key] = true
		if latest[u.key] != r.Offset {
			t.Fatalf("key %s at %d, latest is %d", u.key, r.Offset, latest[u.key])
		}
		if u.tomb && tombstonesGone {
			t.Fatalf("tombstone of %s at %d survived", u.key, r.Offset)
		}
	}
	for k, off := range latest {
		if !seen[k] && !(offs[off].tomb && tombstonesGone) {
			t.Fatalf("key %s (latest at %d) lost", k, off)
		}
	}
	want := 0
	for off := range offs {
		if off >= cleanedTo {
			want++
		}
	}
	if above != want {
		t.Fatalf("%d records at or above %d, want %d", above, cleanedTo, want)
	}
}

func segmentFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
		}
	}
	return out
}

func sameFiles(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	var names []string
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(a) != len(b) {
		t.Fatalf("%d segment files vs %d", len(a), len(b))
	}
	for _, n := range names {
		if !bytes.Equal(a[n], b[n]) {
			t.Fatalf("segment %s differs (%d vs %d bytes)", n, len(a[n]), len(b[n]))
		}
	}
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []int8{storagetest.None, storagetest.Gzip, storagetest.Snappy, storagetest.Lz4, storagetest.Zstd} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			m := openManager(t, t.TempDir())
			defer m.Close()
			l := mustLog(t, m, compactConfig())
			offs := workload(t, l, records(codec, 3000), 20, 10, codec, 1000, 0, -1)
			before := l.LogEndOffset()
			res, err := l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			if res.CleanedTo <= 0 || res.BytesAfter >= res.BytesBefore/2 || res.RecordsRemoved == 0 {
				t.Fatalf("clean result %+v", res)
			}
			if l.LogEndOffset() != before || l.LogStartOffset() != 0 {
				t.Fatalf("log [%d, %d) after cleaning, was [0, %d)", l.LogStartOffset(), l.LogEndOffset(), before)
			}
			checkCompacted(t, l, offs, res.CleanedTo, false)
			// Reads from every offset (gaps included) return the next batch.
			for off := int64(0); off < before; off += 37 {
				rr, err := l.Read(off, 1, before)
				if err != nil || rr.Size == 0 {
					t.Fatalf("read at %d: %v size %d", off, err, rr.Size)
				}
				b, _ := rr.ReadInto(nil)
				h, _ := storage.ParseBatchHeader(b)
				if h.LastOffset() < off {
					t.Fatalf("read at %d returned batch ending at %d", off, h.LastOffset())
				}
			}
			// Appends go on at the same offsets.
			info, err := l.AppendAsLeader(storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte("x"), Value: []byte("y")}}, codec, -1, -1, -1, 5000), 1)
			if err != nil || info.FirstOffset != before {
				t.Fatalf("append after cleaning: %+v %v", info, err)
			}
		})
	}
}

func TestCleanTombstonesByLogTime(t *testing.T) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	cfg := compactConfig()
	cfg.DeleteRetention = 10 * time.Second
	l := mustLog(t, m, cfg)
	// Timestamps 1000.. over 2000 records: log time spans 2 s only.
	offs := workload(t, l, 2000, 10, 10, storagetest.None, 1000, 3, -1)
	res, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	tombs := 0
	for _, r := range readRecords(t, l) {
		if r.Value == nil && r.Offset < res.CleanedTo {
			tombs++
		}
	}
	if tombs == 0 {
		t.Fatal("tombstones within delete.retention.ms of log time were removed")
	}
	checkCompacted(t, l, offs, res.CleanedTo, false)
	// Later records (other keys) move log time past the tombstones'
	// retention: they go, the live values of those keys stay.
	for off, u := range workloadKeys(t, l, "other", 2000, 10, 10, storagetest.None, 100000, 0, -1) {
		offs[off] = u
	}
	res, err = l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, l, offs, res.CleanedTo, true)
}

// cleanTwoWays fills two logs alike (fill), cleans the first to
// limit(its end) and then to the end, the second to the end at once, and
// checks that both are cleaned to the same offset with the same files and
// that cleaning again changes nothing. It returns the second log, the first
// step's result and the second log's.
func cleanTwoWays(t *testing.T, cfg storage.LogConfig, fill func(*storage.Log), limit func(end int64) int64) (*storage.Log, storage.CleanResult, storage.CleanResult) {
	t.Helper()
	var logs [2]*storage.Log
	for i := range logs {
		m := openManager(t, t.TempDir())
		t.Cleanup(func() { m.Close() })
		logs[i] = mustLog(t, m, cfg)
		fill(logs[i])
	}
	a, b := logs[0], logs[1]
	r1, err := a.CleanTo(limit(a.LogEndOffset()))
	if err != nil {
		t.Fatalf("first step: %v", err)
	}
	ra, err := a.Clean()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if ra.CleanedTo != rb.CleanedTo {
		t.Fatalf("cleaned to %d in two steps (first to %d), %d at once", ra.CleanedTo, r1.CleanedTo, rb.CleanedTo)
	}
	files := segmentFiles(t, b.Dir())
	sameFiles(t, segmentFiles(t, a.Dir()), files)
	if r, err := b.Clean(); err != nil || r.SegmentsRewritten != 0 {
		t.Fatalf("cleaning again: %+v %v", r, err)
	}
	sameFiles(t, files, segmentFiles(t, b.Dir()))
	return b, r1, rb
}

// TestCleanConvergence: cleaning to X and then to Y gives the same bytes as
// cleaning straight to Y, and cleaning again changes nothing.
func TestCleanConvergence(t *testing.T) {
	for _, codec := range []int8{storagetest.None, storagetest.Zstd, storagetest.Lz4, storagetest.Gzip, storagetest.Snappy} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			cfg := compactConfig()
			cfg.DeleteRetention = 500 * time.Millisecond
			var x int64
			_, r1, rb := cleanTwoWays(t, cfg, func(l *storage.Log) {
				workload(t, l, records(codec, 4000), 30, 7, codec, 1000, 5, 42)
			}, func(end int64) int64 { x = end / 3; return x })
			if r1.CleanedTo == 0 || r1.CleanedTo > x || rb.CleanedTo <= r1.CleanedTo {
				t.Fatalf("cleaned to %d with limit %d, then to %d", r1.CleanedTo, x, rb.CleanedTo)
			}
		})
	}
}

func TestCleanRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			l := mustLog(t, m, compactConfig())
			offs := workload(t, l, 3000, 15, 10, storagetest.Snappy, 1000, 0, 7)
			res, err := l.Clean()
			if err != nil {
				t.Fatal(err)
			}
			end := l.LogEndOffset()
			ldir := l.Dir()
			files := segmentFiles(t, ldir)
			m.Close()
			if crash {
				// As after a crash with no checkpoint: everything is
				// recovered, indexes rebuilt.
				os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
				os.Remove(filepath.Join(dir, "recovery-point-offset-checkpoint"))
				ents, _ := os.ReadDir(ldir)
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), ".index") {
						os.Remove(filepath.Join(ldir, e.Name()))
					}
				}
			}
			ck, err := os.ReadFile(filepath.Join(dir, "cleaner-offset-checkpoint"))
			if err != nil || string(ck) != fmt.Sprintf("0\n1\nt 0 %d\n", res.CleanedTo) {
				t.Fatalf("cleaner checkpoint %q %v", ck, err)
			}
			m2 := openManager(t, dir)
			defer m2.Close()
			l2 := m2.Get(tp)
			if err := l2.SetConfig(compactConfig()); err != nil {
				t.Fatal(err)
			}
			if l2.LogEndOffset() != end || l2.CleanedTo() != res.CleanedTo {
				t.Fatalf("reopened: end %d cleaned to %d, want %d and %d", l2.LogEndOffset(), l2.CleanedTo(), end, res.CleanedTo)
			}
			sameFiles(t, files, segmentFiles(t, ldir))
			checkCompacted(t, l2, offs, res.CleanedTo, false)
			if r, err := l2.Clean(); err != nil || r.SegmentsRewritten != 0 {
				t.Fatalf("clean after restart: %+v %v", r, err)
			}
			// The idempotent producer's state survived: its next sequence is accepted.
			if _, err := l2.AppendAsLeader(storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte("k"), Value: []byte("v")}}, 0, 7, 0, 3000, 9000), 1); err != nil {
				t.Fatalf("append with next sequence: %v", err)
			}
		})
	}
}

// TestCleanLostCheckpointUncleanStop: a compacted log whose
// cleaner-offset-checkpoint is lost, stopped uncleanly and reopened with
// default config (as the broker opens logs before it knows their topics'),
// is recovered whole: its gaps are not taken for damage.
func TestCleanLostCheckpointUncleanStop(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, compactConfig())
	offs := workload(t, l, 3000, 15, 10, storagetest.Gzip, 1000, 4, -1)
	res, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if res.BatchesRemoved == 0 {
		t.Fatalf("cleaning left no offset gap: %+v", res)
	}
	// Appends after cleaning, not yet flushed: recovery must scan past
	// the gaps to reach them.
	for off, u := range workloadKeys(t, l, "late", 200, 5, 10, storagetest.None, 9000, 0, -1) {
		offs[off] = u
	}
	end, ldir := l.LogEndOffset(), l.Dir()
	files := segmentFiles(t, ldir)
	m.Close()
	for _, f := range []string{".kafka_cleanshutdown", "recovery-point-offset-checkpoint", "cleaner-offset-checkpoint"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	m2 := openManager(t, dir)
	defer m2.Close()
	l2 := m2.Get(tp)
	if l2.LogEndOffset() != end {
		t.Fatalf("recovered log ends at %d, want %d", l2.LogEndOffset(), end)
	}
	sameFiles(t, files, segmentFiles(t, ldir))
	checkCompacted(t, l2, offs, res.CleanedTo, false)
	// Gaps stay accepted: a second unclean stop recovers the same log.
	m2.Close()
	os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
	os.Remove(filepath.Join(dir, "recovery-point-offset-checkpoint"))
	m3 := openManager(t, dir)
	defer m3.Close()
	if got := m3.Get(tp).LogEndOffset(); got != end {
		t.Fatalf("after a second unclean stop the log ends at %d, want %d", got, end)
	}
	sameFiles(t, files, segmentFiles(t, ldir))
}

func TestCleanCrashLeftovers(t *testing.T) {
	cfg := compactConfig()
	// Two identical logs; one is cleaned, the other gets its cleaned
	// segment as a ".swap" leftover, plus a torn ".cleaned" file.
	var dirs [2]string
	var ldirs [2]string
	var ms [2]*storage.Manager
	for i := range dirs {
		dirs[i] = t.TempDir()
		ms[i] = openManager(t, dirs[i])
		l := mustLog(t, ms[i], cfg)
		workload(t, l, 2000, 10, 10, storagetest.Zstd, 1000, 0, -1)
		ldirs[i] = l.Dir()
	}
	if _, err := ms[0].Get(tp).Clean(); err != nil {
		t.Fatal(err)
	}
	ms[0].Close()
	ms[1].Close()
	cleaned := segmentFiles(t, ldirs[0])
	first := "00000000000000000000.log"
	if err := os.WriteFile(filepath.Join(ldirs[1], first+".swap"), cleaned[first], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ldirs[1], "00000000000000000100.log.cleaned"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The cleaner checkpoint lists a log before its first gap exists.
	ck, _ := os.ReadFile(filepath.Join(dirs[0], "cleaner-offset-checkpoint"))
	os.WriteFile(filepath.Join(dirs[1], "cleaner-offset-checkpoint"), ck, 0o644)
	os.Remove(filepath.Join(dirs[1], ".kafka_cleanshutdown"))
	m := openManager(t, dirs[1])
	defer m.Close()
	l := m.Get(tp)
	ents, _ := os.ReadDir(ldirs[1])
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".swap") || strings.HasSuffix(e.Name(), ".cleaned") {
			t.Fatalf("leftover %s after open", e.Name())
		}
	}
	got := segmentFiles(t, ldirs[1])
	if !bytes.Equal(got[first], cleaned[first]) {
		t.Fatal("swap leftover not completed")
	}
	readRecords(t, l)
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, cleaned, segmentFiles(t, ldirs[1]))
}

// TestFollowerCopiesCompactedLog: a follower appending a compacted leader's
// batches (offset gaps), told which leader segment each read came from,
// gets the leader's files, and recovers them after a crash.
func TestFollowerCopiesCompactedLog(t *testing.T) {
	cfg := compactConfig()
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, cfg)
	offs := workload(t, l, 3000, 10, 10, storagetest.Snappy, 1000, 0, -1)
	res, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	fdir := t.TempDir()
	fm := openManager(t, fdir)
	fl := mustLog(t, fm, storage.DefaultLogConfig()) // config not known yet
	if err := fl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < l.LogEndOffset(); {
		rr, err := l.Read(off, 3000, l.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := rr.ReadInto(nil)
		info, err := fl.AppendAsFollowerFrom(b, leaderSegment(rr, off))
		if err != nil {
			t.Fatalf("follower append at %d: %v", off, err)
		}
		off = info.LastOffset + 1
	}
	if fl.LogEndOffset() != l.LogEndOffset() {
		t.Fatalf("follower end %d, leader %d", fl.LogEndOffset(), l.LogEndOffset())
	}
	checkCompacted(t, fl, offs, res.CleanedTo, false)
	ldir := fl.Dir()
	files := segmentFiles(t, ldir)
	sameFiles(t, segmentFiles(t, l.Dir()), files)
	fm.Close()
	// An unclean stop with the cleaner checkpoint lost too: the log's own
	// marker still says it has gaps.
	os.Remove(filepath.Join(fdir, ".kafka_cleanshutdown"))
	os.Remove(filepath.Join(fdir, "recovery-point-offset-checkpoint"))
	os.Remove(filepath.Join(fdir, "cleaner-offset-checkpoint"))
	fm2 := openManager(t, fdir)
	defer fm2.Close()
	if got := fm2.Get(tp).LogEndOffset(); got != l.LogEndOffset() {
		t.Fatalf("recovered follower ends at %d, want %d", got, l.LogEndOffset())
	}
	sameFiles(t, files, segmentFiles(t, ldir))
}

func TestCleanerLoopAndRetentionPolicy(t *testing.T) {
	dir := t.TempDir()
	cfg := storage.DefaultConfig(dir)
	cfg.CleanerInterval = 20 * time.Millisecond
	cfg.RetentionCheckInterval = 20 * time.Millisecond
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lc := compactConfig()
	lc.RetentionTime = time.Millisecond // would delete everything under "delete"
	l := mustLog(t, m, lc)
	workload(t, l, 2000, 10, 10, storagetest.None, 1000, 0, -1)
	m.Start()
	deadline := time.Now().Add(10 * time.Second)
	for l.CleanedTo() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("background cleaner did not clean the log")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l.LogStartOffset() != 0 {
		t.Fatalf("retention deleted segments of a compact-only log: start %d", l.LogStartOffset())
	}
}

func TestCheckKeys(t *testing.T) {
	for _, codec := range []int8{storagetest.None, storagetest.Gzip, storagetest.Snappy, storagetest.Lz4, storagetest.Zstd} {
		ok := storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte{}, Value: nil}}, codec, -1, -1, -1, 1)
		if err := storage.CheckKeys(ok); err != nil {
			t.Fatalf("codec %d: keyed batch refused: %v", codec, err)
		}
		bad := storagetest.MakeKeyedBatch([]storagetest.KV{{Key: []byte("a"), Value: []byte("1")}, {Value: []byte("2")}}, codec, -1, -1, -1, 1)
		if err := storage.CheckKeys(bad); !errors.Is(err, storage.ErrNoKey) {
			t.Fatalf("codec %d: batch with a keyless record: %v", codec, err)
		}
	}
}

// TestCleanerBoundariesDeterministic: with the default dirty ratio, a
// replica whose cleaner runs after every append and one whose cleaner runs
// once at the end pass through the same boundaries and end byte-identical.
func TestCleanerBoundariesDeterministic(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	cfg.DeleteRetention = 200 * time.Millisecond
	var ms [2]*storage.Manager
	var logs [2]*storage.Log
	for i := range ms {
		ms[i] = openManager(t, t.TempDir())
		defer ms[i].Close()
		logs[i] = mustLog(t, ms[i], cfg)
	}
	passes := 0
	for round := 0; round < 40; round++ {
		for i, l := range logs {
			workloadKeys(t, l, fmt.Sprint("k", round%10), 100, 100, 10, storagetest.None, int64(1000+round*100), 7, int64(round+1))
			if i == 0 {
				passes += len(ms[0].CleanNow())
			}
		}
	}
	final := ms[1].CleanNow()
	if passes < 2 || len(final) != 1 {
		t.Fatalf("incremental cleaner ran %d times, the other %d", passes, len(final))
	}
	t.Logf("incremental passes %d; cleaned to %d and %d; log end %d", passes, logs[0].CleanedTo(), logs[1].CleanedTo(), logs[0].LogEndOffset())
	if a, b := logs[0].CleanedTo(), logs[1].CleanedTo(); a != b || a == 0 {
		t.Fatalf("cleaned to %d and %d", a, b)
	}
	sameFiles(t, segmentFiles(t, logs[0].Dir()), segmentFiles(t, logs[1].Dir()))
	if again := ms[1].CleanNow(); len(again) != 0 {
		t.Fatalf("nothing to clean, yet %+v", again)
	}
}
