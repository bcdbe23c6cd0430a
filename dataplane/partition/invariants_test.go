package partition

import (
	"errors"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

func TestInvariantChecks(t *testing.T) {
	hw := []struct {
		name                       string
		role                       Role
		prev, hw, logStart, logEnd int64
		broken                     bool
	}{
		{"leader forward", RoleLeader, 3, 5, 0, 10, false},
		{"leader unchanged", RoleLeader, 5, 5, 0, 10, false},
		{"leader back", RoleLeader, 5, 4, 0, 10, true},
		{"follower back (truncation)", RoleFollower, 5, 4, 0, 10, false},
		{"above the log end", RoleFollower, 5, 11, 0, 10, true},
		{"below the log start", RoleLeader, 0, 2, 3, 10, true},
		{"at the log start of an empty log", RoleFollower, 9, 7, 7, 7, false},
	}
	for _, c := range hw {
		err := checkHighWatermark(c.role, c.prev, c.hw, c.logStart, c.logEnd)
		if (err != nil) != c.broken || (err != nil && !errors.Is(err, errInvariant)) {
			t.Errorf("%s: %v, want broken %v", c.name, err, c.broken)
		}
	}
	img := []struct {
		name                             string
		ip                               image.Partition
		prevLE, prevPE, leaderEp, partEp int32
		broken                           bool
	}{
		{"ok", image.Partition{Leader: 1, ISR: []int32{1, 2}, Replicas: []int32{1, 2, 3}}, 1, 1, 2, 3, false},
		{"equal epochs", image.Partition{Leader: 1, ISR: []int32{1}, Replicas: []int32{1}}, 2, 3, 2, 3, false},
		{"offline leader", image.Partition{Leader: -1, ISR: []int32{2}, Replicas: []int32{1, 2}}, 1, 1, 1, 1, false},
		{"leader not in the ISR", image.Partition{Leader: 3, ISR: []int32{1, 2}, Replicas: []int32{1, 2, 3}}, 1, 1, 2, 2, true},
		{"ISR outside the replicas", image.Partition{Leader: 1, ISR: []int32{1, 4}, Replicas: []int32{1, 2}}, 1, 1, 2, 2, true},
		{"leader epoch back", image.Partition{Leader: 1, ISR: []int32{1}, Replicas: []int32{1}}, 3, 1, 2, 4, true},
		{"partition epoch back", image.Partition{Leader: 1, ISR: []int32{1}, Replicas: []int32{1}}, 2, 5, 2, 4, true},
	}
	for _, c := range img {
		err := checkAppliedImage(&c.ip, c.prevLE, c.prevPE, c.leaderEp, c.partEp)
		if (err != nil) != c.broken || (err != nil && !errors.Is(err, errInvariant)) {
			t.Errorf("%s: %v, want broken %v", c.name, err, c.broken)
		}
	}
}
