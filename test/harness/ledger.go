package harness

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Value returns the record value "<stream>-<seq>" (seq zero-padded) that
// Verify parses to check per-partition order. A stream is one producer's
// numbering; its seqs must be produced in increasing order.
func Value(stream string, seq int64) string {
	return fmt.Sprintf("%s-%09d", stream, seq)
}

// FillerMark starts the values of filler records: load written without
// idempotence or acknowledgement (acks=0) to push a leader's log end far
// ahead of its high watermark. Such a record may be lost or stored twice;
// Verify counts filler records but checks neither their uniqueness nor
// their order.
const FillerMark = "~"

// Filler returns a filler value of about size bytes.
func Filler(stream string, seq int64, size int) string {
	v := fmt.Sprintf("%s%s-%09d-", FillerMark, stream, seq)
	return v + strings.Repeat("f", max(size-len(v), 0))
}

// ParseValue splits a Value into its stream and seq.
func ParseValue(v string) (stream string, seq int64, ok bool) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return v[:i], seq, true
}

// Ack is a record the cluster acknowledged: where it says the record is.
type Ack struct {
	Partition int32
	Offset    int64
	Value     string
}

// Ledger records the outcome of every produced record. Pass Promise to
// kgo's Produce. Safe for concurrent use.
type Ledger struct {
	mu struct {
		sync.Mutex
		acks     []Ack
		failed   int
		firstErr error
	}
}

// Promise is a kgo produce promise: a record with a nil error was
// acknowledged at r.Partition/r.Offset.
func (l *Ledger) Promise(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.mu.failed++
		if l.mu.firstErr == nil {
			l.mu.firstErr = err
		}
		return
	}
	l.mu.acks = append(l.mu.acks, Ack{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
}

// Acked returns how many records were acknowledged so far.
func (l *Ledger) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.acks)
}

// Failed returns how many records failed and the first error.
func (l *Ledger) Failed() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.failed, l.mu.firstErr
}

// Acks returns a copy of the acknowledgements so far.
func (l *Ledger) Acks() []Ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Ack(nil), l.mu.acks...)
}

// Stored is one record read back from a partition.
type Stored struct {
	Offset int64
	Value  string
}

// ReadAll reads every partition of topic from its start offset up to the
// end offset it has when ReadAll begins (a partition whose log start is
// its end, all of it deleted by retention, yields none), with a new
// franz-go client, and
// returns the records per partition in the order they were delivered. It
// fails the test if that does not finish within timeout.
func (c *Cluster) ReadAll(t testing.TB, topic string, timeout time.Duration) map[int32][]Stored {
	t.Helper()
	return readAll(t, c.Client, topic, timeout)
}

// readAll is ReadAll with clients from newClient (a Cluster's or a
// Compose's Client).
func readAll(t testing.TB, newClient func(testing.TB, ...kgo.Opt) *kgo.Client, topic string, timeout time.Duration) map[int32][]Stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	adm := kadm.NewClient(newClient(t))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	begins, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = begins.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	end := make(map[int32]int64)
	starts := make(map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		if b, ok := begins.Lookup(topic, o.Partition); !ok || b.Offset < o.Offset {
			starts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	out := make(map[int32][]Stored, len(end))
	for p := range end {
		out[p] = nil
	}
	if len(starts) == 0 {
		return out
	}
	cl := newClient(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	remaining := len(starts)
	last := make(map[int32]int64)
	var fetchErrs []string
	for remaining > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var progress []string
			for p, e := range end {
				progress = append(progress, fmt.Sprintf("p%d %d/%d", p, len(out[p]), e))
			}
			sort.Strings(progress)
			t.Fatalf("read %s: not done after %v: %s; fetch errors: %v", topic, timeout, strings.Join(progress, " "), fetchErrs)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if len(fetchErrs) < 10 {
				fetchErrs = append(fetchErrs, fmt.Sprintf("%s/%d: %v", topic, p, err))
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return // produced after ReadAll began
			}
			before, seen := last[r.Partition]
			if seen && r.Offset <= before {
				t.Errorf("read %s/%d: offset %d delivered after %d", topic, r.Partition, r.Offset, before)
			}
			last[r.Partition] = r.Offset
			out[r.Partition] = append(out[r.Partition], Stored{Offset: r.Offset, Value: string(r.Value)})
			if r.Offset == end[r.Partition]-1 {
				remaining--
			}
		})
	}
	return out
}

