package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// chaosCheck runs the end-of-run checks, once the producers are done:
//
//  1. Retention is switched off (retention.ms and retention.bytes -1 on
//     both topics, applied on every broker) so nothing moves while the
//     rest looks.
//  2. Replicas (chaosReplicas): each broker's .log files of each partition
//     are parsed batch by batch. Retention ran at different moments on
//     each replica, so their log starts may differ; over the offsets all
//     of them still hold (from the highest log start to the common end)
//     their batches must be byte-identical, every replica must end at the
//     same offset, and no replica may have a hole in its offsets. Where
//     only some replicas still hold an offset, they must agree on it.
//  3. Acknowledged records (harness.VerifyRetained on the union of what the
//     replicas hold): every acknowledged record at or above the lowest log
//     start (the offset below which no replica holds anything) is stored
//     at exactly its acknowledged offset; one below it was deleted by
//     retention. That it was committed before it was deleted is checked
//     while the test runs: retention may delete only below the high
//     watermark, so chaosWatch asks every broker for its log start and
//     then its high watermark several times a second and reports a log
//     start above a high watermark (what deleting uncommitted records
//     looks like from outside); and consumers (below) must have read the
//     record, or have skipped it only below a log start a broker reported.
//     Offsets are contiguous, no value is stored twice, each producer's
//     order is kept.
//  4. The Kafka read path (ReadAll through the leaders) returns the same
//     records as the files, from the leader's log start to the end.
//  5. Consumers (chaosReader.check): each partition's records arrive in
//     offset order without repeats; a jump forward is allowed only to an
//     offset at or below the log start the broker reported in the fetch
//     that delivered it (or an earlier one: a consumer reset to the log
//     start after OFFSET_OUT_OF_RANGE); every record delivered matches the
//     final log, or, if retention deleted it, its acknowledgement; no
//     value is delivered at two offsets (so a duplicate that retention
//     deleted before the end is still caught); every consumer reaches the
//     end of the log.
//
// It returns the summary lines: acknowledged, retained and deleted
// records per topic and the problems found.
func chaosCheck(t *testing.T, c *harness.Cluster, ledgers map[string]*harness.Ledger, readers []*chaosReader, watch *chaosWatch) string {
	t.Helper()
	chaosRetentionOff(t, c)
	watch.stop()
	var summary []string
	problems := 0
	fail := func(format string, args ...any) {
		problems++
		t.Errorf(format, args...)
	}
	for _, p := range watch.problems() {
		fail("watch: %s", p)
	}
	summary = append(summary, fmt.Sprintf("watch: %d rounds of log start and high watermark samples; log start above the high watermark on %d broker-partitions", watch.rounds(), len(watch.problems())))

	// held[tp]: offset -> value in the union of the replicas.
	final := make(map[chaosTP]map[int64]string)
	for _, topic := range chaosTopics {
		acks := ledgers[topic].Acks()
		union := make(map[int32][]harness.Stored)
		lowest := make(map[int32]int64)
		for p := range int32(chaosPartitions) {
			tp := chaosTP{topic, p}
			recs, low, msgs := chaosReplicas(t, c, tp)
			for _, m := range msgs {
				fail("%s", m)
			}
			union[p], lowest[p] = recs, low
			final[tp] = make(map[int64]string, len(recs))
			for _, r := range recs {
				final[tp][r.Offset] = r.Value
			}
		}
		report := harness.VerifyRetained(union, acks, lowest)
		t.Logf("%s: verify: %s", topic, report)
		for i, p := range report.Problems {
			if i == 20 {
				fail("%s: ... and %d more problems", topic, len(report.Problems)-20)
				break
			}
			fail("%s: verify: %s", topic, p)
		}

		// The Kafka read path agrees with the files.
		stored := c.ReadAll(t, topic, 2*time.Minute)
		for p, recs := range stored {
			tp := chaosTP{topic, p}
			if u := union[p]; len(recs) > 0 && len(u) > 0 && recs[len(recs)-1].Offset != u[len(u)-1].Offset {
				fail("%s: read through the leader ends at %d, the replicas at %d", tp, recs[len(recs)-1].Offset+1, u[len(u)-1].Offset+1)
			}
			for i, r := range recs {
				if i > 0 && r.Offset != recs[i-1].Offset+1 {
					fail("%s: read through the leader jumps from %d to %d", tp, recs[i-1].Offset, r.Offset)
					break
				}
				if v, ok := final[tp][r.Offset]; !ok || v != r.Value {
					fail("%s: read %q at %d through the leader; the replicas' files hold %q", tp, r.Value, r.Offset, v)
					break
				}
			}
		}

		deletedSeen := 0
		for _, a := range acks {
			if a.Offset < lowest[a.Partition] && chaosSeen(readers, chaosTP{topic, a.Partition}, a.Offset) {
				deletedSeen++
			}
		}
		summary = append(summary, fmt.Sprintf("%s: %d acknowledged, %d retained, %d deleted by retention (%d of those read by a consumer first), %d stored without an acknowledgement",
			topic, len(acks), len(acks)-report.Deleted, report.Deleted, deletedSeen, report.Unacked))
	}

	// Where every acknowledged value is, for the consumers' checks.
	ackedAt := make(map[string]string) // value -> "topic/p@offset"
	ackAt := make(map[chaosTP]map[int64]string)
	for topic, l := range ledgers {
		for _, a := range l.Acks() {
			tp := chaosTP{topic, a.Partition}
			ackedAt[a.Value] = fmt.Sprintf("%s@%d", tp, a.Offset)
			if ackAt[tp] == nil {
				ackAt[tp] = make(map[int64]string)
			}
			ackAt[tp][a.Offset] = a.Value
		}
	}
	for _, r := range readers {
		for _, m := range r.check(t, final, ackAt, ackedAt, time.Minute) {
			fail("%s", m)
		}
	}
	summary = append(summary, fmt.Sprintf("problems: %d", problems))
	return strings.Join(summary, "\n")
}

