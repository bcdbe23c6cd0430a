package cli

// `skein replicas verify TOPIC`: are the replicas of every partition byte
// for byte the same up to the high watermark?
//
// Each replica broker is asked directly with Fetch as Kafka's "debug
// consumer" (ReplicaID -2): any replica, leader or follower, serves it from
// its own log up to its own high watermark. Followers learn the leader's
// high watermark one fetch late, so the command first waits (--hw-wait) for
// every replica to report the same high watermark, then compares the range
// every replica has: from the largest log start offset to the smallest
// high watermark. Replicas append the leader's batches verbatim, so their
// batch bytes hash the same; the checksum is SHA-256 over the batches whose
// offsets all fall in that range.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

const (
	// debugReplicaID is Kafka's replica id of a debug consumer's fetch.
	debugReplicaID = -2
	// verifyFetchBytes is the size asked of one verify fetch.
	verifyFetchBytes = 4 << 20
	// verifyProbeInterval paces the wait for equal high watermarks.
	verifyProbeInterval = 100 * time.Millisecond
	// Record batch header (magic 2): baseOffset int64, batchLength int32,
	// partitionLeaderEpoch int32, magic int8, crc int32, attributes int16,
	// lastOffsetDelta int32.
	batchLengthEnd      = 12
	batchLastDeltaStart = 23
	batchHeaderMin      = 27
)

func replicasCommand() *cli.Command {
	return &cli.Command{
		Name:  "replicas",
		Usage: "partition replicas",
		Subcommands: []*cli.Command{
			{
				Name:      "verify",
				Usage:     "check that every replica of each partition of TOPIC holds the same bytes up to the high watermark",
				ArgsUsage: "TOPIC",
				Description: "Reads each replica's log directly from its broker (Fetch as a debug consumer,\n" +
					"   replica id -2) from the log start offset to the high watermark, and prints\n" +
					"   one row per replica with a SHA-256 checksum of its record batches. Replicas\n" +
					"   are compared over the offsets all of them have (largest log start offset to\n" +
					"   smallest high watermark, after waiting --hw-wait for the high watermarks to\n" +
					"   agree). Exits with an error if any replica differs from the leader or\n" +
					"   cannot be read.",
				Flags: withCommon(
					bootstrapServerFlag(),
					durationFlag("hw-wait", "wait this long for the replicas' high watermarks to agree before comparing", 10*time.Second),
					durationFlag("timeout", "give up after this long", 5*time.Minute),
				),
				Action: runReplicasVerify,
			},
		},
	}
}

// replicaDigest is what one replica of a partition holds in the compared
// range.
type replicaDigest struct {
	Replica       int32
	HighWatermark int64
	Bytes         int64
	Checksum      string
	Err           error
	// Match is set by compareReplicas.
	Match bool
}

// compareReplicas marks each replica that matches the reference: the
// leader's digest when it was read, else the first readable one. It
// returns how many replicas differ or failed.
func compareReplicas(rows []replicaDigest, leader int32) int {
	ref := -1
	for i, r := range rows {
		if r.Err == nil && (ref < 0 || r.Replica == leader) {
			ref = i
		}
	}
	bad := 0
	for i := range rows {
		r := &rows[i]
		r.Match = ref >= 0 && r.Err == nil && r.Bytes == rows[ref].Bytes && r.Checksum == rows[ref].Checksum
		if !r.Match {
			bad++
		}
	}
	return bad
}

// hashBatches feeds h the record batches of data whose offsets all lie in
// [start, end) and returns the offset to fetch next, the bytes hashed, and
// whether the range is complete (a batch reaching end was seen). A batch
// cut short at the end of data is left for the next fetch.
func hashBatches(h hash.Hash, data []byte, next, start, end int64) (newNext, hashed int64, done bool, err error) {
	for len(data) >= batchLengthEnd {
		base := int64(binary.BigEndian.Uint64(data[0:8]))
		length := int64(int32(binary.BigEndian.Uint32(data[8:12])))
		size := batchLengthEnd + length
		if length < batchHeaderMin-batchLengthEnd {
			return next, hashed, false, fmt.Errorf("record batch at offset %d has length %d", base, length)
		}
		if int64(len(data)) < size {
			break // partial batch: fetched again from its base offset
		}
		last := base + int64(int32(binary.BigEndian.Uint32(data[batchLastDeltaStart:batchLastDeltaStart+4])))
		if last < base {
			return next, hashed, false, fmt.Errorf("record batch at offset %d has last offset %d", base, last)
		}
		switch {
		case last >= end:
			return next, hashed, true, nil
		case base >= start && last >= next:
			h.Write(data[:size])
			hashed += size
		}
		next = max(next, last+1)
		if next >= end {
			return next, hashed, true, nil
		}
		data = data[size:]
	}
	return next, hashed, next >= end, nil
}

