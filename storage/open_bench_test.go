package storage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// benchEnv is the positive number in the environment variable name, or
// def when it is unset.
func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// buildDataDir fills dir with n partition logs "bench-0" .. "bench-<n-1>",
// each holding batches small batches, as a broker leaves them at a clean
// shutdown: every log is a copy of one written and closed through the
// Manager, and the recovery-point checkpoint names every log at its log
// end offset (what a broker that checkpointed recently has). The caller
// removes the clean-shutdown marker for an unclean open.
func buildDataDir(t testing.TB, dir string, n, batches int) {
	t.Helper()
	tmpl := filepath.Join(t.TempDir(), "template")
	m := openManager(t, tmpl)
	l, err := m.GetOrCreate(storage.TopicPartition{Topic: "bench", Partition: 0}, [16]byte{7}, storage.DefaultLogConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < batches; i++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(10, 100, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
	}
	end := l.LogEndOffset()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		copyTree(t, filepath.Join(tmpl, "bench-0"), filepath.Join(dir, fmt.Sprintf("bench-%d", i)))
	}
	copyTree(t, filepath.Join(tmpl, ".kafka_cleanshutdown"), filepath.Join(dir, ".kafka_cleanshutdown"))
	var ckpt strings.Builder
	fmt.Fprintf(&ckpt, "0\n%d\n", n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&ckpt, "bench %d %d\n", i, end)
	}
	if err := os.WriteFile(filepath.Join(dir, "recovery-point-offset-checkpoint"), []byte(ckpt.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkOpenManager times opening and closing a data directory of many
// small partition logs (SKEIN_BENCH_PARTITIONS, 1,000 by default so that
// make bench stays short, three batches each), with one worker (what a
// sequential open does) and with DefaultRecoveryThreads, or with the
// comma-separated counts of SKEIN_BENCH_RECOVERY_THREADS. "clean" opens
// after a clean shutdown, "unclean" without the clean-shutdown marker
// (every log's active segment is recovered), "close" closes (flushes,
// writes producer snapshots, checkpoints and the marker). The page cache
// is warm: this measures CPU, syscalls and fsyncs, not a cold disk:
//
//	SKEIN_BENCH_PARTITIONS=10000 go test -run '^$' -bench BenchmarkOpenManager \
//	  -benchtime 2x -timeout 60m ./storage/
func BenchmarkOpenManager(b *testing.B) {
	n := benchEnv(b, "SKEIN_BENCH_PARTITIONS", 1000)
	threads := []int{1, storage.DefaultRecoveryThreads()}
	if s := os.Getenv("SKEIN_BENCH_RECOVERY_THREADS"); s != "" {
		threads = nil
		for _, f := range strings.Split(s, ",") {
			t, err := strconv.Atoi(f)
			if err != nil || t < 1 {
				b.Fatalf("SKEIN_BENCH_RECOVERY_THREADS=%q: want positive numbers", s)
			}
			threads = append(threads, t)
		}
	}
	dir := b.TempDir()
	buildDataDir(b, dir, n, 3)
	for _, t := range threads {
		b.Run(fmt.Sprintf("threads=%d", t), func(b *testing.B) { benchOpenClose(b, dir, n, t) })
	}
}

func benchOpenClose(b *testing.B, dir string, n, threads int) {
	cfg := storage.DefaultConfig(dir)
	cfg.RecoveryThreads = threads
	marker := filepath.Join(dir, ".kafka_cleanshutdown")
	open := func(b *testing.B) *storage.Manager {
		m, err := storage.OpenManager(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(m.Logs()); got != n {
			b.Fatalf("opened %d logs, want %d", got, n)
		}
		return m
	}
	b.Run("clean", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m := open(b)
			if !m.CleanShutdown() {
				b.Fatal("no clean-shutdown marker")
			}
			b.StopTimer()
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("close", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			m := open(b)
			b.StartTimer()
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unclean", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := os.Remove(marker); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			m := open(b)
			if m.CleanShutdown() {
				b.Fatal("clean-shutdown marker survived")
			}
			b.StopTimer()
			if err := m.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
