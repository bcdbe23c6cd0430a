package cli

// Progress of partition reassignments: how much of each moving partition
// its adding replicas already hold (`skein reassign list`'s LEFT column and
// the --wait progress bar).
//
// With DescribeLogDirs (API 35) on every broker, progress counts bytes: a
// partition has its leader's log size to copy to each adding replica, and
// an adding replica has copied its own log size. Without it, progress
// counts records: end offset - log start offset on the leader (ListOffsets)
// to copy per adding replica, and an adding replica has copied up to its
// high watermark (read with a debug-consumer Fetch sent to it, as `skein
// replicas verify` does).

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/reassign"
)

// moveProgress is how far one moving partition is.
type moveProgress struct {
	TP     reassign.TopicPartition
	Adding []int32
	Copied int64 // bytes or records already on the adding replicas
	ToCopy int64 // bytes or records the adding replicas need in all
	Done   bool
	Err    error // the measure failed (the partition still counts as moving)
}

// Left is what the adding replicas still have to copy.
func (m moveProgress) Left() int64 { return max(m.ToCopy-m.Copied, 0) }

// progressFromSizes: each adding replica needs the leader's size; it holds
// its own size (capped: it may be ahead while the leader's log is cleaned).
func progressFromSizes(leaderSize int64, addingSizes []int64) (copied, toCopy int64) {
	for _, s := range addingSizes {
		copied += min(max(s, 0), max(leaderSize, 0))
	}
	return copied, int64(len(addingSizes)) * max(leaderSize, 0)
}

// progressFromOffsets: each adding replica needs the leader's records from
// its log start to its end offset; it holds those up to its high watermark
// (-1: none yet).
func progressFromOffsets(start, end int64, addingHWs []int64) (copied, toCopy int64) {
	n := max(end-start, 0)
	for _, hw := range addingHWs {
		copied += min(max(hw-start, 0), n)
	}
	return copied, int64(len(addingHWs)) * n
}

// meter measures reassignment progress.
type meter struct {
	cl    *kgo.Client
	adm   *kadm.Client
	bytes bool // DescribeLogDirs is there: count bytes, else records
	ids   map[string]kadm.TopicID
}

// newMeter chooses bytes or records from the brokers' API versions.
func newMeter(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topics kadm.TopicDetails) *meter {
	m := &meter{cl: cl, adm: adm, ids: map[string]kadm.TopicID{}}
	for name, d := range topics {
		m.ids[name] = d.ID
	}
	if vs, err := adm.ApiVersions(ctx); err == nil && len(vs) > 0 {
		m.bytes = true
		for _, v := range vs {
			if _, ok := v.KeyMaxVersion(int16(kmsg.DescribeLogDirs)); v.Err != nil || !ok {
				m.bytes = false
			}
		}
	}
	return m
}

// unit names what the meter counts.
func (m *meter) unit() string {
	if m.bytes {
		return "bytes"
	}
	return "records"
}

// format prints an amount of the meter's unit.
func (m *meter) format(n int64) string {
	if m.bytes {
		return humanize.IBytes(uint64(max(n, 0)))
	}
	return fmt.Sprintf("%d records", n)
}

// note says how progress is counted, once, for the user.
func (m *meter) note() string {
	if m.bytes {
		return ""
	}
	return "progress counts records, not bytes: this cluster does not support DescribeLogDirs (API 35) yet, " +
		"so the records left are the leader's end offset minus each adding replica's high watermark"
}

// measure fills Copied and ToCopy of moves (Adding set).
func (m *meter) measure(ctx context.Context, moves []moveProgress) {
	if len(moves) == 0 {
		return
	}
	set := kadm.TopicsSet{}
	for _, mv := range moves {
		set.Add(mv.TP.Topic, mv.TP.Partition)
	}
	if m.bytes {
		m.measureBytes(ctx, set, moves)
		return
	}
	m.measureRecords(ctx, set, moves)
}

func (m *meter) measureBytes(ctx context.Context, set kadm.TopicsSet, moves []moveProgress) {
	dirs, err := m.adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		for i := range moves {
			moves[i].Err = err
		}
		return
	}
	size := func(broker int32, tp reassign.TopicPartition) int64 {
		d, ok := dirs[broker]
		if !ok {
			return 0
		}
		p, ok := d.LookupPartition(tp.Topic, tp.Partition)
		if !ok {
			return 0
		}
		return p.Size
	}
	leaders := m.leaders(ctx, set)
	for i := range moves {
		mv := &moves[i]
		var sizes []int64
		for _, id := range mv.Adding {
			sizes = append(sizes, size(id, mv.TP))
		}
		mv.Copied, mv.ToCopy = progressFromSizes(size(leaders[mv.TP], mv.TP), sizes)
	}
}

