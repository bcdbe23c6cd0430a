package storage_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// TestDiskFull fills a small tmpfs: the append that does not fit fails with
// ErrDiskFull (Kafka's KAFKA_STORAGE_ERROR), leaves no partial batch, and
// everything appended before stays readable, also after a restart. Needs
// root (to mount); skipped otherwise.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	data := filepath.Join(dir, "data")
	m := openManager(t, data)
	l := mustLog(t, m, storage.DefaultLogConfig())
	var acked int64
	var lastErr error
	for i := 0; i < 1000; i++ {
		info, err := l.AppendAsLeader(storagetest.MakeBatch(values(4, 1000, byte(i)), -1, -1, -1), 0)
		if err != nil {
			lastErr = err
			break
		}
		acked = info.LastOffset + 1
	}
	if !errors.Is(lastErr, storage.ErrDiskFull) {
		t.Fatalf("filling the disk ended with %v, want ErrDiskFull", lastErr)
	}
	if acked == 0 || l.LogEndOffset() != acked {
		t.Fatalf("log end %d after disk full, %d records acknowledged", l.LogEndOffset(), acked)
	}
	if _, recs := readAll(t, l, 0); recs != acked {
		t.Fatalf("read %d records, %d acknowledged", recs, acked)
	}
	m.Close() // may fail to write its marker: the disk is full
	m2 := openManager(t, data)
	defer m2.Close()
	l2 := m2.Get(tp)
	if l2.LogEndOffset() != acked {
		t.Fatalf("after restart log end %d, want %d", l2.LogEndOffset(), acked)
	}
	if _, recs := readAll(t, l2, 0); recs != acked {
		t.Fatalf("after restart read %d records, want %d", recs, acked)
	}
}
