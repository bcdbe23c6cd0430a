package partition

import (
	"slices"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
)

var ruleT0 = time.UnixMilli(1_700_000_000_000)

// ruleView is a leader (replica 1) with replicas {1,2,3,4}, ISR {1,2,3},
// log end 10, HW 8, leader epoch started at 6, lag limit 10s, brokers 2-4
// registered at epoch 5; every follower was caught up 1s ago at LEO 10.
func ruleView() isrView {
	return isrView{
		Now: ruleT0, LocalID: 1, Replicas: []int32{1, 2, 3, 4}, ISR: []int32{1, 2, 3},
		Followers: map[int32]*followerState{
			2: {brokerEpoch: 5, lastCaughtUp: ruleT0.Add(-time.Second)},
			3: {brokerEpoch: 5, lastCaughtUp: ruleT0.Add(-time.Second)},
			4: {brokerEpoch: 5, lastCaughtUp: ruleT0.Add(-time.Second)},
		},
		FollowerLEO: map[int32]int64{2: 10, 3: 10, 4: 10},
		LeaderLEO:   10, HighWatermark: 8, LeaderEpochStartOffset: 6, LagMax: 10 * time.Second,
		Brokers: map[int32]*image.Broker{2: {ID: 2, Epoch: 5}, 3: {ID: 3, Epoch: 5}, 4: {ID: 4, Epoch: 5}},
	}
}

func TestShrinkISRRule(t *testing.T) {
	cases := []struct {
		name string
		edit func(v *isrView)
		want []int32 // proposed ISR; nil: no change
	}{
		{"all caught up", func(v *isrView) {}, nil},
		{"behind but within the lag limit", func(v *isrView) {
			v.FollowerLEO[2] = 4
			v.Followers[2].lastCaughtUp = ruleT0.Add(-10 * time.Second)
		}, nil},
		{"behind past the lag limit", func(v *isrView) {
			v.FollowerLEO[2] = 4
			v.Followers[2].lastCaughtUp = ruleT0.Add(-10*time.Second - time.Millisecond)
		}, []int32{1, 3}},
		{"at the leader's log end is never out of sync, however long ago", func(v *isrView) {
			v.Followers[2].lastCaughtUp = ruleT0.Add(-time.Hour)
		}, nil},
		{"never reported (LEO 0) and stale", func(v *isrView) {
			delete(v.FollowerLEO, 3)
			v.Followers[3].lastCaughtUp = ruleT0.Add(-time.Minute)
		}, []int32{1, 2}},
		{"no follower state counts as caught up now", func(v *isrView) {
			v.FollowerLEO[3] = 0
			delete(v.Followers, 3)
		}, nil},
		{"both out of sync at once", func(v *isrView) {
			v.FollowerLEO[2], v.FollowerLEO[3] = 9, 9
			v.Followers[2].lastCaughtUp = ruleT0.Add(-11 * time.Second)
			v.Followers[3].lastCaughtUp = ruleT0.Add(-11 * time.Second)
		}, []int32{1}},
		{"a change in flight blocks", func(v *isrView) {
			v.FollowerLEO[2] = 4
			v.Followers[2].lastCaughtUp = ruleT0.Add(-time.Minute)
			v.Pending = true
		}, nil},
		{"retry backoff blocks", func(v *isrView) {
			v.FollowerLEO[2] = 4
			v.Followers[2].lastCaughtUp = ruleT0.Add(-time.Minute)
			v.RetryAfter = ruleT0.Add(time.Millisecond)
		}, nil},
		{"retry backoff over", func(v *isrView) {
			v.FollowerLEO[2] = 4
			v.Followers[2].lastCaughtUp = ruleT0.Add(-time.Minute)
			v.RetryAfter = ruleT0
		}, []int32{1, 3}},
		{"replicas outside the ISR are not looked at", func(v *isrView) {
			v.FollowerLEO[4] = 0
			v.Followers[4].lastCaughtUp = ruleT0.Add(-time.Hour)
		}, nil},
	}
	for _, c := range cases {
		v := ruleView()
		c.edit(&v)
		got := shrinkISR(v)
		switch {
		case c.want == nil && got != nil:
			t.Errorf("%s: proposed %v, want no change", c.name, got.Proposed)
		case c.want != nil && got == nil:
			t.Errorf("%s: no change, want %v", c.name, c.want)
		case got != nil && (!slices.Equal(got.Proposed, c.want) || !got.Shrink || !slices.Equal(got.Maximal, v.ISR)):
			t.Errorf("%s: got %+v, want proposed %v, shrink, maximal = the committed ISR", c.name, got, c.want)
		}
	}
}

