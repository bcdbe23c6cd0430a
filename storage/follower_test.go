package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

func TestEpochHistoryAndTruncateFullyAndStartAt(t *testing.T) {
	dir := t.TempDir()
	m := openManager(t, dir)
	l := mustLog(t, m, storage.DefaultLogConfig())
	for epoch := int32(0); epoch < 3; epoch++ {
		if _, err := l.AppendAsLeader(storagetest.MakeBatch(values(2, 10, byte(epoch)), -1, -1, -1), epoch*2); err != nil {
			t.Fatal(err)
		}
	}
	want := []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 2}, {Epoch: 4, StartOffset: 4}}
	if got := l.EpochHistory(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("history %v, want %v", got, want)
	}
	if err := l.TruncateFullyAndStartAt(6); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Fatalf("restart at the log end: %v", err)
	}
	if err := l.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 100 || l.LogEndOffset() != 100 || len(l.EpochHistory()) != 0 || l.LatestEpoch() != -1 {
		t.Fatalf("after restart: start %d end %d history %v", l.LogStartOffset(), l.LogEndOffset(), l.EpochHistory())
	}
	// A follower appends the leader's batches from there.
	b := storagetest.MakeBatch(values(3, 10, 9), -1, -1, -1)
	setBase(b, 100, 5)
	if _, err := l.AppendAsFollower(b); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 103 || l.LatestEpoch() != 5 {
		t.Fatalf("end %d epoch %d, want 103 and 5", l.LogEndOffset(), l.LatestEpoch())
	}
	// It survives a reopen.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openManager(t, dir)
	t.Cleanup(func() { _ = m.Close() })
	l = m.Get(storage.TopicPartition{Topic: "t", Partition: 0})
	if l == nil || l.LogStartOffset() != 100 || l.LogEndOffset() != 103 {
		t.Fatalf("reopened: %v", l)
	}
}

// setBase stamps a batch's base offset and leader epoch, as a leader does
// (neither is covered by the CRC).
func setBase(b []byte, base int64, epoch int32) {
	for i := range 8 {
		b[7-i] = byte(base >> (8 * i))
	}
	for i := range 4 {
		b[15-i] = byte(epoch >> (8 * i))
	}
}

// TestFollowerRollsWhereLeaderRolls: a follower told where its leader's
// segments start rolls there and only there, not when its own active
// segment is older than segment.ms (its clock and segment ages are its
// own), so both hold the same files.
func TestFollowerRollsWhereLeaderRolls(t *testing.T) {
	clock := func(at *time.Time) func() time.Time { return func() time.Time { return *at } }
	leaderNow, followerNow := time.Unix(1_000_000, 0), time.Unix(1_000_000, 0)
	open := func(now *time.Time) *storage.Log {
		cfg := storage.DefaultConfig(t.TempDir())
		cfg.Now = clock(now)
		m, err := storage.OpenManager(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		lc := storage.DefaultLogConfig()
		lc.SegmentAge = time.Minute
		return mustLog(t, m, lc)
	}
	leader, follower := open(&leaderNow), open(&followerNow)
	copyNew := func() {
		t.Helper()
		for off := follower.LogEndOffset(); off < leader.LogEndOffset(); {
			rr, err := leader.Read(off, 1<<20, leader.LogEndOffset())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := rr.ReadInto(nil)
			info, err := follower.AppendAsFollowerFrom(b, leaderSegment(rr, off))
			if err != nil {
				t.Fatal(err)
			}
			off = info.LastOffset + 1
		}
	}
	appendOne := func(i int) {
		t.Helper()
		if _, err := leader.AppendAsLeader(storagetest.MakeBatch(values(2, 100, byte(i)), -1, -1, -1), 1); err != nil {
			t.Fatal(err)
		}
	}
	appendOne(0)
	copyNew()
	// The follower's segment is older than segment.ms, the leader's is not.
	followerNow = followerNow.Add(2 * time.Minute)
	appendOne(1)
	copyNew()
	// Now the leader's is: it rolls, and the follower with it.
	leaderNow = leaderNow.Add(2 * time.Minute)
	appendOne(2)
	copyNew()
	appendOne(3)
	copyNew()
	if leader.Segments() != 2 {
		t.Fatalf("leader has %d segments, want 2", leader.Segments())
	}
	sameFiles(t, segmentFiles(t, leader.Dir()), segmentFiles(t, follower.Dir()))
}

// leaderSegment is what a leader tells a follower fetching at off about
// the segment of read rr (dataplane/kafka's rule): its base when the read
// begins it, -1 otherwise.
func leaderSegment(rr storage.ReadResult, off int64) int64 {
	if rr.SegmentBase >= off {
		return rr.SegmentBase
	}
	return -1
}
