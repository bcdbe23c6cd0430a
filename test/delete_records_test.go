package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestDeleteRecords: DeleteRecords (kadm, and `skein topic delete-records`
// with NAME --offset and with kafka-delete-records.sh's offset file)
// on a replicated topic with small segments. The answer's low watermark is
// the requested offset once every in-sync replica took it; the log start
// moves there, a consumer reading from the start (or from below it, reset
// by OFFSET_OUT_OF_RANGE) begins there, the segments wholly below it go on
// every replica and the replicas stay byte-identical; after the leader
// stops, the new leader starts at the same offset, and so does the old one
// once restarted. Past the high watermark is OFFSET_OUT_OF_RANGE, a
// compacted topic refuses with POLICY_VIOLATION (compact,delete too,
// unlike Kafka), and -1 deletes up to the high watermark of an idle
// partition.
func TestDeleteRecords(t *testing.T) {
	const (
		topic   = "purge"
		records = 3000
		cut     = 1234
	)
	// Followers long-poll for 10 s: a DeleteRecords (5 s timeout) on an
	// idle partition succeeds only if the leader answers their parked
	// fetches when its log start moves.
	brokerArgs := append([]string{"--replica-fetch-wait-max", "10s"}, fastFenceBrokerArgs...)
	c := harness.StartCluster(t, harness.Options{Brokers: 3, ControllerArgs: fastFenceControllerArgs, BrokerArgs: brokerArgs})
	createTopic(t, c, topic, 2, 3, map[string]*string{
		"min.insync.replicas": strPtr("2"),
		"segment.bytes":       strPtr("16384"),
	})
	createTopic(t, c, "purge-compacted", 1, 3, map[string]*string{"cleanup.policy": strPtr("compact")})
	createTopic(t, c, "purge-compact-delete", 1, 3, map[string]*string{"cleanup.policy": strPtr("compact,delete")})
	cl := c.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(part int32, from, n int) {
		t.Helper()
		// Batches of 50 records (about 6 KB): several per segment.
		for at := from; at < from+n; at += 50 {
			var recs []*kgo.Record
			for i := at; i < min(at+50, from+n); i++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprintf("r-%05d-%s", i, strings.Repeat("x", 100)))})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	produce(0, 0, records)
	produce(1, 0, 10)
	adm := c.Admin(t)
	adm.SetTimeoutMillis(5000)
	segments := func(b *harness.Node) int {
		return len(readSegmentsOrFail(t, b, topic, 0))
	}
	before := segments(c.Brokers[0])

	del := func(tp string, part int32, at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		resp, err := adm.DeleteRecords(ctx, kadm.Offsets{tp: {part: {Topic: tp, Partition: part, At: at, LeaderEpoch: -1}}})
		if err != nil && len(resp) == 0 {
			t.Fatalf("delete records %s/%d before %d: %v", tp, part, at, err)
		}
		r, ok := resp.Lookup(tp, part)
		if !ok {
			t.Fatalf("delete records %s/%d: no answer", tp, part)
		}
		return r
	}
	if r := del(topic, 0, cut); r.Err != nil || r.LowWatermark != cut {
		t.Fatalf("delete records before %d: low watermark %d, err %v", cut, r.LowWatermark, r.Err)
	}
	if r := del(topic, 0, records+1); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v, want OFFSET_OUT_OF_RANGE", r.Err)
	}
	for _, tp := range []string{"purge-compacted", "purge-compact-delete"} {
		if r := del(tp, 0, 0); !errors.Is(r.Err, kerr.PolicyViolation) {
			t.Fatalf("delete on %s: %v, want POLICY_VIOLATION", tp, r.Err)
		}
	}
	// -1 on an idle partition: the leader answers its followers' parked
	// fetches with the new start.
	if r := del(topic, 1, -1); r.Err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete before the high watermark of partition 1: low watermark %d, err %v", r.LowWatermark, r.Err)
	}

	startOf := func(part int32) int64 {
		t.Helper()
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			t.Fatalf("list start offsets: %v", err)
		}
		o, _ := starts.Lookup(topic, part)
		return o.Offset
	}
	if s := startOf(0); s != cut {
		t.Fatalf("log start %d, want %d", s, cut)
	}
	// Reading from offset 10, below the start: OFFSET_OUT_OF_RANGE, reset
	// to the start.
	first, n := consumeAll(t, c, topic, 0, kgo.NewOffset().At(10), records)
	if first != cut || n != records-cut {
		t.Fatalf("consumed %d records from offset %d, want %d from %d", n, first, records-cut, cut)
	}
	for _, b := range c.Brokers {
		if got := segments(b); got >= before {
			t.Errorf("%s: %d segments before, %d after: none removed", b.Name, before, got)
		}
	}
	checkReplicasIdentical(t, c, topic, 2, 30*time.Second)

	// The CLI, as an operator runs it.
	res := c.RunCLI(t, 30*time.Second, nil, "topic", "delete-records", topic, "--offset", "1500", "--partition", "0")
	if res.Err != nil || !strings.Contains(res.Stdout, "LOW-WATERMARK") || !strings.Contains(res.Stdout, "1500") {
		t.Fatalf("skein topic delete-records: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	// kafka-delete-records.sh's offset file.
	jsonFile := filepath.Join(t.TempDir(), "offsets.json")
	if err := os.WriteFile(jsonFile, []byte(`{"partitions": [{"topic": "purge", "partition": 0, "offset": 1560}], "version": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "topic", "delete-records", "--offset-json-file", jsonFile)
	if res.Err != nil || !strings.Contains(res.Stdout, "1560") {
		t.Fatalf("skein topic delete-records --offset-json-file: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}

	// Leadership moves: the new leader starts where the old one did.
	old := c.Broker(partitionLeader(t, c, topic, 0))
	old.MustStop()
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		l := partitionLeader(t, c, topic, 0)
		return l != old.ID, "leader still " + strconv.Itoa(int(l))
	})
	if s := startOf(0); s != 1560 {
		t.Fatalf("log start on the new leader %d, want 1560", s)
	}
	produce(0, records, 100)
	old.Restart()
	checkReplicasIdentical(t, c, topic, 2, 30*time.Second)
	for _, b := range c.Brokers {
		if s := readLogStart(t, b, topic, 0); s != 1560 {
			t.Errorf("%s: log start file says %d, want 1560", b.Name, s)
		}
	}

	// A follower that lost its copy (a replaced disk) restarts at the
	// leader's log start, inside the batch of offsets 1550-1599: it takes
	// that whole batch and catches up back into the ISR.
	leader := partitionLeader(t, c, topic, 0)
	var wiped *harness.Node
	for _, b := range c.Brokers {
		if b.ID != leader {
			wiped = b
			break
		}
	}
	wiped.MustStop()
	if err := os.RemoveAll(partitionDir(wiped, topic, 0)); err != nil {
		t.Fatal(err)
	}
	wiped.Restart()
	produce(0, records+100, 100)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		md, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		isr := md[topic].Partitions[0].ISR
		return slices.Contains(isr, wiped.ID), fmt.Sprintf("ISR %v without %s", isr, wiped.Name)
	})
	if s := readLogStart(t, wiped, topic, 0); s != 1560 {
		t.Errorf("%s after losing its copy: log start %d, want 1560", wiped.Name, s)
	}
	if first, n := consumeAll(t, c, topic, 0, kgo.NewOffset().AtStart(), records+200); first != 1560 || n != records+200-1560 {
		t.Errorf("consumed %d records from %d, want %d from 1560", n, first, records+200-1560)
	}
}

// consumeAll reads partition part of topic from offset until want records
// past the reset were seen or the end, and returns the first offset read
// and how many records it read.
func consumeAll(t *testing.T, c *harness.Cluster, topic string, part int32, from kgo.Offset, end int) (int64, int) {
	t.Helper()
	cl := c.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: from}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, n := int64(-1), 0
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s/%d: read %d records from %d before the timeout", topic, part, n, first)
		}
		var last int64 = -1
		fs.EachRecord(func(r *kgo.Record) {
			if first < 0 {
				first = r.Offset
			}
			n++
			last = r.Offset
		})
		if last == int64(end)-1 {
			return first, n
		}
	}
}

// readSegmentsOrFail lists the .log segments of topic-part on b.
func readSegmentsOrFail(t *testing.T, b *harness.Node, topic string, part int) []segmentFile {
	t.Helper()
	s, err := readSegments(partitionDir(b, topic, part))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// partitionDir is topic-part's directory on b.
func partitionDir(b *harness.Node, topic string, part int) string {
	return filepath.Join(b.DataDir, topic+"-"+strconv.Itoa(part))
}

// readLogStart is the log start of topic-part on b as its files say: its
// log-start-offset file, or else its first segment's base.
func readLogStart(t *testing.T, b *harness.Node, topic string, part int) int64 {
	t.Helper()
	dir := partitionDir(b, topic, part)
	if data, err := os.ReadFile(filepath.Join(dir, "log-start-offset")); err == nil {
		v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			t.Fatalf("%s: log-start-offset %q", b.Name, data)
		}
		return v
	}
	segs := readSegmentsOrFail(t, b, topic, part)
	if len(segs) == 0 {
		t.Fatalf("%s: no segments in %s", b.Name, dir)
	}
	v, err := strconv.ParseInt(strings.TrimSuffix(segs[0].name, ".log"), 10, 64)
	if err != nil {
		t.Fatalf("%s: segment %s", b.Name, segs[0].name)
	}
	return v
}