func TestExpandISRRule(t *testing.T) {
	cases := []struct {
		name    string
		replica int32
		edit    func(v *isrView)
		want    bool
	}{
		{"caught up, registered, same broker epoch", 4, func(v *isrView) {}, true},
		{"already in the ISR", 2, func(v *isrView) {}, false},
		{"the leader itself", 1, func(v *isrView) {}, false},
		{"not an assigned replica", 5, func(v *isrView) {
			v.FollowerLEO[5] = 10
			v.Brokers[5] = &image.Broker{ID: 5, Epoch: 5}
		}, false},
		{"below the high watermark", 4, func(v *isrView) { v.FollowerLEO[4] = 7 }, false},
		{"at the high watermark and the epoch start", 4, func(v *isrView) { v.FollowerLEO[4] = 8 }, true},
		{"past the HW but below the leader epoch's start (KAFKA-7128)", 4, func(v *isrView) {
			v.HighWatermark, v.FollowerLEO[4] = 3, 5
		}, false},
		{"not registered", 4, func(v *isrView) { delete(v.Brokers, 4) }, false},
		{"fenced", 4, func(v *isrView) { v.Brokers[4].Fenced = true }, false},
		{"fetches with another broker epoch", 4, func(v *isrView) { v.Followers[4].brokerEpoch = 4 }, false},
		{"broker epoch unknown", 4, func(v *isrView) { v.Followers[4].brokerEpoch = -1 }, true},
		{"no follower state yet", 4, func(v *isrView) { delete(v.Followers, 4) }, true},
		{"a change in flight blocks", 4, func(v *isrView) { v.Pending = true }, false},
		{"retry backoff blocks", 4, func(v *isrView) { v.RetryAfter = ruleT0.Add(time.Second) }, false},
	}
	for _, c := range cases {
		v := ruleView()
		c.edit(&v)
		got := expandISR(v, c.replica)
		if (got != nil) != c.want {
			t.Errorf("%s: got %+v, want a change %v", c.name, got, c.want)
			continue
		}
		if got != nil {
			want := append(slices.Clone(v.ISR), c.replica)
			if got.Shrink || got.Added != c.replica || !slices.Equal(got.Proposed, want) || !slices.Equal(got.Maximal, want) {
				t.Errorf("%s: got %+v, want ISR and maximal %v", c.name, got, want)
			}
		}
	}
}

// TestFollowerFetchedRule is the caught-up bookkeeping of one follower's
// fetches, step by step.
func TestFollowerFetchedRule(t *testing.T) {
	at := func(ms int) time.Time { return ruleT0.Add(time.Duration(ms) * time.Millisecond) }
	f := followerState{brokerEpoch: -1, lastCaughtUp: at(0)}
	steps := []struct {
		ms          int
		offset, leo int64
		epoch       int64
		wantCaught  int
		wantEpoch   int64
	}{
		{1000, 5, 5, 3, 1000, 3},  // at the log end: caught up now
		{2000, 5, 8, -1, 1000, 3}, // behind the leader's 8; epoch unknown keeps 3
		{3000, 8, 9, 3, 2000, 3},  // reached the 8 of the previous fetch: caught up as of it
		{4000, 8, 9, 3, 2000, 3},  // did not reach 9
		{5000, 9, 12, 4, 4000, 4}, // reached the previous fetch's 9: as of 4s
		{6000, 12, 12, 4, 6000, 4},
	}
	for i, s := range steps {
		f = f.fetched(at(s.ms), s.offset, s.leo, s.epoch)
		if !f.lastCaughtUp.Equal(at(s.wantCaught)) || f.brokerEpoch != s.wantEpoch {
			t.Fatalf("step %d: caught up at %v epoch %d; want %v epoch %d", i,
				f.lastCaughtUp.Sub(ruleT0), f.brokerEpoch, at(s.wantCaught).Sub(ruleT0), s.wantEpoch)
		}
	}
}
