package partition

import (
	"testing"
	"time"
)

// statsOf returns the snapshot of partition t-0 (EachReplica).
func statsOf(t *testing.T, m *Manager) Stats {
	t.Helper()
	var out []Stats
	m.EachReplica(func(s Stats) { out = append(out, s) })
	if len(out) != 1 {
		t.Fatalf("%d replicas, want 1", len(out))
	}
	return out[0]
}

// TestStatsFollowISRChanges: the leader's snapshot says when its
// partition is under-replicated or under min.insync.replicas, and the ISR
// changes are counted, whether the leader made them (AlterPartition) or
// metadata did (a fenced follower removed by the controller).
func TestStatsFollowISRChanges(t *testing.T) {
	m, clock, fc := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1, 2, 3}, "2"))
	p := mustPartition(t, m, "t", 0)
	s := statsOf(t, m)
	if s.Role != RoleLeader || s.Leader != testNode || s.PreferredLeader != 1 || s.ReplicationFactor != 3 || s.ISR != 3 ||
		s.MinInsyncReplicas != 2 || s.UnderReplicated() || s.UnderMinISR() || s.Segments != 1 {
		t.Fatalf("full ISR: %+v", s)
	}

	// The controller drops 3 (fenced): a shrink, made by metadata.
	m.ApplyImage(isrImage(2, 1, 2, []int32{1, 2}, "2"))
	if s := statsOf(t, m); !s.UnderReplicated() || s.UnderMinISR() {
		t.Fatalf("ISR [1 2] of 3 replicas: %+v", s)
	}
	if shrinks, expands := m.ISRChanges(); shrinks != 1 || expands != 0 {
		t.Fatalf("after the controller's shrink: %d shrinks, %d expansions", shrinks, expands)
	}

	// The leader drops 2 (out of sync): below min.insync.replicas.
	if _, err := p.AppendAsLeader(batchOf(2, 10), 1); err != nil {
		t.Fatal(err)
	}
	clock.advance(testLag + time.Millisecond)
	m.checkISRs()
	fc.next(t)
	fc.answer(0, 1, 3, 1)
	waitUntil(t, "ISR adopted", func() bool { return p.State().PartitionEpoch == 3 })
	if s := statsOf(t, m); !s.UnderReplicated() || !s.UnderMinISR() || s.ISR != 1 {
		t.Fatalf("ISR [1]: %+v", s)
	}
	// The image confirming it counts nothing more.
	m.ApplyImage(isrImage(3, 1, 3, []int32{1}, "2"))
	if shrinks, expands := m.ISRChanges(); shrinks != 2 || expands != 0 {
		t.Fatalf("after the leader's shrink: %d shrinks, %d expansions", shrinks, expands)
	}

	// Back to the full ISR by metadata: an expansion.
	m.ApplyImage(isrImage(4, 1, 4, []int32{1, 2, 3}, "2"))
	if shrinks, expands := m.ISRChanges(); shrinks != 2 || expands != 1 {
		t.Fatalf("after the expansion: %d shrinks, %d expansions", shrinks, expands)
	}
	if s := statsOf(t, m); s.UnderReplicated() || s.UnderMinISR() {
		t.Fatalf("full ISR again: %+v", s)
	}
	// A new leader epoch is not an ISR change of this leader's.
	m.ApplyImage(isrImage(5, 2, 5, []int32{1, 2}, "2"))
	if shrinks, _ := m.ISRChanges(); shrinks != 2 {
		t.Fatalf("a new leader epoch counted as a shrink: %d", shrinks)
	}
}

// TestTrafficCounts: produced and fetched batches count in their topic's
// traffic, a follower's fetch as replication.
func TestTrafficCounts(t *testing.T) {
	m, _, _ := newISRTestManager(t)
	m.ApplyImage(isrImage(1, 1, 1, []int32{1}, "1"))
	p := mustPartition(t, m, "t", 0)
	batch := batchOf(5, 10)
	if _, err := p.AppendAsLeader(batch, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsLeader(batchOf(3, 10), 1); err != nil {
		t.Fatal(err)
	}
	rr, err := p.Read(ReadParams{FetchOffset: 2, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReplicaID: -1, LastFetchedEpoch: -1})
	if err != nil || rr.NextOffset != 8 {
		t.Fatalf("read: next offset %d, %v", rr.NextOffset, err)
	}
	p.CountFetched(false, rr.Size, 2, rr.NextOffset)
	p.CountFetched(true, 100, 0, 8)
	var traffic *Traffic
	hosted := 0
	m.EachTopic(func(topic string, tr *Traffic, n int) {
		if topic == "t" {
			traffic, hosted = tr, n
		}
	})
	if traffic == nil || hosted != 1 {
		t.Fatalf("topic t: traffic %v, %d hosted", traffic, hosted)
	}
	if in, recs := traffic.BytesIn.Load(), traffic.RecordsIn.Load(); recs != 8 || in != int64(len(batch))+int64(len(batchOf(3, 10))) {
		t.Fatalf("in: %d bytes, %d records", in, recs)
	}
	if out, recs := traffic.BytesOut.Load(), traffic.RecordsOut.Load(); out != rr.Size || recs != 6 {
		t.Fatalf("out: %d bytes (read %d), %d records, want 6 (offsets 2..7)", out, rr.Size, recs)
	}
	if traffic.ReplicationBytesOut.Load() != 100 || traffic.BytesOut.Load() != rr.Size {
		t.Fatalf("a follower's fetch counted as a consumer's: %+v", traffic)
	}
}
