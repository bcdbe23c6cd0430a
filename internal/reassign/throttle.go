package reassign

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/dustin/go-humanize"
)

// The configs a throttled reassignment sets (KIP-73), as
// kafka-reassign-partitions --throttle does.
const (
	// LeaderRateConfig and FollowerRateConfig are dynamic broker configs,
	// set on every broker that holds a current or a target replica of a
	// moving partition.
	LeaderRateConfig   = "leader.replication.throttled.rate"
	FollowerRateConfig = "follower.replication.throttled.rate"
	// LeaderReplicasConfig and FollowerReplicasConfig are topic configs:
	// "partition:broker,..." lists of the replicas whose replication
	// traffic the rates bound.
	LeaderReplicasConfig   = "leader.replication.throttled.replicas"
	FollowerReplicasConfig = "follower.replication.throttled.replicas"
)

// ParseRate reads a --throttle value in bytes per second: a plain number
// (1048576), or a size with a unit and an optional "/s": 50MB/s (SI,
// 50,000,000), 1MiB/s (binary, 1,048,576), 512KB, 1.5GiB/s. Units are
// case-insensitive. The rate must be at least 1 byte/s.
func ParseRate(s string) (int64, error) {
	v := strings.TrimSpace(s)
	lower := strings.ToLower(v)
	for _, suffix := range []string{"/sec", "/s", "ps"} {
		if strings.HasSuffix(lower, suffix) && len(lower) > len(suffix) {
			v = strings.TrimSpace(v[:len(v)-len(suffix)])
			break
		}
	}
	bad := func(why string) error {
		return fmt.Errorf("--throttle %q: %s; give bytes per second, e.g. 50MB/s, 1MiB/s or 1048576", s, why)
	}
	if v == "" {
		return 0, bad("empty")
	}
	if strings.HasPrefix(v, "-") {
		return 0, bad("a rate cannot be negative")
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return 0, bad("not a size")
	}
	if n == 0 {
		return 0, bad("a rate of 0 would stop replication")
	}
	if n > math.MaxInt64 {
		return 0, bad("too large")
	}
	return int64(n), nil
}

// FormatRate prints bytes per second the way ParseRate reads them back
// (binary units: 1048576 is "1.0 MiB/s").
func FormatRate(n int64) string {
	return humanize.IBytes(uint64(max(n, 0))) + "/s"
}

// Throttle is what a throttled reassignment sets: per topic, the leader and
// follower throttled-replicas lists; and the brokers that get the rates.
type Throttle struct {
	// Leader and Follower map a topic to its config value: the leader side
	// lists every current replica of the topic's moving partitions (they
	// may serve the copy), the follower side the replicas being added.
	Leader, Follower map[string]string
	// Brokers holds the current and target replicas of every moving
	// partition, sorted.
	Brokers []int32
}

// Topics returns the topics of the throttle, sorted.
func (t Throttle) Topics() []string {
	var out []string
	for topic := range t.Leader {
		out = append(out, topic)
	}
	for topic := range t.Follower {
		if _, ok := t.Leader[topic]; !ok {
			out = append(out, topic)
		}
	}
	sort.Strings(out)
	return out
}

// ThrottleFor computes the throttle of moving the partitions of target away
// from current, as kafka-reassign-partitions --throttle does. A partition
// whose replica set does not change (a reorder only) moves no data and is
// left out.
func ThrottleFor(current, target Assignment) Throttle {
	leader := map[string][]string{}
	follower := map[string][]string{}
	brokers := map[int32]bool{}
	for _, tp := range target.Sorted() {
		cur, ok := current[tp]
		if !ok {
			continue
		}
		adding := Diff(target[tp], cur)
		if len(adding) == 0 && len(Diff(cur, target[tp])) == 0 {
			continue
		}
		for _, id := range cur {
			leader[tp.Topic] = append(leader[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, id))
			brokers[id] = true
		}
		for _, id := range adding {
			follower[tp.Topic] = append(follower[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, id))
		}
		for _, id := range target[tp] {
			brokers[id] = true
		}
	}
	t := Throttle{Leader: map[string]string{}, Follower: map[string]string{}}
	for topic, l := range leader {
		t.Leader[topic] = strings.Join(l, ",")
	}
	for topic, f := range follower {
		t.Follower[topic] = strings.Join(f, ",")
	}
	for id := range brokers {
		t.Brokers = append(t.Brokers, id)
	}
	slices.Sort(t.Brokers)
	return t
}

// Diff returns the ids of a that are not in b, in a's order.
func Diff(a, b []int32) []int32 {
	var out []int32
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}
