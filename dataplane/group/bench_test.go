package group

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitRequest is a simple (generation -1) OffsetCommit v8 of partitions
// 0..n-1 of topic "t" to group.
func commitRequest(group string, n int, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = group, -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = "t"
	md := "consumer-1"
	for p := range int32(n) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, offset, 3, &md
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	return req
}

// BenchmarkCommitOffsets commits offsets of 1 and of 50 partitions per op
// through a real coordinator leading a real one-replica __consumer_offsets
// partition (storage in a temp dir): encode the records, append them as
// leader, wait for the high watermark, apply.
//
//	go test ./dataplane/group/ -run XXX -bench BenchmarkCommitOffsets -benchmem
func BenchmarkCommitOffsets(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			e := newEnv(b, nil)
			req := commitRequest("bench", n, 42)
			ctx := context.Background()
			check := func(r *kmsg.OffsetCommitResponse) {
				for _, t := range r.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode != 0 {
							b.Fatalf("commit: error code %d", p.ErrorCode)
						}
					}
				}
			}
			check(e.c.CommitOffsets(ctx, req)) // the group exists from here on
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req.Topics[0].Partitions[0].Offset = int64(i)
				check(e.c.CommitOffsets(ctx, req))
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "offsets/s")
		})
	}
}

// BenchmarkLoad measures loading an offsets partition holding 100k offset
// commit records (1000 keys: 20 groups x 50 partitions, committed 100
// times each, in 50-record batches, the way commits write them): every op
// moves leadership to a new epoch, so the coordinator unloads and reloads
// both partitions from the log.
//
//	go test ./dataplane/group/ -run XXX -bench BenchmarkLoad -benchmem
func BenchmarkLoad(b *testing.B) {
	const (
		groups  = 20
		parts   = 50
		commits = 100
	)
	e := newEnv(b, nil)
	e.c.mu.Lock()
	s := e.c.shards[0]
	e.c.mu.Unlock()
	var ids []string
	for i := 0; len(ids) < groups; i++ {
		if id := fmt.Sprintf("group-%d", i); PartitionFor(id, 2) == s.index {
			ids = append(ids, id)
		}
	}
	nowMs := e.cfg.Clock.Now().UnixMilli()
	recs := make([]kv, 0, parts)
	for c := range commits {
		for _, id := range ids {
			recs = recs[:0]
			for p := range int32(parts) {
				recs = append(recs, offsetRecord(id, "t", p, &offset{offset: int64(c), leaderEpoch: 3, metadata: "consumer-1", commitMs: nowMs}))
			}
			if _, err := s.p.AppendAsLeader(buildBatch(recs, nowMs), -1); err != nil {
				b.Fatal(err)
			}
		}
	}
	const records = groups * parts * commits
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.apply(testNode)
	}
	b.StopTimer()
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	got := 0
	for _, sh := range e.c.shards {
		for _, g := range sh.groups {
			got += len(g.offsets)
		}
	}
	if got != groups*parts {
		b.Fatalf("loaded %d offsets, want %d", got, groups*parts)
	}
}
