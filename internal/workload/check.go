package workload

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Kind names one invariant of the checker (see the package comment): the
// kind of an anomaly.
type Kind string

// The checks, in Jepsen's Kafka vocabulary.
const (
	Lost         Kind = "lost"
	WrongOffset  Kind = "wrong-offset"
	Duplicated   Kind = "duplicated"
	Reordered    Kind = "reordered"
	Divergent    Kind = "divergent"
	NonMonotonic Kind = "nonmonotonic"
	PollSkip     Kind = "poll-skip"
	Unseen       Kind = "unseen"
	UnknownValue Kind = "unknown-value"
)

// Kinds lists every kind in the order a summary shows them.
var Kinds = []Kind{Lost, WrongOffset, Duplicated, Reordered, Divergent, NonMonotonic, PollSkip, Unseen, UnknownValue}

// Anomaly is one violation of one invariant.
type Anomaly struct {
	Kind      Kind   `json:"kind"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"` // NoOffset when it is about no one offset
	Value     string `json:"value,omitempty"`
	Process   string `json:"process,omitempty"` // the producer, consumer or group concerned
	Detail    string `json:"detail"`
}

// String is "partition P offset O: detail".
func (a Anomaly) String() string {
	where := fmt.Sprintf("partition %d", a.Partition)
	if a.Offset != NoOffset {
		where += fmt.Sprintf(" offset %d", a.Offset)
	}
	return where + ": " + a.Detail
}

// Report is what Check found.
type Report struct {
	Topic      string
	Partitions int
	// Produced values by outcome; Indeterminate counts info outcomes and
	// invokes without an outcome, IndeterminateFound those some reader read.
	Invoked, Acknowledged, Indeterminate, IndeterminateFound int
	// FinalRecords is how many of the run's records the final log holds.
	FinalRecords int
	// Reads is how many of the run's records each consumer read.
	Reads map[string]int
	// Anomalies sorted by kind (in Kinds order), partition and offset.
	Anomalies []Anomaly
}

// OK reports whether nothing is wrong.
func (r *Report) OK() bool { return len(r.Anomalies) == 0 }

// Count is how many anomalies of kind k were found.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == k {
			n++
		}
	}
	return n
}

// Examples returns at most n anomalies of kind k.
func (r *Report) Examples(k Kind, n int) []Anomaly {
	var out []Anomaly
	for _, a := range r.Anomalies {
		if a.Kind == k && len(out) < n {
			out = append(out, a)
		}
	}
	return out
}

// ErrMalformed wraps every error about a history Check cannot judge.
var ErrMalformed = errors.New("malformed history")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

type position struct {
	partition int32
	offset    int64
}

func (p position) String() string {
	return fmt.Sprintf("partition %d offset %d", p.partition, p.offset)
}

// write is one produced value and its outcome.
type write struct {
	value     string
	process   string
	seq       int // its place among its producer's invokes
	partition int32
	outcome   Type // Invoke (none yet), OK or Info
	ack       position
}

// readAt is the first value read at a position, and who read it.
type readAt struct {
	value   string
	process string
}

// cursor is one consumer's place in one partition: the last offset of the
// current run of reads, and where the run should start.
type cursor struct {
	last     int64 // NoOffset: no read in this run yet
	expect   int64 // the first offset of the run, NoOffset if unknown
	explicit bool  // expect was given (not derived from the group)
}

type checker struct {
	r          *Report
	start, end map[int32]int64
	writes     map[string]*write
	producers  map[string][]*write // in invoke order
	groupOf    map[string]string   // consumer process -> group
	exists     map[int32][]int64   // sorted offsets anyone read
	first      map[position]readAt
	positions  map[string][]position // distinct positions each value was read at
	final      map[position]string
	finalAt    map[string][]position
	seen       map[string]map[string]bool // observer (plain consumer or group) -> values read
	unknown    map[string]bool
}

// Check judges a history. It returns an error wrapping ErrMalformed when
// the history is not one it can judge (no start or end event, an outcome
// without an invoke, a value produced twice).
func Check(events []Event) (*Report, error) {
	c := &checker{
		r:         &Report{Reads: map[string]int{}},
		writes:    map[string]*write{},
		producers: map[string][]*write{},
		groupOf:   map[string]string{},
		exists:    map[int32][]int64{},
		first:     map[position]readAt{},
		positions: map[string][]position{},
		final:     map[position]string{},
		finalAt:   map[string][]position{},
		seen:      map[string]map[string]bool{},
		unknown:   map[string]bool{},
	}
	if err := c.scan(events); err != nil {
		return nil, err
	}
	c.reads(events)
	c.sequences(events)
	c.acknowledged()
	c.duplicates()
	c.unseen()
	slices.SortStableFunc(c.r.Anomalies, func(a, b Anomaly) int {
		return cmp.Or(cmp.Compare(slices.Index(Kinds, a.Kind), slices.Index(Kinds, b.Kind)),
			cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset),
			cmp.Compare(a.Process, b.Process), cmp.Compare(a.Value, b.Value))
	})
	return c.r, nil
}

