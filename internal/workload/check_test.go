package workload

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

// builder crafts histories: producers write values into per-partition
// logs the test may then tamper with; acks acknowledge every produced
// value at its position in the log at that moment; consumers poll ranges
// of the logs.
type builder struct {
	events []Event
	start  map[int32]int64
	logs   map[int32][]string // the partition's values from offset 0
	acked  map[string]bool
	pend   []string // invoked, not yet acknowledged, in invoke order
}

// newBuilder makes partitions partitions whose first old records (values
// "old-N", written before the run) end at offset start.
func newBuilder(partitions int, start int64) *builder {
	b := &builder{start: map[int32]int64{}, logs: map[int32][]string{}, acked: map[string]bool{}}
	for p := range int32(partitions) {
		b.start[p] = start
		for o := range start {
			b.logs[p] = append(b.logs[p], fmt.Sprintf("old-%d", o))
		}
	}
	b.add(Event{Type: Start, Topic: "t", Partition: NoOffset, Offset: NoOffset, Offsets: maps.Clone(b.start)})
	return b
}

func (b *builder) add(e Event) { b.events = append(b.events, e) }

// invoke records a produce of value to p without appending it to the log.
func (b *builder) invoke(process string, p int32, value string) {
	b.add(Event{Type: Invoke, Process: process, Partition: p, Offset: NoOffset, Value: value})
}

// write invokes value and appends it to p's log; acks acknowledges it.
func (b *builder) write(process string, p int32, value string) {
	b.invoke(process, p, value)
	b.logs[p] = append(b.logs[p], value)
	b.pend = append(b.pend, value)
}

// indeterminate records an info outcome of an invoked value.
func (b *builder) indeterminate(process string, p int32, value string) {
	b.add(Event{Type: Info, Process: process, Partition: p, Offset: NoOffset, Value: value, Error: "timed out"})
}

// acks acknowledges every pending value at its first position in the logs
// now.
func (b *builder) acks() {
	for _, v := range b.pend {
		for p, log := range b.logs {
			if o := slices.Index(log, v); o >= 0 {
				b.add(Event{Type: OK, Process: producerOf(v), Partition: p, Offset: int64(o), Value: v})
				break
			}
		}
	}
	b.pend = nil
}

func producerOf(v string) string { return v[:2] }

// produceAll: p0 and p1 write 6 values each, alternating partitions 0
// and 1. Partition 0 ends up p0-0 p1-1 p0-2 p1-3 p0-4 p1-5 (after the old
// records); partition 1 p1-0 p0-1 p1-2 p0-3 p1-4 p0-5.
func (b *builder) produceAll() {
	for i := range 6 {
		b.write("p0", int32(i%2), fmt.Sprintf("p0-%d", i))
		b.write("p1", int32((i+1)%2), fmt.Sprintf("p1-%d", i))
	}
}

func (b *builder) assign(process, group string, from map[int32]int64) {
	b.add(Event{Type: Assign, Process: process, Group: group, Partition: NoOffset, Offset: NoOffset, Offsets: from})
}

func (b *builder) revoke(process string, partitions ...int32) {
	offsets := map[int32]int64{}
	for _, p := range partitions {
		offsets[p] = NoOffset
	}
	b.add(Event{Type: Revoke, Process: process, Partition: NoOffset, Offset: NoOffset, Offsets: offsets})
}

// poll reads offsets [from, to) of p's log (absolute offsets).
func (b *builder) poll(process string, p int32, from, to int64) {
	var recs []Record
	for o := from; o < to; o++ {
		recs = append(recs, Record{o, b.logs[p][o]})
	}
	b.pollRecords(process, p, recs...)
}

func (b *builder) pollRecords(process string, p int32, recs ...Record) {
	b.add(Event{Type: Poll, Process: process, Partition: p, Offset: NoOffset, Records: recs})
}

func (b *builder) end(p int32) int64 { return int64(len(b.logs[p])) }

// fromStart is every partition's start offset.
func (b *builder) fromStart() map[int32]int64 { return maps.Clone(b.start) }

