package storage_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

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
		seg := filepath.Join(l.Dir(), "00000000000000000000.log")
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
		// Damaging an index file must not matter either.
		idx := filepath.Join(l.Dir(), "00000000000000000000.index")
		if ib, err := os.ReadFile(idx); err == nil && len(ib) > 0 {
			binary.BigEndian.PutUint32(ib[len(ib)-4:], uint32(flipAt))
			os.WriteFile(idx, ib, 0o644)
		}

		m2, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer m2.Close()
		l2 := m2.Get(tp)
		wantEnd := int64(0)
		for i, e := range ends {
			if e <= damage {
				wantEnd = lastOffsets[i] + 1
			}
		}
		if got := l2.LogEndOffset(); got < wantEnd || got > lastOffsets[n-1]+1 {
			t.Fatalf("log end %d after damage at byte %d; whole batches before it end at %d", got, damage, wantEnd)
		}
		if _, recs := readAll(t, l2, 0); recs < wantEnd {
			t.Fatalf("read %d records, want at least %d", recs, wantEnd)
		}
		end := l2.LogEndOffset()
		info, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 8, 0), -1, -1, -1), 1)
		if err != nil || info.FirstOffset != end {
			t.Fatalf("append after recovery: %+v %v (log end was %d)", info, err, end)
		}
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
		seg := filepath.Join(l.Dir(), "00000000000000000000.log")
		data, err := os.ReadFile(seg)
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
		m2, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer m2.Close()
		l2 := m2.Get(tp)
		wantEnd := int64(0)
		for i, e := range ends {
			if e <= damage {
				wantEnd = lasts[i] + 1
			}
		}
		if got := l2.LogEndOffset(); got < wantEnd {
			t.Fatalf("log end %d after damage at byte %d; whole batches before it end at %d", got, damage, wantEnd)
		}
		bases, _ := readAll(t, l2, l2.LogStartOffset())
		for i := 1; i < len(bases); i++ {
			if bases[i] <= bases[i-1] {
				t.Fatalf("batch at %d after %d", bases[i], bases[i-1])
			}
		}
		end := l2.LogEndOffset()
		info, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 8, 0), -1, -1, -1), 1)
		if err != nil || info.FirstOffset != end {
			t.Fatalf("append after recovery: %+v %v (log end was %d)", info, err, end)
		}
	})
}
