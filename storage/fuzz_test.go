package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// reopenDamaged damages the first segment of the log in logDir (cut at
// cut, mod its length + 1; the byte at flipAt xored with flip) and reopens
// dir as after a crash. ends and lasts are the file position after each
// batch and its last offset. It returns the reopened log, the end offset
// of the whole batches before the damage and the damage's position.
func reopenDamaged(t *testing.T, dir, logDir string, cut, flipAt uint32, flip uint8, ends, lasts []int64) (*storage.Log, int64, int64) {
	t.Helper()
	seg := filepath.Join(logDir, "00000000000000000000.log")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	damage := int64(len(data))
	if c := int64(cut) % (int64(len(data)) + 1); c < damage {
		data, damage = data[:c], c
	}
	if at := int64(flipAt); at < int64(len(data)) && flip != 0 {
		data[at] ^= flip
		damage = min(damage, at)
	}
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := storage.OpenManager(storage.DefaultConfig(dir))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	wantEnd := int64(0)
	for i, e := range ends {
		if e <= damage {
			wantEnd = lasts[i] + 1
		}
	}
	return m.Get(tp), wantEnd, damage
}

// checkAppends checks that a recovered log takes an append at its end.
func checkAppends(t *testing.T, l *storage.Log) {
	t.Helper()
	end := l.LogEndOffset()
	info, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 8, 0), -1, -1, -1), 1)
	if err != nil || info.FirstOffset != end {
		t.Fatalf("append after recovery: %+v %v (log end was %d)", info, err, end)
	}
}

// FuzzRecovery writes a log, damages its segment file (a cut at any byte and
// one flipped byte anywhere), and reopens it as after a crash. Recovery must
// never panic, must keep every whole batch before the damage, must return
// only valid batches, and the log must take appends afterwards.
func FuzzRecovery(f *testing.F) {
	f.Add(uint8(10), uint16(40), uint32(5000), uint32(300), uint8(0xff))
	f.Add(uint8(1), uint16(1), uint32(30), uint32(17), uint8(1))
	f.Add(uint8(50), uint16(100), uint32(1<<30), uint32(61*3+8), uint8(0x80))
	f.Add(uint8(7), uint16(300), uint32(0), uint32(0), uint8(0))
	f.Fuzz(func(t *testing.T, batches uint8, recSize uint16, cut uint32, flipAt uint32, flip uint8) {
		n := int(batches%64) + 1
		dir := t.TempDir()
		m, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.GetOrCreate(tp, [16]byte{}, storage.DefaultLogConfig())
		if err != nil {
			t.Fatal(err)
		}
		ends := make([]int64, 0, n) // file position after each batch
		lastOffsets := make([]int64, 0, n)
		pos, seq := int64(0), int32(0)
		for i := 0; i < n; i++ {
			b := storagetest.MakeBatch(values(i%3+1, int(recSize%512), byte(i)), 5, 0, seq)
			seq += int32(i%3 + 1)
			info, err := l.AppendAsLeader(b, 0)
			if err != nil {
				t.Fatal(err)
			}
			pos += int64(len(b))
			ends = append(ends, pos)
			lastOffsets = append(lastOffsets, info.LastOffset)
		}
		m.Close()
		os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
		// Damaging an index file must not matter either.
		idx := filepath.Join(l.Dir(), "00000000000000000000.index")
		if ib, err := os.ReadFile(idx); err == nil && len(ib) > 0 {
			binary.BigEndian.PutUint32(ib[len(ib)-4:], uint32(flipAt))
			os.WriteFile(idx, ib, 0o644)
		}
		l2, wantEnd, damage := reopenDamaged(t, dir, l.Dir(), cut, flipAt, flip, ends, lastOffsets)
		if got := l2.LogEndOffset(); got < wantEnd || got > lastOffsets[n-1]+1 {
			t.Fatalf("log end %d after damage at byte %d; whole batches before it end at %d", got, damage, wantEnd)
		}
		if _, recs := readAll(t, l2, 0); recs < wantEnd {
			t.Fatalf("read %d records, want at least %d", recs, wantEnd)
		}
		checkAppends(t, l2)
	})
}