// consumeAll: a plain consumer from the start offsets, each partition in
// two polls.
func (b *builder) consumeAll(process string) {
	b.assign(process, "", b.fromStart())
	for p := range int32(len(b.start)) {
		mid := (b.start[p] + b.end(p)) / 2
		b.poll(process, p, b.start[p], mid)
		b.poll(process, p, mid, b.end(p))
	}
}

// groupConsumeAll: g0 joins group g, owns both partitions and reads
// from offset 0 (older records included, as a reset to the earliest
// offset does); partition 1 moves to g1 halfway, which re-reads the last
// record g0 read (at least once is allowed).
func (b *builder) groupConsumeAll() {
	b.assign("g0", "g", map[int32]int64{0: NoOffset, 1: NoOffset})
	b.poll("g0", 0, 0, b.end(0))
	mid := (b.start[1] + b.end(1)) / 2
	b.poll("g0", 1, 0, mid)
	b.revoke("g0", 1)
	b.assign("g1", "g", map[int32]int64{1: NoOffset})
	b.poll("g1", 1, mid-1, b.end(1))
}

// finish writes the end event and the final reader's reads.
func (b *builder) finish() []Event {
	hw := map[int32]int64{}
	for p := range b.start {
		hw[p] = b.end(p)
	}
	b.add(Event{Type: End, Partition: NoOffset, Offset: NoOffset, Offsets: hw})
	b.assign(FinalReader, "", b.fromStart())
	for p := range int32(len(b.start)) {
		b.poll(FinalReader, p, b.start[p], b.end(p))
	}
	return b.events
}

// standard is a clean run: produce, acknowledge, two plain consumers and
// a group of two read everything.
func standard(b *builder) []Event {
	b.produceAll()
	b.acks()
	b.consumeAll("c0")
	b.groupConsumeAll()
	b.consumeAll("c1")
	return b.finish()
}

// want checks that the report has exactly the given counts of anomalies
// (every other kind: none) and logs them.
func want(t *testing.T, events []Event, counts map[Kind]int) *Report {
	t.Helper()
	r, err := Check(events)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, a := range r.Anomalies {
		t.Logf("%s: %s", a.Kind, a)
	}
	for _, k := range Kinds {
		if got := r.Count(k); got != counts[k] {
			t.Errorf("%d %s anomalies, want %d", got, k, counts[k])
		}
	}
	return r
}

// firstOf returns the first anomaly of kind k; the test fails without one.
func firstOf(t *testing.T, r *Report, k Kind) Anomaly {
	t.Helper()
	a := r.Examples(k, 1)
	if len(a) == 0 {
		t.Fatalf("no %s anomaly", k)
	}
	return a[0]
}

func TestCleanHistory(t *testing.T) {
	r := want(t, standard(newBuilder(2, 0)), nil)
	if !r.OK() || r.Invoked != 12 || r.Acknowledged != 12 || r.Indeterminate != 0 || r.FinalRecords != 12 || r.Partitions != 2 {
		t.Errorf("report %+v", r)
	}
	// g1 re-read one record g0 had read: 12 + 1.
	if r.Reads["c0"] != 12 || r.Reads["g0"]+r.Reads["g1"] != 13 || r.Reads[FinalReader] != 12 {
		t.Errorf("reads %v", r.Reads)
	}
}

// Records older than the run (below the start offsets) are ignored, even
// though the group reads them.
func TestOlderRecordsIgnored(t *testing.T) {
	r := want(t, standard(newBuilder(2, 5)), nil)
	if r.FinalRecords != 12 || r.Reads["g0"]+r.Reads["g1"] != 13 {
		t.Errorf("final %d records, reads %v: want the run's only", r.FinalRecords, r.Reads)
	}
}

func TestLost(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.logs[0] = b.logs[0][:5] // p1-5, acknowledged at offset 5, is gone
	b.consumeAll("c0")
	b.groupConsumeAll()
	r := want(t, b.finish(), map[Kind]int{Lost: 1})
	if a := r.Examples(Lost, 1); len(a) != 1 || a[0].Value != "p1-5" || a[0].Offset != 5 || a[0].Partition != 0 {
		t.Errorf("lost %v, want p1-5 at partition 0 offset 5", a)
	}
}