func (m *meter) measureRecords(ctx context.Context, set kadm.TopicsSet, moves []moveProgress) {
	topics := set.Topics()
	starts, err := m.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		var ends kadm.ListedOffsets
		if ends, err = m.adm.ListEndOffsets(ctx, topics...); err == nil {
			for i := range moves {
				mv := &moves[i]
				s, okS := starts.Lookup(mv.TP.Topic, mv.TP.Partition)
				e, okE := ends.Lookup(mv.TP.Topic, mv.TP.Partition)
				if !okS || !okE || s.Err != nil || e.Err != nil {
					mv.Err = fmt.Errorf("no offsets for %s", mv.TP)
					continue
				}
				hws := make([]int64, len(mv.Adding))
				for j, id := range mv.Adding {
					hws[j] = m.replicaHW(ctx, mv.TP, id)
				}
				mv.Copied, mv.ToCopy = progressFromOffsets(s.Offset, e.Offset, hws)
			}
			return
		}
	}
	for i := range moves {
		moves[i].Err = err
	}
}

// replicaHW asks replica for its high watermark of tp (-1 when it has
// none yet).
func (m *meter) replicaHW(ctx context.Context, tp reassign.TopicPartition, replica int32) int64 {
	v := partitionVerifier{cl: m.cl, topic: tp.Topic, topicID: m.ids[tp.Topic], partition: tp.Partition}
	fp, _ := v.fetch(ctx, replica, 0, 1)
	if fp == nil {
		return -1
	}
	return fp.HighWatermark
}

// leaders maps the partitions of set to their leaders.
func (m *meter) leaders(ctx context.Context, set kadm.TopicsSet) map[reassign.TopicPartition]int32 {
	out := map[reassign.TopicPartition]int32{}
	topics, err := m.adm.ListTopicsWithInternal(ctx, set.Topics()...)
	if err != nil {
		return out
	}
	for _, d := range topics {
		for _, p := range d.Partitions {
			out[reassign.TopicPartition{Topic: d.Topic, Partition: p.Partition}] = p.Leader
		}
	}
	return out
}

// progressTotals sums moves.
func progressTotals(moves []moveProgress) (copied, toCopy int64, done int) {
	for _, mv := range moves {
		copied += mv.Copied
		toCopy += mv.ToCopy
		if mv.Done {
			done++
		}
	}
	return copied, toCopy, done
}

// eta estimates the time left from the progress made since the first
// sample: "-" until something was copied.
func eta(copied0, copied, toCopy int64, elapsed time.Duration) string {
	gained := copied - copied0
	if gained <= 0 || elapsed <= 0 {
		return "-"
	}
	left := max(toCopy-copied, 0)
	return (time.Duration(float64(left) / float64(gained) * float64(elapsed))).Round(time.Second).String()
}

// percent is copied of toCopy, 100 when there is nothing to copy.
func percent(copied, toCopy int64) float64 {
	if toCopy <= 0 {
		return 100
	}
	return 100 * float64(min(copied, toCopy)) / float64(toCopy)
}

// progressLines is the text shown at each poll without a terminal: one line
// per partition still moving, then the total.
func progressLines(m *meter, moves []moveProgress, copied0 int64, elapsed time.Duration) string {
	var b strings.Builder
	for _, mv := range moves {
		if mv.Done {
			continue
		}
		if mv.Err != nil {
			fmt.Fprintf(&b, "  %s: adding %s, progress unknown (%v)\n", mv.TP, formatNodes(mv.Adding), mv.Err)
			continue
		}
		fmt.Fprintf(&b, "  %s: adding %s, %s of %s copied (%.0f%%)\n", mv.TP, formatNodes(mv.Adding),
			m.format(mv.Copied), m.format(mv.ToCopy), percent(mv.Copied, mv.ToCopy))
	}
	copied, toCopy, done := progressTotals(moves)
	fmt.Fprintf(&b, "total: %s of %s copied (%.0f%%), %d/%d partitions done, ETA %s\n",
		m.format(copied), m.format(toCopy), percent(copied, toCopy), done, len(moves), eta(copied0, copied, toCopy, elapsed))
	return b.String()
}

