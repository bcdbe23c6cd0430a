package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch encodes an uncompressed v2 batch of values at base.
func testBatch(base int64, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the 0 length took one byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset:          base,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		NumRecords:           int32(len(values)),
		Records:              recs,
		PartitionLeaderEpoch: 1,
		ProducerID:           -1,
	}
	b.Length = int32(len(b.AppendTo(nil)) - batchLogOverhead)
	return b.AppendTo(nil)
}

func TestReadPartitionLog(t *testing.T) {
	dir := t.TempDir()
	seg := func(base int64) string { return filepath.Join(dir, fmt.Sprintf("%020d.log", base)) }
	write := func(path string, parts ...[]byte) {
		t.Helper()
		if err := os.WriteFile(path, slices.Concat(parts...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Segment 10 holds 10-12 and 13; segment 14 holds 14-15 and the first
	// bytes of a batch being written; a stray .deleted file is ignored.
	b3 := testBatch(13, "d")
	write(seg(10), testBatch(10, "a", "b", "c"), b3)
	write(seg(14), testBatch(14, "e", "f"), testBatch(16, "g")[:20])
	write(filepath.Join(dir, fmt.Sprintf("%020d.log.deleted", 0)), testBatch(0, "old"))

	pl, err := ReadPartitionLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Start != 10 || pl.End != 16 || len(pl.Batches) != 3 || len(pl.Holes) != 0 {
		t.Fatalf("start %d end %d, %d batches, holes %v: want 10, 16, 3, none", pl.Start, pl.End, len(pl.Batches), pl.Holes)
	}
	if !slices.Equal(pl.Batches[1].Raw, b3) {
		t.Error("batch 13 is not the bytes written")
	}
	recs, err := pl.Records()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	if want := "10:a 11:b 12:c 13:d 14:e 15:f"; strings.Join(got, " ") != want {
		t.Errorf("records %v, want %s", got, want)
	}

	// A hole, then an overlap (a removed segment still on disk).
	write(seg(20), testBatch(20, "x"))
	if pl, err = ReadPartitionLog(dir); err != nil || !slices.Equal(pl.Holes, []string{"16-20"}) {
		t.Errorf("hole: %v, %v; want hole 16-20", pl.Holes, err)
	}
	write(seg(12), testBatch(12, "y"))
	if _, err := ReadPartitionLog(dir); err == nil {
		t.Error("overlapping segments: no error")
	}

	// An empty log restarted at an offset starts and ends there.
	empty := t.TempDir()
	write(filepath.Join(empty, fmt.Sprintf("%020d.log", 500)))
	if pl, err := ReadPartitionLog(empty); err != nil || pl.Start != 500 || pl.End != 500 {
		t.Errorf("empty log: start %d end %d (%v), want 500 500", pl.Start, pl.End, err)
	}
}

func TestVerifyRetained(t *testing.T) {
	stored := map[int32][]Stored{0: {{5, Value("s", 5)}, {6, Value("s", 6)}}}
	acks := []Ack{
		{0, 1, Value("s", 1)}, // deleted by retention
		{0, 5, Value("s", 5)},
		{0, 7, Value("s", 7)}, // lost
	}
	r := VerifyRetained(stored, acks, map[int32]int64{0: 5})
	if r.Deleted != 1 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "missing") {
		t.Errorf("report %+v: want 1 deleted, 1 missing", r)
	}
	if r := Verify(stored, acks[1:2]); len(r.Problems) == 0 {
		t.Error("Verify: a log starting at 5 passed as contiguous from 0")
	}
}

// testTxnBatch encodes a transactional batch of producer pid at base; with
// marker set, the control batch of its COMMIT (commit) or ABORT marker.
func testTxnBatch(base, pid int64, marker, commit bool, values ...string) []byte {
	attrs := int16(attrTransactional)
	var recs []byte
	n := len(values)
	if marker {
		attrs |= attrControl
		typ := byte(0)
		if commit {
			typ = 1
		}
		r := kmsg.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs, n = r.AppendTo(nil), 1
	} else {
		for i, v := range values {
			r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
			r.Length = int32(len(r.AppendTo(nil)) - 1)
			recs = r.AppendTo(recs)
		}
	}
	b := kmsg.RecordBatch{
		FirstOffset: base, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(n - 1), NumRecords: int32(n),
		Records: recs, PartitionLeaderEpoch: 1, ProducerID: pid,
	}
	b.Length = int32(len(b.AppendTo(nil)) - batchLogOverhead)
	return b.AppendTo(nil)
}

// TestCommitted: the read_committed view of a log with interleaved
// transactions: committed records in offset order, aborted ones dropped,
// plain ones kept, an open transaction reported with its first offset.
func TestCommitted(t *testing.T) {
	dir := t.TempDir()
	seg := func(base int64) string { return filepath.Join(dir, fmt.Sprintf("%020d.log", base)) }
	first := slices.Concat(
		testTxnBatch(0, 7, false, false, "c0", "c1"), // producer 7: committed below
		testTxnBatch(2, 8, false, false, "a0"),       // producer 8: aborted below
		testBatch(3, "plain"),
		testTxnBatch(4, 8, true, false), // ABORT 8
	)
	second := slices.Concat(
		testTxnBatch(5, 7, false, false, "c2"),
		testTxnBatch(6, 7, true, true), // COMMIT 7
		testTxnBatch(7, 9, false, false, "open"),
	)
	if err := os.WriteFile(seg(0), first, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg(5), second, 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err := ReadPartitionLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs, open, err := pl.Committed()
	if err != nil {
		t.Fatal(err)
	}
	want := []Stored{{0, "c0"}, {1, "c1"}, {3, "plain"}, {5, "c2"}}
	if !slices.Equal(recs, want) {
		t.Errorf("committed view %v, want %v", recs, want)
	}
	if len(open) != 1 || open[9] != 7 {
		t.Errorf("open transactions %v, want producer 9 from offset 7", open)
	}
	if commit, ok, err := pl.Batches[3].Marker(); !ok || commit || err != nil {
		t.Errorf("batch 3: marker %v commit %v err %v, want an ABORT marker", ok, commit, err)
	}
	if pl.Batches[0].ProducerID() != 7 || !pl.Batches[0].Transactional() || pl.Batches[2].Transactional() {
		t.Error("producer id or transactional bit misread")
	}
}