// A record replaced at its offset by another (an unclean election) is lost,
// and a consumer that read it before sees a different value there.
func TestLostAndDivergentAfterTruncation(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.consumeAll("c0")
	b.logs[0][5] = "p0-6"
	b.invoke("p0", 0, "p0-6")
	b.indeterminate("p0", 0, "p0-6")
	b.groupConsumeAll()
	want(t, b.finish(), map[Kind]int{Lost: 1, Divergent: 2}) // g0 and final differ from c0
}

func TestDuplicated(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.logs[1] = append(b.logs[1], "p0-3") // a retry stored twice
	b.consumeAll("c0")
	b.groupConsumeAll()
	r := want(t, b.finish(), map[Kind]int{Duplicated: 1})
	if a := firstOf(t, r, Duplicated); a.Value != "p0-3" || a.Process != "p0" {
		t.Errorf("duplicated %v, want p0-3", a)
	}
}

func TestWrongOffset(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	// p0-4 and p1-5 trade places: each is at an offset it was not
	// acknowledged at, and each producer's order still holds.
	b.logs[0][4], b.logs[0][5] = b.logs[0][5], b.logs[0][4]
	b.consumeAll("c0")
	b.groupConsumeAll()
	want(t, b.finish(), map[Kind]int{WrongOffset: 2})
}

func TestWrongPartition(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.invoke("p0", 0, "p0-6")
	b.logs[1] = append(b.logs[1], "p0-6") // produced to 0, stored in 1
	b.pend = append(b.pend, "p0-6")
	b.acks()
	b.consumeAll("c0")
	b.groupConsumeAll()
	want(t, b.finish(), map[Kind]int{WrongOffset: 1})
}

func TestReordered(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	// p0-2 and p0-4 trade places before they are acknowledged: the
	// acknowledgements and the log agree with each other, not with p0's
	// order.
	b.logs[0][2], b.logs[0][4] = b.logs[0][4], b.logs[0][2]
	b.acks()
	b.consumeAll("c0")
	b.groupConsumeAll()
	want(t, b.finish(), map[Kind]int{Reordered: 2}) // in the acks and in the final log
}

func TestUnseen(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.consumeAll("c0")
	b.groupConsumeAll()
	// c1 stops reading partition 1 two records short (its drain was cut
	// short): no skip, but two acknowledged values it never saw.
	b.assign("c1", "", b.fromStart())
	b.poll("c1", 0, 0, b.end(0))
	b.poll("c1", 1, 0, b.end(1)-2)
	r := want(t, b.finish(), map[Kind]int{Unseen: 2})
	for _, a := range r.Anomalies {
		if a.Process != "c1" || a.Partition != 1 {
			t.Errorf("unseen %+v: want c1 in partition 1", a)
		}
	}
}

// A group must see every record through some member: here the group's
// reads of partition 1 stop early.
func TestUnseenByGroup(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.consumeAll("c0")
	b.assign("g0", "g", map[int32]int64{0: NoOffset, 1: NoOffset})
	b.poll("g0", 0, 0, b.end(0))
	b.poll("g0", 1, 0, 3)
	b.revoke("g0", 1)
	b.assign("g1", "g", map[int32]int64{1: NoOffset})
	b.poll("g1", 1, 3, 5)
	r := want(t, b.finish(), map[Kind]int{Unseen: 1})
	if a := firstOf(t, r, Unseen); a.Process != "group g" || a.Offset != 5 {
		t.Errorf("unseen %+v: want group g at offset 5", a)
	}
}

func TestPollSkip(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.groupConsumeAll()
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 2)
	b.poll("c0", 0, 3, 6) // jumps over offset 2
	b.assign("c0", "", map[int32]int64{0: 2})
	b.poll("c0", 0, 2, 3) // sought back: it sees offset 2 after all (not unseen)
	b.poll("c0", 1, 0, 6)
	r := want(t, b.finish(), map[Kind]int{PollSkip: 1})
	if a := firstOf(t, r, PollSkip); a.Process != "c0" || a.Offset != 3 {
		t.Errorf("poll skip %+v: want c0 at offset 3", a)
	}
}

