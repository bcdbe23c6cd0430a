package group

import (
	"cmp"
	"slices"
)

// GroupStats is a snapshot of one group coordinated here, for metrics.
type GroupStats struct {
	Group   string
	State   string // Kafka's name: Empty, Stable, PreparingRebalance, ...
	Members int
	// Offsets are the group's committed offsets, by topic and partition.
	Offsets []CommittedOffset
}

// CommittedOffset is one committed offset of a group.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Stats returns every group of the offsets partitions loaded here, with
// its committed offsets. It holds the coordinator's lock while it copies
// them: for metrics, not for a request path.
func (c *Coordinator) Stats() []GroupStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GroupStats
	for _, s := range c.shards {
		if !s.loaded {
			continue
		}
		for id, g := range s.groups {
			gs := GroupStats{Group: id, State: g.state.String(), Members: len(g.members),
				Offsets: make([]CommittedOffset, 0, len(g.offsets))}
			for k, o := range g.offsets {
				gs.Offsets = append(gs.Offsets, CommittedOffset{Topic: k.topic, Partition: k.partition, Offset: o.offset})
			}
			slices.SortFunc(gs.Offsets, func(a, b CommittedOffset) int {
				return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
			})
			out = append(out, gs)
		}
	}
	return out
}

// Rebalances is how many rebalances completed here (each one a new
// generation of its group) since the broker started.
func (c *Coordinator) Rebalances() int64 { return c.rebalances.Load() }