// chaosRetentionOff sets retention.ms and retention.bytes to -1 on the
// chaos topics and waits until every broker describes them so (a broker
// applies a topic's config to its logs as it applies the image that
// carries it).
func chaosRetentionOff(t *testing.T, c *harness.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strPtr("-1")},
		{Op: kadm.SetConfig, Name: "retention.bytes", Value: strPtr("-1")},
	}
	resp, err := c.Admin(t).AlterTopicConfigs(ctx, off, chaosTopics...)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = fmt.Errorf("%s: %w", r.Name, r.Err)
			}
		}
	}
	if err != nil {
		t.Fatalf("turn retention off: %v", err)
	}
	for _, b := range c.Brokers {
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			got, err := chaosDescribeRetention(b)
			if err != nil {
				return false, err.Error()
			}
			for _, kv := range got {
				if !strings.HasSuffix(kv, "=-1") {
					return false, fmt.Sprintf("%s describes %s", b.Name, kv)
				}
			}
			return true, ""
		})
	}
}

// chaosDescribeRetention returns "topic retention.x=value" for the chaos
// topics' retention configs as broker b (asked directly) describes them.
func chaosDescribeRetention(b *harness.Node) ([]string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, topic := range chaosTopics {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType = kmsg.ConfigResourceTypeTopic
		r.ResourceName = topic
		r.ConfigNames = []string{"retention.ms", "retention.bytes"}
		req.Resources = append(req.Resources, r)
	}
	r, err := b.Request(req, 5*time.Second)
	if err != nil {
		return nil, err
	}
	resp := r.(*kmsg.DescribeConfigsResponse)
	var out []string
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return nil, fmt.Errorf("describe %s: %w", r.ResourceName, err)
		}
		for _, c := range r.Configs {
			v := "null"
			if c.Value != nil {
				v = *c.Value
			}
			out = append(out, fmt.Sprintf("%s %s=%s", r.ResourceName, c.Name, v))
		}
	}
	if len(out) != 2*len(chaosTopics) {
		return nil, fmt.Errorf("%s described %d retention configs: %v", b.Name, len(out), out)
	}
	return out, nil
}

