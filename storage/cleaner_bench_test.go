package storage_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// BenchmarkClean cleans a log of 64 MiB of records (before compression):
// 8 MiB segments, 1 KiB values (drawn from 1024 8-byte words: zstd
// compresses them 1.75:1, lz4 1.5:1), 10k distinct keys
// updated in random order, 16 records a batch. Every iteration cleans a
// fresh copy of the same log (copied outside the timer). MB/s counts the
// on-disk bytes of the cleaned range.
//
//	go test ./storage/ -run XXX -bench BenchmarkClean -benchmem
func BenchmarkClean(b *testing.B) {
	const (
		segBytes = 8 << 20
		total    = 64 << 20
		valSize  = 1024
		keys     = 10000
		perBatch = 16
	)
	cfg := storage.DefaultLogConfig()
	cfg.SegmentBytes = segBytes
	cfg.Compact, cfg.Delete = true, false
	cfg.MinCleanableDirtyRatio = 0.01
	for _, c := range []struct {
		name  string
		codec int8
	}{{"none", storagetest.None}, {"zstd", storagetest.Zstd}, {"lz4", storagetest.Lz4}} {
		b.Run(c.name, func(b *testing.B) {
			tmpl := b.TempDir()
			m := openManager(b, tmpl)
			l := mustLog(b, m, cfg)
			rng := rand.New(rand.NewPCG(1, 2))
			words := make([][]byte, 1024)
			for i := range words {
				words[i] = binary.LittleEndian.AppendUint64(nil, rng.Uint64())
			}
			kvs := make([]storagetest.KV, perBatch)
			for i := 0; i < total/valSize; i += perBatch {
				for j := range kvs {
					v := make([]byte, 0, valSize)
					for len(v) < valSize {
						v = append(v, words[rng.IntN(len(words))]...)
					}
					kvs[j] = storagetest.KV{Key: fmt.Appendf(nil, "key-%05d", rng.IntN(keys)), Value: v}
				}
				if _, err := l.AppendAsLeader(storagetest.MakeKeyedBatch(kvs, c.codec, -1, -1, -1, int64(1000+i)), 1); err != nil {
					b.Fatal(err)
				}
			}
			m.Close()

			var before, after, recs int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "data")
				copyTree(b, tmpl, dir)
				m := openManager(b, dir)
				l := mustLog(b, m, cfg)
				if err := l.SetConfig(cfg); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := l.Clean()
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				before += res.BytesBefore
				after += res.BytesAfter
				recs += res.RecordsRemoved
				m.Close()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.SetBytes(before / int64(b.N))
			b.ReportMetric(float64(after)/float64(before), "after/before")
			b.ReportMetric(float64(recs)/float64(b.N), "removed/op")
		})
	}
	// converged: cleaning the cleaned log (uncompressed) again, which
	// changes nothing (the cost of the rescans a pass makes of segments
	// already clean).
	b.Run("converged", func(b *testing.B) {
		m := openManager(b, b.TempDir())
		defer m.Close()
		l := mustLog(b, m, cfg)
		rng := rand.New(rand.NewPCG(1, 2))
		kvs := make([]storagetest.KV, perBatch)
		for i := 0; i < total/valSize; i += perBatch {
			for j := range kvs {
				v := make([]byte, valSize)
				for k := range v {
					v[k] = byte(rng.Uint32())
				}
				kvs[j] = storagetest.KV{Key: fmt.Appendf(nil, "key-%05d", rng.IntN(keys)), Value: v}
			}
			if _, err := l.AppendAsLeader(storagetest.MakeKeyedBatch(kvs, storagetest.None, -1, -1, -1, int64(1000+i)), 1); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Clean(); err != nil {
			b.Fatal(err)
		}
		var before int64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := l.Clean()
			if err != nil {
				b.Fatal(err)
			}
			if res.SegmentsRewritten != 0 || res.RecordsRemoved != 0 {
				b.Fatalf("cleaning a clean log changed it: %+v", res)
			}
			before += res.BytesBefore
		}
		b.SetBytes(before / int64(b.N))
	})
}

// copyTree copies the regular files under src to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
