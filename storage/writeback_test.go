package storage_test

import (
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
// a goroutine of its own, one at a time per segment; appends and rolls go
// on while one is stuck (a slow disk), and once it is done the next
// writeback starts another. Off with the writeback.
func TestBackgroundSync(t *testing.T) {
	var (
		mu      sync.Mutex
		running = map[string]int{}
		starts  = map[string]int{} // file path -> syncs started
		overlap string
	)
	release := make(chan struct{})
	defer storage.SetBackgroundSync(func(f *os.File) {
		mu.Lock()
		starts[f.Name()]++
		if running[f.Name()]++; running[f.Name()] > 1 {
			overlap = f.Name()
		}
		mu.Unlock()
		<-release
		mu.Lock()
		running[f.Name()]--
		mu.Unlock()
	})()
	// waitStarts waits until ok holds of the syncs started so far.
	waitStarts := func(what string, ok func(map[string]int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			done := ok(starts)
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: background syncs started %v", what, starts)
			}
			time.Sleep(time.Millisecond)
		}
	}
	m, _ := writebackManager(t, 4096)
	// Before the manager's close (a cleanup), which waits for an append
	// stuck in a sync that runs inline (the failure this test looks for).
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()
	lc := storage.DefaultLogConfig()
	lc.SegmentBytes = 64 << 10
	l := mustLog(t, m, lc)
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
	// About 190 KB: three segments, each with its sync stuck, and never
	// two at once of one segment.
	appendN(l, 200)
	waitStarts("a sync of each of 3 segments", func(s map[string]int) bool { return len(s) >= 3 })
	mu.Lock()
	if overlap != "" {
		t.Fatalf("two background syncs of %s at once", overlap)
	}
	mu.Unlock()

	// Once a segment's sync is done, its next writeback starts another.
	unblock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		active := segmentPath(t, l)
		mu.Lock()
		n := starts[active]
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d background syncs, want another after the first ended", active, n)
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