// Report is what Verify checked and what it found wrong.
type Report struct {
	Partitions int
	Records    int // records read back
	Acked      int // acknowledgements checked
	Unacked    int // records read back that no acknowledgement covers
	Deleted    int // acknowledged records below the log start (VerifyRetained)
	Filler     int // filler records read back (see FillerMark)
	Problems   []string
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// String summarizes the report.
func (r Report) String() string {
	return fmt.Sprintf("%d partitions, %d records read (%d filler), %d acknowledgements checked (%d below the log start), %d records read without an acknowledgement, %d problems",
		r.Partitions, r.Records, r.Filler, r.Acked, r.Deleted, r.Unacked, len(r.Problems))
}

// Check logs the summary and fails the test with (at most 20 of) the
// problems.
func (r Report) Check(t testing.TB) {
	t.Helper()
	t.Logf("verify: %s", r)
	for i, p := range r.Problems {
		if i == 20 {
			t.Errorf("... and %d more problems", len(r.Problems)-20)
			break
		}
		t.Errorf("verify: %s", p)
	}
}

// Verify checks a topic's records (as read by ReadAll) against the
// acknowledgements of its producers:
//   - every partition's offsets are contiguous from 0 (no gaps, no
//     repeats: nothing here deletes or compacts);
//   - every acknowledged record is stored at exactly its acknowledged
//     partition and offset;
//   - no value is stored twice anywhere (no duplicates, even of records
//     whose acknowledgement was lost);
//   - within a partition the seqs of each stream (see Value) increase:
//     the producer's order is kept.
func Verify(stored map[int32][]Stored, acks []Ack) Report {
	return VerifyRetained(stored, acks, nil)
}

// VerifyRetained is Verify for a topic with retention: stored[p] must be
// contiguous from logStart[p] (0 when absent) instead of from 0, and an
// acknowledged record below logStart[p] is counted in Report.Deleted
// instead of being reported missing. The caller decides what logStart is
// (the offset below which no replica holds the partition any more) and
// must show by other means that those records were committed before
// retention deleted them; an acknowledged record at or above logStart
// that is not stored is a loss.
func VerifyRetained(stored map[int32][]Stored, acks []Ack, logStart map[int32]int64) Report {
	r := Report{Partitions: len(stored), Acked: len(acks)}
	where := make(map[string]string) // value -> "p/offset"
	for p, recs := range stored {
		r.Records += len(recs)
		start := logStart[p]
		lastSeq := make(map[string]int64)
		for i, rec := range recs {
			if rec.Offset != start+int64(i) {
				r.problem("partition %d: record #%d has offset %d, want %d (offsets not contiguous from %d)", p, i, rec.Offset, start+int64(i), start)
			}
			if strings.HasPrefix(rec.Value, FillerMark) {
				r.Filler++
				continue
			}
			at := fmt.Sprintf("%d/%d", p, rec.Offset)
			if prev, dup := where[rec.Value]; dup {
				r.problem("value %q stored twice: at %s and at %s", rec.Value, prev, at)
			} else {
				where[rec.Value] = at
			}
			stream, seq, ok := ParseValue(rec.Value)
			if !ok {
				r.problem("partition %d offset %d: value %q is not stream-seq", p, rec.Offset, rec.Value)
				continue
			}
			if before, seen := lastSeq[stream]; seen && seq <= before {
				r.problem("partition %d offset %d: %s seq %d after seq %d (order lost)", p, rec.Offset, stream, seq, before)
			}
			lastSeq[stream] = seq
		}
	}
	covered := make(map[string]bool, len(acks))
	for _, a := range acks {
		covered[a.Value] = true
		recs := stored[a.Partition]
		start := logStart[a.Partition]
		if a.Offset >= 0 && a.Offset < start {
			r.Deleted++
			continue
		}
		i := a.Offset - start
		if a.Offset < 0 || i >= int64(len(recs)) {
			r.problem("acknowledged %q at %d/%d is missing (partition holds offsets %d to %d)", a.Value, a.Partition, a.Offset, start, start+int64(len(recs)))
			continue
		}
		if got := recs[i]; got.Offset != a.Offset || got.Value != a.Value {
			r.problem("acknowledged %q at %d/%d, but that offset holds %q (offset %d)", a.Value, a.Partition, a.Offset, got.Value, got.Offset)
		}
	}
	for v := range where {
		if !covered[v] {
			r.Unacked++
		}
	}
	return r
}

// WaitAcked waits until at least want records are acknowledged, failing t
// (with the failures seen so far) after timeout.
func (l *Ledger) WaitAcked(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() (bool, string) {
		if got := l.Acked(); got < want {
			failed, err := l.Failed()
			return false, fmt.Sprintf("acknowledged %d of %d, failed %d (first error: %v)", got, want, failed, err)
		}
		return true, ""
	})
}
