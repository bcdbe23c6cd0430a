package partition

import "testing"

// TestHighWatermarkRule is the leader's high watermark rule as a table.
// The leader is replica 1.
func TestHighWatermarkRule(t *testing.T) {
	cases := []struct {
		name         string
		current, leo int64
		committed    []int32
		maximal      []int32 // nil: the committed ISR
		follower     map[int32]int64
		minISR       int
		want         int64
		wantAdvanced bool
	}{
		{"alone", 0, 10, []int32{1}, nil, nil, 1, 10, true},
		{"follower unknown counts 0", 0, 10, []int32{1, 2}, nil, nil, 1, 0, false},
		{"follower behind", 0, 10, []int32{1, 2}, nil, map[int32]int64{2: 7}, 1, 7, true},
		{"min over followers", 0, 10, []int32{1, 2, 3}, nil, map[int32]int64{2: 9, 3: 4}, 1, 4, true},
		{"follower ahead is capped at the local log end", 0, 10, []int32{1, 2}, nil, map[int32]int64{2: 12}, 1, 10, true},
		{"non-isr follower ignored", 0, 10, []int32{1}, nil, map[int32]int64{2: 1}, 1, 10, true},
		{"never moves back", 8, 10, []int32{1, 2}, nil, map[int32]int64{2: 5}, 1, 8, false},
		{"equal is not an advance", 7, 10, []int32{1, 2}, nil, map[int32]int64{2: 7}, 1, 7, false},
		{"committed ISR below min.insync.replicas: frozen", 3, 10, []int32{1}, nil, nil, 2, 3, false},
		{"min.insync.replicas counts the committed ISR, not a pending newcomer", 3, 10,
			[]int32{1}, []int32{1, 2}, map[int32]int64{2: 10}, 2, 3, false},
		{"pending expansion: the newcomer counts at once", 0, 10,
			[]int32{1, 2}, []int32{1, 2, 3}, map[int32]int64{2: 10, 3: 6}, 2, 6, true},
		{"pending shrink: the larger committed ISR still counts", 0, 10,
			[]int32{1, 2, 3}, []int32{1, 2, 3}, map[int32]int64{2: 10, 3: 2}, 2, 2, true},
		{"min.insync.replicas met exactly", 0, 10, []int32{1, 2}, nil, map[int32]int64{2: 9}, 2, 9, true},
	}
	for _, c := range cases {
		maximal := c.maximal
		if maximal == nil {
			maximal = c.committed
		}
		got, advanced := highWatermark(hwInput{Current: c.current, LocalID: 1, LocalLEO: c.leo,
			CommittedISR: c.committed, MaximalISR: maximal, FollowerLEO: c.follower, MinInsyncReplicas: c.minISR})
		if got != c.want || advanced != c.wantAdvanced {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, got, advanced, c.want, c.wantAdvanced)
		}
	}
}