func (c *checker) add(a Anomaly) { c.r.Anomalies = append(c.r.Anomalies, a) }

// scan finds the start and end, the writes and their outcomes, and the
// consumers.
func (c *checker) scan(events []Event) error {
	for i, e := range events {
		switch e.Type {
		case Start:
			if c.start != nil {
				return malformed("event %d: a second start event", i+1)
			}
			c.start = e.Offsets
			if c.start == nil {
				c.start = map[int32]int64{}
			}
			c.r.Topic, c.r.Partitions = e.Topic, len(c.start)
		case End:
			if c.end != nil {
				return malformed("event %d: a second end event", i+1)
			}
			c.end = e.Offsets
			if c.end == nil {
				c.end = map[int32]int64{}
			}
		case Invoke:
			if _, ok := c.writes[e.Value]; ok {
				return malformed("event %d: value %q produced twice", i+1, e.Value)
			}
			w := &write{value: e.Value, process: e.Process, seq: len(c.producers[e.Process]),
				partition: e.Partition, outcome: Invoke}
			c.writes[e.Value] = w
			c.producers[e.Process] = append(c.producers[e.Process], w)
		case OK, Info:
			w, ok := c.writes[e.Value]
			switch {
			case !ok:
				return malformed("event %d: %s outcome of value %q, never invoked", i+1, e.Type, e.Value)
			case w.outcome != Invoke:
				return malformed("event %d: a second outcome of value %q", i+1, e.Value)
			}
			w.outcome = e.Type
			if e.Type == OK {
				w.ack = position{e.Partition, e.Offset}
			}
		case Assign:
			if e.Group != "" {
				c.groupOf[e.Process] = e.Group
			}
			c.observe(e.Process)
		}
	}
	if c.start == nil {
		return malformed("no start event")
	}
	if c.end == nil {
		return malformed("no end event: the run did not finish")
	}
	c.r.Invoked = len(c.writes)
	for _, w := range c.writes {
		if w.outcome == OK {
			c.r.Acknowledged++
		} else {
			c.r.Indeterminate++
		}
	}
	return nil
}

// observer is who must see every acknowledged value: a plain consumer, or
// a group as a whole. The final reader is none: it is the reference.
func (c *checker) observer(process string) string {
	if g, ok := c.groupOf[process]; ok {
		return "group " + g
	}
	return process
}

func (c *checker) observe(process string) {
	if process == FinalReader {
		return
	}
	if o := c.observer(process); c.seen[o] == nil {
		c.seen[o] = map[string]bool{}
	}
}

// inRun reports whether offset o of partition p is the run's (at or above
// the start offset).
func (c *checker) inRun(p int32, o int64) bool { return o >= c.start[p] }

// reads collects what every reader read: which offsets exist, the values
// at each position (divergent reads), the positions of each value, the
// final log and who saw what.
func (c *checker) reads(events []Event) {
	offsets := map[int32]map[int64]bool{}
	for _, e := range events {
		if e.Type != Poll {
			continue
		}
		c.observe(e.Process)
		for _, rec := range e.Records {
			p, o, v := e.Partition, rec.Offset, rec.Value
			if !c.inRun(p, o) {
				continue
			}
			pos := position{p, o}
			c.r.Reads[e.Process]++
			if offsets[p] == nil {
				offsets[p] = map[int64]bool{}
			}
			offsets[p][o] = true
			if !slices.Contains(c.positions[v], pos) {
				c.positions[v] = append(c.positions[v], pos)
			}
			if f, ok := c.first[pos]; !ok {
				c.first[pos] = readAt{v, e.Process}
			} else if f.value != v {
				c.add(Anomaly{Kind: Divergent, Partition: p, Offset: o, Value: v, Process: e.Process,
					Detail: fmt.Sprintf("%s read %q, %s read %q", e.Process, v, f.process, f.value)})
			}
			if e.Process == FinalReader {
				if _, ok := c.final[pos]; !ok {
					c.final[pos] = v
					c.finalAt[v] = append(c.finalAt[v], pos)
				}
			} else {
				c.seen[c.observer(e.Process)][v] = true
			}
			if _, ok := c.writes[v]; !ok && !c.unknown[v] {
				c.unknown[v] = true
				c.add(Anomaly{Kind: UnknownValue, Partition: p, Offset: o, Value: v, Process: e.Process,
					Detail: fmt.Sprintf("%s read %q, which no producer of this run wrote", e.Process, v)})
			}
		}
	}
	for p, set := range offsets {
		c.exists[p] = slices.Sorted(maps.Keys(set))
	}
	c.r.FinalRecords = len(c.final)
}