// chaosReplicas compares the replicas of tp on disk (waiting up to a
// minute for them to settle: followers catching up, removed segments'
// files still being deleted) and returns the union of their records from
// the lowest log start, that log start, and the problems found.
func chaosReplicas(t *testing.T, c *harness.Cluster, tp chaosTP) ([]harness.Stored, int64, []string) {
	t.Helper()
	var logs []harness.PartitionLog
	var problems []string
	err := harness.Poll(time.Minute, func() (bool, string) {
		logs, problems = logs[:0], problems[:0]
		for _, b := range c.Brokers {
			pl, err := harness.ReadPartitionLog(filepath.Join(b.DataDir, tp.topic+"-"+strconv.Itoa(int(tp.p))))
			if err != nil {
				return false, fmt.Sprintf("%s: %v", b.Name, err)
			}
			if len(pl.Holes) > 0 {
				problems = append(problems, fmt.Sprintf("%s: %s: offsets missing between batches: %v", tp, b.Name, pl.Holes))
			}
			logs = append(logs, pl)
		}
		problems = append(problems, chaosCompare(tp, c.Brokers, logs)...)
		if len(problems) > 0 {
			return false, strings.Join(problems, "; ")
		}
		return true, ""
	})
	if err != nil && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("%s: replicas: %v", tp, err))
	}
	// The union: an offset held by several replicas must hold the same
	// value on each (the common range was compared byte for byte above).
	held := make(map[int64]string)
	low := int64(-1)
	for i, pl := range logs {
		if low < 0 || pl.Start < low {
			low = pl.Start
		}
		recs, err := pl.Records()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", tp, c.Brokers[i].Name, err))
			continue
		}
		for _, r := range recs {
			if v, ok := held[r.Offset]; ok && v != r.Value {
				problems = append(problems, fmt.Sprintf("%s: offset %d holds %q on one replica, %q on %s", tp, r.Offset, v, r.Value, c.Brokers[i].Name))
			}
			held[r.Offset] = r.Value
		}
	}
	offsets := slices.Sorted(func(yield func(int64) bool) {
		for o := range held {
			if !yield(o) {
				return
			}
		}
	})
	out := make([]harness.Stored, 0, len(offsets))
	for _, o := range offsets {
		out = append(out, harness.Stored{Offset: o, Value: held[o]})
	}
	var starts []string
	for i, pl := range logs {
		starts = append(starts, fmt.Sprintf("%s %d-%d", c.Brokers[i].Name, pl.Start, pl.End))
	}
	t.Logf("%s: replicas hold %s; %d records in their union", tp, strings.Join(starts, ", "), len(out))
	return out, max(low, 0), problems
}

// chaosCompare compares replicas' logs of tp over the range all of them
// hold: the same end, and byte-identical batches from the highest start.
func chaosCompare(tp chaosTP, brokers []*harness.Node, logs []harness.PartitionLog) []string {
	var problems []string
	from := int64(0)
	for _, pl := range logs {
		from = max(from, pl.Start)
	}
	common := func(pl harness.PartitionLog) []harness.Batch {
		i := sort.Search(len(pl.Batches), func(i int) bool { return pl.Batches[i].BaseOffset >= from })
		return pl.Batches[i:]
	}
	ref := common(logs[0])
	for i, pl := range logs {
		if pl.End != logs[0].End {
			problems = append(problems, fmt.Sprintf("%s: %s ends at %d, %s at %d", tp, brokers[0].Name, logs[0].End, brokers[i].Name, pl.End))
			continue
		}
		if i == 0 {
			continue
		}
		got := common(pl)
		if len(got) != len(ref) {
			problems = append(problems, fmt.Sprintf("%s: from offset %d %s holds %d batches, %s %d", tp, from, brokers[0].Name, len(ref), brokers[i].Name, len(got)))
			continue
		}
		for j := range got {
			if got[j].BaseOffset != ref[j].BaseOffset || !bytes.Equal(got[j].Raw, ref[j].Raw) {
				problems = append(problems, fmt.Sprintf("%s: batch at %d (%s of %s) differs from batch at %d (%s of %s)",
					tp, ref[j].BaseOffset, ref[j].Segment, brokers[0].Name, got[j].BaseOffset, got[j].Segment, brokers[i].Name))
				break
			}
		}
	}
	return problems
}

// chaosSeen reports whether a reader was delivered tp's record at offset.
func chaosSeen(readers []*chaosReader, tp chaosTP, offset int64) bool {
	for _, r := range readers {
		if r.has(tp, offset) {
			return true
		}
	}
	return false
}
