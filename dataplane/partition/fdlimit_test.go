package partition

import (
	"bytes"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/storage"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestOutOfFileDescriptorsHint: a broker that runs out of file descriptors
// while opening its partitions' logs says, once, what to raise.
func TestOutOfFileDescriptorsHint(t *testing.T) {
	var out lockedBuffer
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := DefaultConfig(testNode)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Error})
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	var was syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	// Room for what is open now and a few more: far fewer than 200 logs.
	low := was
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower the open-file limit: %v", err)
	}
	m.ApplyImage(testImage(1, testTopic("many", 1, 200, testNode, 1, []int32{testNode}, nil)))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n := strings.Count(got, "out of file descriptors"); n != 1 {
		t.Fatalf("the open-file hint was logged %d times, want once; log:\n%.2000s", n, got)
	}
	if !strings.Contains(got, "open_file_limit=64") {
		t.Fatalf("the hint does not name the limit:\n%.2000s", got)
	}
}
