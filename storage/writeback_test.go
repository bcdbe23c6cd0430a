package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

// writebackCall is one request to start writing a file range to disk.
type writebackCall struct {
	file    string
	off, to int64
}

// TestWriteback: once WritebackBytes have been appended to a segment since
// the last request, the log asks the kernel to write them (and only them)
// back; requests cover the segment's bytes in order, without gaps or
// overlaps; a truncation restarts them at the new end, a new segment at 0;
// a follower's appends count as a leader's do; 0 turns it off.
func TestWriteback(t *testing.T) {
	var calls []writebackCall
	defer storage.SetStartWriteback(func(f *os.File, off, n int64) {
		calls = append(calls, writebackCall{segKey(f.Name()), off, off + n})
	})()
	const every = 4096
	m, _ := writebackManager(t, every)
	lc := storage.DefaultLogConfig()
	lc.SegmentBytes = 64 << 10
	l := mustLog(t, m, lc)
	sizes := map[string]int64{} // segment file -> bytes appended
	appendOne := func(i int) {
		t.Helper()
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 900, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
		seg := segmentFile(l) // the new one if the append rolled
		sizes[seg] = segmentSize(t, l, seg)
	}
	// check: the requests so far cover every file from 0 in order, end
	// within every bytes of its size, and each is at least every bytes.
	check := func() {
		t.Helper()
		next := map[string]int64{}
		for _, c := range calls {
			if c.off != next[c.file] {
				t.Fatalf("writeback of %s [%d, %d): want it to start at %d (calls %v)", c.file, c.off, c.to, next[c.file], calls)
			}
			if c.to-c.off < every {
				t.Fatalf("writeback of %s [%d, %d): under %d bytes", c.file, c.off, c.to, every)
			}
			next[c.file] = c.to
		}
		for f, size := range sizes {
			if size-next[f] >= every+1000 || next[f] > size {
				t.Fatalf("%s: %d bytes, written back to %d (calls %v)", f, size, next[f], calls)
			}
		}
	}
	for i := 0; i < 200; i++ { // about 190 KB: three segments
		appendOne(i)
	}
	if len(sizes) < 3 || len(calls) < 30 {
		t.Fatalf("%d segments, %d writeback calls: want 3+ and 30+", len(sizes), len(calls))
	}
	check()

	// A follower copying the log: the same for its segments.
	f := mustLogAt(t, m, "copy", lc)
	for off := int64(0); off < l.LogEndOffset(); {
		rr, err := l.Read(off, 5000, l.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		data, err := rr.ReadInto(nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := f.AppendAsFollower(data)
		if err != nil {
			t.Fatal(err)
		}
		off = info.LastOffset + 1
		seg := segmentFile(f)
		sizes[seg] = segmentSize(t, f, seg)
	}
	check()
	if followerCalls := len(calls); followerCalls < 60 {
		t.Fatalf("%d writeback calls after the follower's copy, want 60+", followerCalls)
	}

	// A truncation into the active segment: requests restart at its end.
	seg := segmentFile(l)
	before := len(calls)
	if err := l.Truncate(l.LogEndOffset() - 30); err != nil {
		t.Fatal(err)
	}
	cut := segmentSize(t, l, seg)
	sizes[seg] = cut
	for i := 0; i < 12; i++ {
		appendOne(i)
	}
	if len(calls) == before {
		t.Fatal("no writeback after the truncation")
	}
	if c := calls[before]; c.file != seg || c.off != cut {
		t.Fatalf("first writeback after truncating %s to %d bytes: %v", seg, cut, c)
	}

	// Off: no request at all.
	calls = nil
	m2, _ := writebackManager(t, 0)
	l2 := mustLog(t, m2, lc)
	for i := 0; i < 50; i++ {
		if _, err := l2.AppendAsLeader(storagetest.MakeBatch(values(1, 900, byte(i)), -1, -1, -1), 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 0 {
		t.Fatalf("WritebackBytes 0: %d writeback calls", len(calls))
	}
}

// segKey names a segment file by its log's directory and its own name.
func segKey(path string) string {
	return filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path))
}

// segmentFile is segKey of l's active segment file (the last .log).
func segmentFile(l *storage.Log) string {
	logs, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	if len(logs) == 0 {
		return ""
	}
	return segKey(logs[len(logs)-1])
}

// writebackManager opens a manager in a new directory (returned) with
// WritebackBytes every, closed when the test ends.
func writebackManager(t *testing.T, every int64) (*storage.Manager, string) {
	t.Helper()
	cfg := storage.DefaultConfig(t.TempDir())
	cfg.WritebackBytes = every
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, cfg.Dir
}

// segmentPath is the path of l's last segment file.
func segmentPath(t *testing.T, l *storage.Log) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no segment in %s (%v)", l.Dir(), err)
	}
	return logs[len(logs)-1]
}