// existing returns how many offsets anyone read lie in [lo, hi) of
// partition p, and the first of them.
func (c *checker) existing(p int32, lo, hi int64) (n int, first int64) {
	offs := c.exists[p]
	i := sort.Search(len(offs), func(i int) bool { return offs[i] >= lo })
	j := sort.Search(len(offs), func(i int) bool { return offs[i] >= hi })
	if i >= j {
		return 0, NoOffset
	}
	return j - i, offs[i]
}

// sequences checks each consumer's runs of reads: nonmonotonic reads and
// poll skips.
func (c *checker) sequences(events []Event) {
	cursors := map[string]map[int32]*cursor{}
	cursorOf := func(process string, p int32) *cursor {
		if cursors[process] == nil {
			cursors[process] = map[int32]*cursor{}
		}
		cur := cursors[process][p]
		if cur == nil {
			cur = &cursor{last: NoOffset, expect: NoOffset}
			cursors[process][p] = cur
		}
		return cur
	}
	// frontier: the highest offset each group has read of each partition.
	frontier := map[string]map[int32]int64{}
	groupFrontier := func(g string, p int32) int64 {
		if f, ok := frontier[g][p]; ok {
			return f
		}
		return c.start[p] - 1
	}
	for _, e := range events {
		switch e.Type {
		case Assign:
			for p, from := range e.Offsets {
				cur := cursorOf(e.Process, p)
				cur.last, cur.expect, cur.explicit = NoOffset, NoOffset, false
				switch {
				case from >= 0:
					cur.expect, cur.explicit = max(from, c.start[p]), true
				case e.Group != "":
					cur.expect = groupFrontier(e.Group, p) + 1
				}
			}
		case Revoke:
			for p := range e.Offsets {
				cur := cursorOf(e.Process, p)
				cur.last, cur.expect, cur.explicit = NoOffset, NoOffset, false
			}
		case Poll:
			p := e.Partition
			cur := cursorOf(e.Process, p)
			g, inGroup := c.groupOf[e.Process]
			for _, rec := range e.Records {
				o := rec.Offset
				if !c.inRun(p, o) {
					continue
				}
				c.step(e.Process, p, cur, o, rec.Value)
				cur.last = o
				if inGroup {
					if frontier[g] == nil {
						frontier[g] = map[int32]int64{}
					}
					frontier[g][p] = max(groupFrontier(g, p), o)
				}
			}
		}
	}
}

// step checks one read of offset o against the consumer's run so far.
func (c *checker) step(process string, p int32, cur *cursor, o int64, v string) {
	switch {
	case cur.last != NoOffset && o <= cur.last:
		c.add(Anomaly{Kind: NonMonotonic, Partition: p, Offset: o, Value: v, Process: process,
			Detail: fmt.Sprintf("%s read offset %d after offset %d without a rebalance or seek", process, o, cur.last)})
	case cur.last != NoOffset:
		if n, first := c.existing(p, cur.last+1, o); n > 0 {
			c.add(Anomaly{Kind: PollSkip, Partition: p, Offset: o, Value: v, Process: process,
				Detail: fmt.Sprintf("%s read offset %d right after offset %d, skipping %d offset(s) that exist (from %d)",
					process, o, cur.last, n, first)})
		}
	case cur.expect == NoOffset:
	case o < cur.expect && cur.explicit:
		c.add(Anomaly{Kind: NonMonotonic, Partition: p, Offset: o, Value: v, Process: process,
			Detail: fmt.Sprintf("%s read offset %d, below offset %d it was told to start at", process, o, cur.expect)})
	default:
		from := "the offset it was told to start at"
		if !cur.explicit {
			from = "the offset after everything its group had read"
		}
		if n, first := c.existing(p, cur.expect, o); n > 0 {
			c.add(Anomaly{Kind: PollSkip, Partition: p, Offset: o, Value: v, Process: process,
				Detail: fmt.Sprintf("%s started reading at offset %d, skipping %d offset(s) that exist from %d, %s",
					process, o, n, first, from)})
		}
	}
}