// barDescription is the text before the bar: partitions done and the
// partition furthest behind.
func barDescription(m *meter, moves []moveProgress, done int) string {
	text := fmt.Sprintf("%d/%d partitions done", done, len(moves))
	var slowest *moveProgress
	for i := range moves {
		mv := &moves[i]
		if mv.Done || mv.Err != nil {
			continue
		}
		if slowest == nil || percent(mv.Copied, mv.ToCopy) < percent(slowest.Copied, slowest.ToCopy) {
			slowest = mv
		}
	}
	if slowest != nil {
		text += fmt.Sprintf(", slowest %s %.0f%% (%s left)", slowest.TP, percent(slowest.Copied, slowest.ToCopy), m.format(slowest.Left()))
	}
	return text + ", " + m.unit()
}

// waiter polls ListPartitionReassignments until none of its partitions is
// moving, showing progress on w.
type waiter struct {
	adm      *kadm.Client
	meter    *meter
	w        io.Writer
	bar      bool
	interval time.Duration
}

// wait returns once no partition of target is being reassigned. current is
// the assignment before the reassignment (for the adding replicas when the
// list does not give them).
func (wt *waiter) wait(ctx context.Context, current, target reassign.Assignment) error {
	set := kadm.TopicsSet{}
	var moves []moveProgress
	for _, tp := range target.Sorted() {
		set.Add(tp.Topic, tp.Partition)
		moves = append(moves, moveProgress{TP: tp, Adding: reassign.Diff(target[tp], current[tp])})
	}
	if note := wt.meter.note(); note != "" {
		fmt.Fprintln(wt.w, "Note: "+note+".")
	}
	var pb *progressbar.ProgressBar
	start := time.Now()
	copied0 := int64(-1)
	for {
		ongoing, err := wt.adm.ListPartitionReassignments(ctx, set)
		if err != nil {
			return reassignError("ListPartitionReassignments", err)
		}
		var measuring []moveProgress
		for i := range moves {
			mv := &moves[i]
			r, moving := lookupReassignment(ongoing, mv.TP)
			if !moving {
				if !mv.Done {
					mv.Done = true
					mv.Copied = mv.ToCopy
					if pb != nil {
						_ = pb.Clear()
					}
					fmt.Fprintf(wt.w, "%s: done, replicas %s\n", mv.TP, formatNodes(target[mv.TP]))
				}
				continue
			}
			if len(r.AddingReplicas) > 0 {
				mv.Adding = slices.Clone(r.AddingReplicas)
			}
			measuring = append(measuring, *mv)
		}
		wt.meter.measure(ctx, measuring)
		for _, ms := range measuring {
			for i := range moves {
				if moves[i].TP == ms.TP {
					moves[i].Copied, moves[i].ToCopy, moves[i].Err = ms.Copied, max(ms.ToCopy, moves[i].ToCopy), ms.Err
				}
			}
		}
		copied, toCopy, done := progressTotals(moves)
		if copied0 < 0 {
			copied0 = copied
		}
		if wt.bar {
			if pb == nil {
				pb = progressbar.NewOptions64(max(toCopy, 1),
					progressbar.OptionSetWriter(wt.w),
					progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionShowBytes(wt.meter.bytes),
				)
			}
			pb.ChangeMax64(max(toCopy, 1))
			pb.Describe(barDescription(wt.meter, moves, done))
			_ = pb.Set64(copied)
		} else if done < len(moves) {
			fmt.Fprint(wt.w, progressLines(wt.meter, moves, copied0, time.Since(start)))
		}
		if done == len(moves) {
			if pb != nil {
				_ = pb.Finish()
				fmt.Fprintln(wt.w)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if pb != nil {
				_ = pb.Exit()
				fmt.Fprintln(wt.w)
			}
			return fmt.Errorf("stopped waiting with %d of %d partitions still moving (they keep moving; "+
				"follow them with `skein reassign list`): %w", len(moves)-done, len(moves), ctx.Err())
		case <-time.After(wt.interval):
		}
	}
}

func lookupReassignment(rs kadm.ListPartitionReassignmentsResponses, tp reassign.TopicPartition) (kadm.ListPartitionReassignmentsResponse, bool) {
	ps, ok := rs[tp.Topic]
	if !ok {
		return kadm.ListPartitionReassignmentsResponse{}, false
	}
	r, ok := ps[tp.Partition]
	return r, ok
}