// A consumer's first read after it was told to start at an offset skips
// offsets that exist.
func TestPollSkipAtStart(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.groupConsumeAll()
	b.consumeAll("c0")
	b.assign("c1", "", b.fromStart())
	b.poll("c1", 0, 1, 6) // told to start at 0
	b.poll("c1", 1, 0, 6)
	b.assign("c1", "", map[int32]int64{0: 0})
	b.poll("c1", 0, 0, 1)
	want(t, b.finish(), map[Kind]int{PollSkip: 1})
}

// A group member given a partition starts after offsets the group never
// read (a commit ahead of what was read): a skip, even though another
// member reads them later.
func TestPollSkipInGroup(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.consumeAll("c0")
	b.assign("g0", "g", map[int32]int64{0: NoOffset, 1: NoOffset})
	b.poll("g0", 0, 0, 6)
	b.poll("g0", 1, 0, 2)
	b.revoke("g0", 1)
	b.assign("g1", "g", map[int32]int64{1: NoOffset})
	b.poll("g1", 1, 3, 6) // the group read up to offset 1: offset 2 skipped
	b.revoke("g1", 1)
	b.assign("g0", "g", map[int32]int64{1: NoOffset})
	b.poll("g0", 1, 2, 3) // re-reading below the group's reads is fine
	r := want(t, b.finish(), map[Kind]int{PollSkip: 1})
	if a := firstOf(t, r, PollSkip); a.Process != "g1" || a.Offset != 3 {
		t.Errorf("poll skip %+v: want g1 at offset 3", a)
	}
}

func TestNonMonotonic(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.groupConsumeAll()
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 3)
	b.poll("c0", 0, 1, 6) // back to offset 1 without a seek
	b.poll("c0", 1, 0, 6)
	r := want(t, b.finish(), map[Kind]int{NonMonotonic: 1})
	if a := firstOf(t, r, NonMonotonic); a.Process != "c0" || a.Offset != 1 {
		t.Errorf("nonmonotonic %+v: want c0 at offset 1", a)
	}
}

// A consumer told to start at an offset reads below it.
func TestNonMonotonicBelowStart(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.groupConsumeAll()
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 3)
	b.poll("c0", 1, 0, 6)
	b.assign("c0", "", map[int32]int64{0: 3})
	b.poll("c0", 0, 2, 6)
	want(t, b.finish(), map[Kind]int{NonMonotonic: 1})
}

// A consumer reads an indeterminate value at an offset where the others
// (the group and the final reader) read another.
func TestDivergent(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.invoke("p0", 0, "p0-6")
	b.invoke("p1", 0, "p1-6")
	b.indeterminate("p0", 0, "p0-6")
	b.indeterminate("p1", 0, "p1-6")
	b.logs[0] = append(b.logs[0], "p1-6")
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 6)
	b.pollRecords("c0", 0, Record{6, "p0-6"})
	b.poll("c0", 1, 0, 6)
	b.groupConsumeAll()
	r := want(t, b.finish(), map[Kind]int{Divergent: 2}) // g0 and final each differ from c0
	if r.Indeterminate != 2 || r.IndeterminateFound != 2 {
		t.Errorf("indeterminate %d, found %d: want 2, 2", r.Indeterminate, r.IndeterminateFound)
	}
}

// A consumer that sees two records in the other order than everyone else
// reads two divergent offsets, and each value at two positions.
func TestDivergentOrder(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.groupConsumeAll()
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 4)
	b.pollRecords("c0", 0, Record{4, b.logs[0][5]}, Record{5, b.logs[0][4]})
	b.poll("c0", 1, 0, 6)
	want(t, b.finish(), map[Kind]int{Divergent: 2, Duplicated: 2})
}

