package storage_test

import (
	"os"
	"path/filepath"
	"testing"

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
	cfg := storage.DefaultConfig(t.TempDir())
	cfg.WritebackBytes = every
	m, err := storage.OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
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
	cfg2 := storage.DefaultConfig(t.TempDir())
	cfg2.WritebackBytes = 0
	m2, err := storage.OpenManager(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
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

// segmentSize is the size of l's segment file key (segKey).
func segmentSize(t *testing.T, l *storage.Log, key string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(l.Dir(), filepath.Base(key)))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
