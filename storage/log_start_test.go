package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skein-io/skein/storage"
)

// TestIncrementLogStart: a log start moved inside a segment (DeleteRecords)
// hides the records below it, removes the segments wholly below it, never
// moves back, survives a restart and a machine crash, is kept by
// retention and is brought back to the log end by a truncation below it.
func TestIncrementLogStart(t *testing.T) {
	c, m := crashable(t)
	lc := smallSegments()
	l := mustLog(t, m, lc)
	appendN(t, l, 60, 300, 1) // about 13 records a segment
	segs := func(l *storage.Log) int {
		n, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
		return len(n)
	}
	before := segs(l)

	if _, err := l.IncrementLogStart(61); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("log start past the log end: %v, want out of range", err)
	}
	moved, err := l.IncrementLogStart(30)
	if err != nil || !moved || l.LogStartOffset() != 30 {
		t.Fatalf("increment to 30: moved %v, err %v, log start %d", moved, err, l.LogStartOffset())
	}
	if segs(l) >= before {
		t.Fatalf("%d segments before, %d after: none wholly below 30 removed", before, segs(l))
	}
	if _, err := l.Read(29, 1<<20, 60); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	if _, recs := readAll(t, l, 30); recs != 30 {
		t.Fatalf("%d records from 30, want 30", recs)
	}
	if moved, err := l.IncrementLogStart(12); err != nil || moved || l.LogStartOffset() != 30 {
		t.Fatalf("a lower start moved it: %v %v %d", moved, err, l.LogStartOffset())
	}

	// Durable at once: a machine crash right after keeps it (the
	// records were flushed before; the start was not, by itself).
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.IncrementLogStart(31); err != nil {
		t.Fatal(err)
	}
	m2 := machineCrash(t, c, m)
	l2 := m2.Get(tp)
	if l2.LogStartOffset() != 31 || l2.LogEndOffset() != 60 {
		t.Fatalf("after a machine crash: log [%d, %d), want [31, 60)", l2.LogStartOffset(), l2.LogEndOffset())
	}

	// Retention removing the first segment keeps a start beyond its
	// next one's base.
	if _, err := l2.IncrementLogStart(45); err != nil {
		t.Fatal(err)
	}
	m2.ApplyRetention()
	if l2.LogStartOffset() != 45 {
		t.Fatalf("after retention: log start %d, want 45", l2.LogStartOffset())
	}

	// A truncation below the start empties the log, which starts at
	// its end; the file must follow, or the next open would cut the
	// records appended after.
	if err := l2.Truncate(40); err != nil {
		t.Fatal(err)
	}
	if l2.LogStartOffset() != l2.LogEndOffset() || l2.LogEndOffset() > 40 {
		t.Fatalf("after truncating below the start: log [%d, %d)", l2.LogStartOffset(), l2.LogEndOffset())
	}
	start := l2.LogStartOffset()
	appendN(t, l2, 20, 300, 2)
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	m3 := openManager(t, c.Dir())
	defer m3.Close()
	l3 := m3.Get(tp)
	if l3.LogStartOffset() != start || l3.LogEndOffset() != start+20 {
		t.Fatalf("reopened: log [%d, %d), want [%d, %d)", l3.LogStartOffset(), l3.LogEndOffset(), start, start+20)
	}
	if _, recs := readAll(t, l3, start); recs != 20 {
		t.Fatalf("%d records after reopening, want 20", recs)
	}
}

// TestLogStartFilePastLogEnd: a log start file above the log end (the
// records it was set among were lost in a crash) is brought down to the
// end when the log opens, in the file too: records appended later are
// readable after the next open.
func TestLogStartFilePastLogEnd(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, smallSegments())
	appendN(t, l, 20, 300, 1)
	if _, err := l.IncrementLogStart(10); err != nil {
		t.Fatal(err)
	}
	pdir := l.Dir()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "log-start-offset"), []byte("500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	l = m.Get(tp)
	if l.LogStartOffset() != 20 || l.LogEndOffset() != 20 {
		t.Fatalf("log [%d, %d), want [20, 20)", l.LogStartOffset(), l.LogEndOffset())
	}
	appendN(t, l, 5, 300, 1)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	defer m.Close()
	l = m.Get(tp)
	if l.LogStartOffset() != 20 || l.LogEndOffset() != 25 {
		t.Fatalf("reopened: log [%d, %d), want [20, 25)", l.LogStartOffset(), l.LogEndOffset())
	}
}