// FuzzRecoveryCompacted is FuzzRecovery for a compacted log: its first
// segment was cleaned (offset gaps, rewritten compressed batches) before
// the damage. Recovery must accept the gaps, keep every whole batch before
// the damage, return only valid batches with increasing offsets, and take
// appends. (A damaged base offset that still increases cannot be told from
// a gap, so the log end may be larger than written.)
func FuzzRecoveryCompacted(f *testing.F) {
	f.Add(uint16(300), uint32(5000), uint32(300), uint8(0xff), uint8(0))
	f.Add(uint16(40), uint32(1<<30), uint32(1<<30), uint8(0), uint8(4))
	f.Add(uint16(100), uint32(61*2+5), uint32(9), uint8(0x10), uint8(2))
	f.Fuzz(func(t *testing.T, n uint16, cut uint32, flipAt uint32, flip uint8, codec uint8) {
		dir := t.TempDir()
		m, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		cfg := compactConfig()
		l := mustLog(t, m, cfg)
		workload(t, l, int(n%400)+50, 7, 5, int8(codec%5), 1000, 4, 3)
		if _, err := l.Clean(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(l.Dir(), "00000000000000000000.log"))
		if err != nil {
			t.Fatal(err)
		}
		var ends, lasts []int64
		pos := int64(0)
		if err := storage.SplitBatches(data, func(b []byte) error {
			h, _ := storage.ParseBatchHeader(b)
			pos += int64(len(b))
			ends, lasts = append(ends, pos), append(lasts, h.LastOffset())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		os.Remove(filepath.Join(dir, ".kafka_cleanshutdown"))
		os.Remove(filepath.Join(dir, "recovery-point-offset-checkpoint"))
		l2, wantEnd, damage := reopenDamaged(t, dir, l.Dir(), cut, flipAt, flip, ends, lasts)
		if got := l2.LogEndOffset(); got < wantEnd {
			t.Fatalf("log end %d after damage at byte %d; whole batches before it end at %d", got, damage, wantEnd)
		}
		bases, _ := readAll(t, l2, l2.LogStartOffset())
		for i := 1; i < len(bases); i++ {
			if bases[i] <= bases[i-1] {
				t.Fatalf("batch at %d after %d", bases[i], bases[i-1])
			}
		}
		checkAppends(t, l2)
	})
}

// fuzzWorkload appends the records data describes to l, one byte per
// record: key "k<b&7>" (no key when b is 0xff), a tombstone when b&8, the
// batch ends after it when b&16, and b>>5 seconds pass before the next
// batch (so tombstones age past delete.retention.ms). Batches are
// compressed with codec; with pid >= 0 they are idempotent. It returns what
// each offset holds.
func fuzzWorkload(t *testing.T, l *storage.Log, data []byte, codec int8, pid int64) map[int64]storagetest.KV {
	t.Helper()
	offs := map[int64]storagetest.KV{}
	var kvs []storagetest.KV
	ts, seq := int64(1000), int32(0)
	flush := func() {
		if len(kvs) == 0 {
			return
		}
		epoch, bseq := int16(-1), int32(-1)
		if pid >= 0 {
			epoch, bseq = 0, seq
			seq += int32(len(kvs))
		}
		info, err := l.AppendAsLeader(storagetest.MakeKeyedBatch(kvs, codec, pid, epoch, bseq, ts), 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, kv := range kvs {
			offs[info.FirstOffset+int64(i)] = kv
		}
		kvs = kvs[:0]
	}
	for i, b := range data {
		kv := storagetest.KV{Key: []byte(fmt.Sprintf("k%d", b&7)), Value: []byte(fmt.Sprintf("v%d", i))}
		if b == 0xff {
			kv.Key = nil
		} else if b&8 != 0 {
			kv.Value = nil
		}
		kvs = append(kvs, kv)
		if b&16 != 0 || len(kvs) == 20 {
			flush()
			ts += int64(b>>5) * 1000
		}
	}
	flush()
	return offs
}

// FuzzClean cleans arbitrary keyed logs (any codec, idempotent or not,
// tombstones, records without keys, small segments): cleaning never fails
// or panics; every record kept is the one appended at its offset; below the
// cleaned offset only the latest record of each key is left (tombstones
// may go), above it everything; cleaning to a boundary and then to the end
// gives the same files as cleaning to the end at once; cleaning again
// changes nothing.
func FuzzClean(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x13\x04\x05\x0e\x17\x00\x01\xff\x12"), uint8(0), uint16(200), uint8(3))
	f.Add([]byte("\x30\x31\x3a\x33\x3c\x35\x16\x17\x10\x11\x1a\x13\xf0\xf1\xf2\xf3"), uint8(1), uint16(100), uint8(1))
	f.Add(bytes.Repeat([]byte{0x08, 0x11, 0x0a, 0x33, 0xe9}, 40), uint8(4|8), uint16(500), uint8(7))
	f.Add(bytes.Repeat([]byte{0x01, 0x02, 0x03, 0x14}, 30), uint8(2|8), uint16(300), uint8(2))
	f.Add(bytes.Repeat([]byte{0xff, 0x10}, 30), uint8(3), uint16(150), uint8(5))
	// testdata/fuzz/FuzzClean holds a raw records section that once failed
	// cleaning with an error not marked ErrCorruptBatch.
	f.Add(append(bytes.Repeat([]byte{0x05, 0x16}, 20), "not zstd"...), uint8(16|4<<5), uint16(150), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, segBytes uint16, step uint8) {
		if len(data) > 2000 {
			data = data[:2000]
		}
		codec := int8(mode % 5)
		pid := int64(-1)
		if mode&8 != 0 {
			pid = 9
		}
		cfg := compactConfig()
		cfg.SegmentBytes = 100 + int64(segBytes%2000)
		cfg.DeleteRetention = 2 * time.Second
		if mode&16 != 0 {
			cleanWithRawBatch(t, cfg, data, codec, int16(mode>>5))
			return
		}
		var offs map[int64]storagetest.KV
		b, _, rb := cleanTwoWays(t, cfg, func(l *storage.Log) { offs = fuzzWorkload(t, l, data, codec, pid) },
			func(end int64) int64 { return end * int64(step%8) / 8 })

		latest := map[string]int64{}
		for off, kv := range offs {
			if kv.Key == nil || off >= rb.CleanedTo {
				continue
			}
			if cur, ok := latest[string(kv.Key)]; !ok || off > cur {
				latest[string(kv.Key)] = off
			}
		}
		kept := map[int64]bool{}
		for _, r := range readRecords(t, b) {
			want, ok := offs[r.Offset]
			if !ok || !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) || (r.Value == nil) != (want.Value == nil) {
				t.Fatalf("offset %d holds %q=%q, appended %q=%q", r.Offset, r.Key, r.Value, want.Key, want.Value)
			}
			if r.Offset < rb.CleanedTo && r.Key != nil && latest[string(r.Key)] != r.Offset {
				t.Fatalf("offset %d: superseded record of %q kept (latest at %d)", r.Offset, r.Key, latest[string(r.Key)])
			}
			kept[r.Offset] = true
		}
		for off, kv := range offs {
			switch {
			case kept[off]:
			case off >= rb.CleanedTo:
				t.Fatalf("record at %d (above the cleaned offset %d) lost", off, rb.CleanedTo)
			case kv.Key == nil:
				t.Fatalf("record without key at %d lost", off)
			case latest[string(kv.Key)] == off && kv.Value != nil:
				t.Fatalf("latest value of %q at %d lost", kv.Key, off)
			}
		}
	})
}

// cleanWithRawBatch cleans a log holding, between keyed batches from the
// halves of data, a batch with a valid CRC whose records section is the
// raw second half (attributes codec bits: codec): cleaning must not panic,
// and when it fails (the batch does not decode) it must leave the files as
// they were.
func cleanWithRawBatch(t *testing.T, cfg storage.LogConfig, data []byte, codec int8, rawCodec int16) {
	m := openManager(t, t.TempDir())
	defer m.Close()
	l := mustLog(t, m, cfg)
	h := len(data) / 2
	fuzzWorkload(t, l, data[:h], codec, -1)
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch, b.Magic, b.Attributes = -1, 2, rawCodec&0x07
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.LastOffsetDelta, b.NumRecords = 2, 3
	b.Records = data[h:]
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := l.AppendAsLeader(raw, 1); err != nil {
		return // storage refuses it: nothing to clean
	}
	fuzzWorkload(t, l, data[:h], codec, -1)
	fuzzWorkload(t, l, bytes.Repeat([]byte{0x10}, 40), codec, -1) // roll past it
	before := segmentFiles(t, l.Dir())
	if _, err := l.Clean(); err != nil {
		if !errors.Is(err, storage.ErrCorruptBatch) {
			t.Fatalf("clean: %v", err)
		}
		sameFiles(t, before, segmentFiles(t, l.Dir()))
		return
	}
	after := segmentFiles(t, l.Dir())
	if r, err := l.Clean(); err != nil || r.SegmentsRewritten != 0 {
		t.Fatalf("cleaning again: %+v %v", r, err)
	}
	sameFiles(t, after, segmentFiles(t, l.Dir()))
}
