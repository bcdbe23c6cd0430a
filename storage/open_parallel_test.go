package storage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skein-io/skein/storage"
)

// breakLog makes the log in logDir unopenable: its segment at offset 100
// is a directory, not a file.
func breakLog(t *testing.T, logDir string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(logDir, fmt.Sprintf("%020d.log", 100)), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestOpenManagerParallel opens many logs on several workers, clean and
// unclean, and checks every log comes back whole; with two broken logs the
// error names the first by directory name on every try, and the directory
// is released (its lock and every log opened before the failure closed).
func TestOpenManagerParallel(t *testing.T) {
	const n = 60
	dir := t.TempDir()
	buildDataDir(t, dir, n, 3)
	cfg := storage.DefaultConfig(dir)
	cfg.RecoveryThreads = 8
	for _, clean := range []bool{true, false} {
		if !clean {
			if err := os.Remove(filepath.Join(dir, ".kafka_cleanshutdown")); err != nil {
				t.Fatal(err)
			}
		}
		m, err := storage.OpenManager(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if m.CleanShutdown() != clean {
			t.Fatalf("clean shutdown %v, want %v", m.CleanShutdown(), clean)
		}
		logs := m.Logs()
		if len(logs) != n {
			t.Fatalf("opened %d logs, want %d", len(logs), n)
		}
		for i := 0; i < n; i++ {
			l := logs[storage.TopicPartition{Topic: "bench", Partition: int32(i)}]
			if l == nil || l.LogEndOffset() != 30 || l.TopicID() != [16]byte{7} {
				t.Fatalf("log bench-%d: %+v", i, l)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Directory order is by name: bench-31 comes before bench-7.
	breakLog(t, filepath.Join(dir, "bench-7"))
	breakLog(t, filepath.Join(dir, "bench-31"))
	for try := 0; try < 10; try++ {
		_, err := storage.OpenManager(cfg)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "bench-31")+":") {
			t.Fatalf("try %d: error %v, want one naming bench-31", try, err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "bench-31", fmt.Sprintf("%020d.log", 100))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "bench-7", fmt.Sprintf("%020d.log", 100))); err != nil {
		t.Fatal(err)
	}
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatalf("reopen after repair: %v", err)
	}
	if got := len(m.Logs()); got != n {
		t.Fatalf("reopened %d logs, want %d", got, n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryThreadsValidated(t *testing.T) {
	cfg := storage.DefaultConfig(t.TempDir())
	if cfg.RecoveryThreads < 1 || cfg.RecoveryThreads > 16 {
		t.Fatalf("default recovery threads %d, want 1..16", cfg.RecoveryThreads)
	}
	cfg.RecoveryThreads = 0
	if _, err := storage.OpenManager(cfg); err == nil || !strings.Contains(err.Error(), "num.recovery.threads.per.data.dir") {
		t.Fatalf("error %v, want num.recovery.threads.per.data.dir", err)
	}
}