// segmentSize is the size of l's segment file key (segKey).
func segmentSize(t *testing.T, l *storage.Log, key string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(l.Dir(), filepath.Base(key)))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestBackgroundSync: each writeback also starts a sync of the segment on
// a goroutine of its own, one at a time per segment, and appends go on
// while one is stuck (a slow disk); the next flush waits for it, and
// reports its error once (Linux hands a writeback error to one fsync
// only: the flush's own would succeed); once one is done the next
// writeback starts another. None with the writeback off.
func TestBackgroundSync(t *testing.T) {
	var (
		mu      sync.Mutex
		running = map[string]int{}
		starts  = map[string]int{} // file path -> syncs started
		overlap string
		fail    error // what the next sync returns
	)
	gate := make(chan struct{}) // a sync waits for a token (or a close)
	defer storage.SetBackgroundSync(func(f *os.File) error {
		mu.Lock()
		starts[f.Name()]++
		if running[f.Name()]++; running[f.Name()] > 1 {
			overlap = f.Name()
		}
		mu.Unlock()
		<-gate
		mu.Lock()
		defer mu.Unlock()
		running[f.Name()]--
		err := fail
		fail = nil
		return err
	})()
	started := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return starts[path]
	}
	waitStarted := func(path string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for started(path) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d background syncs started, want %d", path, started(path), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	m, _ := writebackManager(t, 4096)
	// Before the manager's close (a cleanup), which waits for a sync the
	// test left stuck when it failed.
	open := sync.OnceFunc(func() { close(gate) })
	defer open()
	lc := storage.DefaultLogConfig()
	lc.SegmentBytes = 1 << 20
	l := mustLog(t, m, lc)
	// appendN appends n batches of about 900 bytes, failing the test if
	// they do not finish.
	appendN := func(l *storage.Log, n int) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(1, 900, byte(i)), -1, -1, -1), 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("appends held up by a background sync")
		}
	}
	// About 45 KB: ten writebacks, one sync started and stuck, the
	// appends done regardless, and never two syncs at once.
	seg := segmentPath(t, l)
	appendN(l, 50)
	waitStarted(seg, 1)
	mu.Lock()
	if starts[seg] != 1 || overlap != "" {
		t.Fatalf("%d syncs of %s with one stuck (overlap %q), want 1", starts[seg], seg, overlap)
	}
	fail = errors.New("injected writeback error")
	mu.Unlock()

	// The flush waits for the stuck sync and reports its error; the
	// flush after it succeeds.
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush() }()
	gate <- struct{}{}
	select {
	case err := <-flushed:
		if err == nil {
			t.Fatal("a flush after a failed background sync succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flush never returned")
	}
	if err := l.Flush(); err != nil {
		t.Fatalf("second flush: %v", err)
	}

	// That sync is done: the next writeback starts another.
	open()
	deadline := time.Now().Add(10 * time.Second)
	for started(seg) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no background sync after the first ended", seg)
		}
		appendN(l, 1)
	}

	// Off with the writeback.
	m2, dir2 := writebackManager(t, 0)
	l2 := mustLog(t, m2, lc)
	appendN(l2, 50)
	mu.Lock()
	defer mu.Unlock()
	for f, n := range starts {
		if strings.HasPrefix(f, dir2) {
			t.Fatalf("WritebackBytes 0: %d background syncs of %s", n, f)
		}
	}
}