// An indeterminate write may be in the log once, never twice.
func TestIndeterminate(t *testing.T) {
	for _, copies := range []int{0, 1, 2} {
		t.Run(fmt.Sprint(copies), func(t *testing.T) {
			b := newBuilder(2, 0)
			b.produceAll()
			b.acks()
			b.invoke("p0", 1, "p0-6")
			b.indeterminate("p0", 1, "p0-6")
			b.invoke("p1", 1, "p1-6") // no outcome at all: indeterminate too
			for range copies {
				b.logs[1] = append(b.logs[1], "p0-6")
			}
			b.consumeAll("c0")
			b.groupConsumeAll()
			counts := map[Kind]int{}
			if copies > 1 {
				counts[Duplicated] = 1
			}
			r := want(t, b.finish(), counts)
			if r.Indeterminate != 2 || r.IndeterminateFound != min(copies, 1) {
				t.Errorf("indeterminate %d, found %d: want 2, %d", r.Indeterminate, r.IndeterminateFound, min(copies, 1))
			}
			if copies > 1 {
				if a := firstOf(t, r, Duplicated); a.Value != "p0-6" || a.Partition != 1 || a.Offset != 6 {
					t.Errorf("duplicated %+v: want p0-6 from partition 1 offset 6", a)
				}
			}
		})
	}
}

func TestUnknownValue(t *testing.T) {
	b := newBuilder(2, 0)
	b.produceAll()
	b.acks()
	b.logs[0] = append(b.logs[0], "stranger")
	b.consumeAll("c0")
	b.groupConsumeAll()
	want(t, b.finish(), map[Kind]int{UnknownValue: 1})
}

// Every kind of anomaly in one history: each is named.
func TestEveryKindAtOnce(t *testing.T) {
	b := newBuilder(3, 0)
	b.produceAll()
	b.write("p0", 2, "p0-a")
	b.write("p0", 2, "p0-b")
	b.logs[2][0], b.logs[2][1] = b.logs[2][1], b.logs[2][0] // reordered
	b.acks()
	b.logs[0] = b.logs[0][:5]                               // lost
	b.logs[1] = append(b.logs[1], "p0-3", "stranger")       // duplicated, unknown
	b.logs[1][2], b.logs[1][3] = b.logs[1][3], b.logs[1][2] // wrong offset (p1-2, p0-3)
	b.assign("c0", "", b.fromStart())
	b.poll("c0", 0, 0, 2)
	b.poll("c0", 0, 3, 5) // poll skip, unseen offset 2
	b.poll("c0", 1, 0, 4)
	b.poll("c0", 1, 2, 8)                                        // nonmonotonic
	b.pollRecords("c0", 2, Record{0, "p0-a"}, Record{1, "p0-b"}) // divergent x2, duplicated x2
	b.groupConsumeAll()
	b.assign("g0", "g", map[int32]int64{2: NoOffset})
	b.poll("g0", 2, 0, 2)
	r, err := Check(b.finish())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Anomalies {
		t.Logf("%s: %s", a.Kind, a)
	}
	for _, k := range Kinds {
		if r.Count(k) == 0 {
			t.Errorf("no %s anomaly found", k)
		}
	}
}

func TestMalformed(t *testing.T) {
	b := newBuilder(1, 0)
	b.write("p0", 0, "p0-0")
	b.acks()
	if _, err := Check(b.events); !errors.Is(err, ErrMalformed) {
		t.Errorf("no end event: err %v, want ErrMalformed", err)
	}
	events := append(slices.Clone(b.finish()), Event{Type: OK, Process: "p0", Value: "p0-9"})
	if _, err := Check(events); !errors.Is(err, ErrMalformed) {
		t.Errorf("an outcome never invoked: err %v, want ErrMalformed", err)
	}
	if _, err := Check(b.events[1:]); !errors.Is(err, ErrMalformed) {
		t.Errorf("no start event: err %v, want ErrMalformed", err)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	events := standard(newBuilder(2, 0))
	for i := range events {
		events[i].Time = time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC)
	}
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	for _, e := range events {
		rec.Add(e)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != len(events) {
		t.Errorf("%d lines, want one per event (%d)", n, len(events))
	}
	got, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) || !reflect.DeepEqual(rec.Events(), events) {
		t.Errorf("history changed on its way through JSON lines")
	}
}
