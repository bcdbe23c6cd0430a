package storage_test

import (
	"fmt"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// BenchmarkAppend appends 16 KiB-ish batches the way a leader does.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("record=%dB", size), func(b *testing.B) {
			m := openManager(b, b.TempDir())
			defer m.Close()
			l := mustLog(b, m, storage.DefaultLogConfig())
			batch := storagetest.MakeBatch(values(16384/size, size, 0), -1, -1, -1)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.AppendAsLeader(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRead reads 1 MiB fetches through the log, copying into a reused
// buffer (what a fetch without sendfile does).
func BenchmarkRead(b *testing.B) {
	m := openManager(b, b.TempDir())
	defer m.Close()
	l := mustLog(b, m, storage.DefaultLogConfig())
	batch := storagetest.MakeBatch(values(16, 1024, 0), -1, -1, -1)
	for i := 0; i < 4096; i++ {
		if _, err := l.AppendAsLeader(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	buf := make([]byte, 0, 2<<20)
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	var total int64
	for i := 0; i < b.N; i++ {
		rr, err := l.Read(off, 1<<20, end)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = rr.ReadInto(buf[:0]); err != nil {
			b.Fatal(err)
		}
		total += rr.Size
		off += int64(rr.Size/int64(len(batch))) * 16
		if off >= end {
			off = 0
		}
	}
	b.SetBytes(total / int64(b.N))
}