// acknowledged checks every write against the final log: lost, at the
// wrong offset, and each producer's order.
func (c *checker) acknowledged() {
	for _, w := range c.writes {
		if w.outcome != OK {
			if len(c.positions[w.value]) > 0 {
				c.r.IndeterminateFound++
			}
			continue
		}
		if w.ack.partition != w.partition {
			c.add(Anomaly{Kind: WrongOffset, Partition: w.ack.partition, Offset: w.ack.offset, Value: w.value, Process: w.process,
				Detail: fmt.Sprintf("%q produced to partition %d, acknowledged here", w.value, w.partition)})
		}
		found := c.finalAt[w.value]
		switch {
		case len(found) == 0:
			detail := fmt.Sprintf("%q acknowledged here, absent from the final log", w.value)
			if v, ok := c.final[w.ack]; ok {
				detail += fmt.Sprintf(", which holds %q here", v)
			} else if hw, ok := c.end[w.ack.partition]; ok && w.ack.offset >= hw {
				detail += fmt.Sprintf(" (the partition's high watermark at the end was %d)", hw)
			}
			c.add(Anomaly{Kind: Lost, Partition: w.ack.partition, Offset: w.ack.offset, Value: w.value, Process: w.process, Detail: detail})
		case !slices.Contains(found, w.ack): // found at the ack and elsewhere too: duplicated
			c.add(Anomaly{Kind: WrongOffset, Partition: w.ack.partition, Offset: w.ack.offset, Value: w.value, Process: w.process,
				Detail: fmt.Sprintf("%q acknowledged here, found in the final log at %s", w.value, joinPositions(found))})
		}
	}
	for _, process := range slices.Sorted(maps.Keys(c.producers)) {
		lastAck := map[int32]*write{}   // per partition, the previous acknowledged write
		lastFinal := map[int32]*write{} // per partition, the previous acknowledged write in the final log
		for _, w := range c.producers[process] {
			if w.outcome != OK {
				continue
			}
			p := w.ack.partition
			if prev := lastAck[p]; prev != nil && w.ack.offset <= prev.ack.offset {
				c.add(Anomaly{Kind: Reordered, Partition: p, Offset: w.ack.offset, Value: w.value, Process: process,
					Detail: fmt.Sprintf("%s's %q acknowledged at offset %d, not after its earlier %q at offset %d",
						process, w.value, w.ack.offset, prev.value, prev.ack.offset)})
			}
			lastAck[p] = w
			found := c.finalAt[w.value]
			if len(found) == 0 {
				continue
			}
			if prev := lastFinal[found[0].partition]; prev != nil {
				if before := c.finalAt[prev.value][0]; found[0].offset <= before.offset {
					c.add(Anomaly{Kind: Reordered, Partition: found[0].partition, Offset: found[0].offset, Value: w.value, Process: process,
						Detail: fmt.Sprintf("%s's %q is at offset %d of the final log, not after its earlier %q at offset %d",
							process, w.value, found[0].offset, prev.value, before.offset)})
				}
			}
			lastFinal[found[0].partition] = w
		}
	}
}

// duplicates: a value read at two positions, whatever its outcome.
func (c *checker) duplicates() {
	for v, at := range c.positions {
		if len(at) < 2 {
			continue
		}
		sorted := slices.SortedFunc(slices.Values(at), func(a, b position) int {
			return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
		})
		what := "value"
		process := ""
		if w, ok := c.writes[v]; ok {
			process = w.process
			switch w.outcome {
			case OK:
				what = "acknowledged value"
			default:
				what = "indeterminate value"
			}
		}
		c.add(Anomaly{Kind: Duplicated, Partition: sorted[0].partition, Offset: sorted[0].offset, Value: v, Process: process,
			Detail: fmt.Sprintf("%s %q read at %d positions: %s", what, v, len(sorted), joinPositions(sorted))})
	}
}

// unseen: an acknowledged value of the final log some observer never read.
func (c *checker) unseen() {
	for _, o := range slices.Sorted(maps.Keys(c.seen)) {
		for pos, v := range c.final {
			if w, ok := c.writes[v]; !ok || w.outcome != OK || c.seen[o][v] {
				continue
			}
			c.add(Anomaly{Kind: Unseen, Partition: pos.partition, Offset: pos.offset, Value: v, Process: o,
				Detail: fmt.Sprintf("acknowledged %q never read by %s", v, o)})
		}
	}
}

func joinPositions(ps []position) string {
	parts := make([]string, 0, min(len(ps), 4))
	for i, p := range ps {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-3))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}