func runReplicasVerify(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: skein replicas verify TOPIC")
	}
	topic := c.Args().First()
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()

	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := topics[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", topic)
	}
	if d.Err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, d.Err)
	}

	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tREPLICA\tHW\tBYTES\tCHECKSUM\tMATCH")
	bad := 0
	for _, p := range d.Partitions.Sorted() {
		v := partitionVerifier{cl: cl, topic: topic, topicID: d.ID, partition: p.Partition}
		rows := v.verify(ctx, p.Replicas, c.Duration("hw-wait"))
		bad += compareReplicas(rows, p.Leader)
		for _, r := range rows {
			fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", topic, p.Partition, replicaName(r.Replica, p.Leader),
				formatHW(r), r.Bytes, formatChecksum(r), formatMatch(r))
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d replica(s) of topic %s differ from their leader or could not be read", bad, topic)
	}
	return nil
}

func replicaName(id, leader int32) string {
	if id == leader {
		return fmt.Sprintf("%d (leader)", id)
	}
	return fmt.Sprint(id)
}

func formatHW(r replicaDigest) string {
	if r.HighWatermark < 0 {
		return "-"
	}
	return fmt.Sprint(r.HighWatermark)
}

func formatChecksum(r replicaDigest) string {
	if r.Err != nil {
		return "-"
	}
	return r.Checksum
}

func formatMatch(r replicaDigest) string {
	switch {
	case r.Err != nil:
		return "ERROR: " + r.Err.Error()
	case r.Match:
		return "yes"
	}
	return "NO"
}

// partitionVerifier reads the replicas of one partition.
type partitionVerifier struct {
	cl        *kgo.Client
	topic     string
	topicID   kadm.TopicID
	partition int32
}

// verify waits up to hwWait for the replicas' high watermarks to agree,
// then digests every replica over [largest log start, smallest HW).
func (v partitionVerifier) verify(ctx context.Context, replicas []int32, hwWait time.Duration) []replicaDigest {
	rows := make([]replicaDigest, len(replicas))
	starts := make([]int64, len(replicas))
	deadline := time.Now().Add(hwWait)
	for {
		for i, id := range replicas {
			rows[i] = replicaDigest{Replica: id, HighWatermark: -1}
			fp, err := v.fetch(ctx, id, 0, 1)
			if err != nil && fp == nil {
				rows[i].Err = err
				continue
			}
			rows[i].HighWatermark, starts[i] = fp.HighWatermark, fp.LogStartOffset
		}
		if hwAgree(rows) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(verifyProbeInterval):
		}
	}
	start, end := int64(0), int64(-1)
	for i, r := range rows {
		if r.Err != nil {
			continue
		}
		start = max(start, starts[i])
		if end < 0 || r.HighWatermark < end {
			end = r.HighWatermark
		}
	}
	for i := range rows {
		if rows[i].Err == nil {
			rows[i].Bytes, rows[i].Checksum, rows[i].Err = v.digest(ctx, rows[i].Replica, start, end)
		}
	}
	return rows
}

// hwAgree: every replica answered with the same high watermark.
func hwAgree(rows []replicaDigest) bool {
	for _, r := range rows {
		if r.Err != nil || r.HighWatermark != rows[0].HighWatermark {
			return false
		}
	}
	return true
}

// digest hashes replica's batches in [start, end).
func (v partitionVerifier) digest(ctx context.Context, replica int32, start, end int64) (int64, string, error) {
	h := sha256.New()
	var total int64
	next := start
	for next < end {
		fp, err := v.fetch(ctx, replica, next, verifyFetchBytes)
		if err != nil {
			return total, "", err
		}
		if len(fp.RecordBatches) == 0 {
			return total, "", fmt.Errorf("no data at offset %d (high watermark %d)", next, fp.HighWatermark)
		}
		n, hashed, done, err := hashBatches(h, fp.RecordBatches, next, start, end)
		total += hashed
		if err != nil {
			return total, "", err
		}
		if done {
			break
		}
		if n == next {
			return total, "", fmt.Errorf("no whole batch at offset %d in a %d-byte answer", next, len(fp.RecordBatches))
		}
		next = n
	}
	return total, hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// fetch sends one debug-consumer Fetch for the partition to replica's
// broker. A partition error returns the partition (its offsets are filled
// for OFFSET_OUT_OF_RANGE) together with the error.
func (v partitionVerifier) fetch(ctx context.Context, replica int32, offset int64, maxBytes int32) (*kmsg.FetchResponseTopicPartition, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = debugReplicaID
	req.ReplicaState.ID = debugReplicaID
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = v.topic, v.topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = v.partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := v.cl.Broker(int(replica)).Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", replica, err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
		return nil, fmt.Errorf("broker %d: %w", replica, err)
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("broker %d: malformed fetch answer", replica)
	}
	fp := &fr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(fp.ErrorCode); err != nil {
		if errors.Is(err, kerr.OffsetOutOfRange) {
			return fp, err
		}
		return nil, fmt.Errorf("broker %d: %w", replica, err)
	}
	return fp, nil
}
