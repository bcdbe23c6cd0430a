package console

// What the pages derive from the node's metadata image alone: pure
// functions of the image and of which brokers answered the probe.

import (
	"net"
	"slices"
	"sort"
	"strconv"

	"github.com/skein-io/skein/controller/image"
)

// underReplicated reports whether a replica of p (other than one being
// added by a reassignment) is out of the ISR, as Kafka counts
// UnderReplicatedPartitions.
func underReplicated(p *image.Partition) bool {
	for _, r := range p.Replicas {
		if !slices.Contains(p.ISR, r) && !slices.Contains(p.Adding, r) {
			return true
		}
	}
	return false
}

// brokerAddr is a broker's first listener, host:port.
func brokerAddr(b *image.Broker) string {
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// brokerRows lists img's brokers by id with their leader and replica
// counts; reachable says which answered the probe.
func brokerRows(img *image.Image, reachable map[int32]bool) []BrokerRow {
	rows := make([]BrokerRow, 0, len(img.Brokers))
	index := make(map[int32]int, len(img.Brokers))
	for _, id := range img.BrokerIDs() {
		b := img.Brokers[id]
		index[id] = len(rows)
		rows = append(rows, BrokerRow{
			ID: id, Addr: brokerAddr(b), Rack: b.Rack, Epoch: b.Epoch, Fenced: b.Fenced,
			Reachable: reachable[id], Alive: !b.Fenced && reachable[id],
		})
	}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if i, ok := index[p.Leader]; ok {
				rows[i].Leaders++
			}
			for _, r := range p.Replicas {
				if i, ok := index[r]; ok {
					rows[i].Replicas++
				}
			}
		}
	}
	return rows
}

// counts totals img's topics and partitions; brokers are rows.
func counts(img *image.Image, brokers []BrokerRow) Counts {
	c := Counts{Brokers: len(brokers), Topics: len(img.Topics)}
	for _, b := range brokers {
		if b.Alive {
			c.AliveBrokers++
		}
	}
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			c.Partitions++
			if underReplicated(p) {
				c.UnderReplicated++
			}
			if p.Leader < 0 {
				c.Offline++
			}
		}
	}
	return c
}

// topicRow summarizes t without its size (SizeBytes -1).
func topicRow(t *image.Topic) TopicRow {
	row := TopicRow{Name: t.Name, Partitions: len(t.Partitions), SizeBytes: -1}
	for _, p := range t.Partitions {
		row.ReplicationFactor = max(row.ReplicationFactor, len(p.Replicas)-len(p.Removing))
		if underReplicated(p) {
			row.UnderReplicated++
		}
		if p.Leader < 0 {
			row.Offline++
		}
	}
	return row
}

// topicRows summarizes every topic of img, by name.
func topicRows(img *image.Image) []TopicRow {
	rows := make([]TopicRow, 0, len(img.Topics))
	for _, name := range img.TopicNames() {
		rows = append(rows, topicRow(img.Topics[name]))
	}
	return rows
}

// partitionRows are t's partitions without offsets and sizes (-1);
// alive says which brokers are alive.
func partitionRows(t *image.Topic, alive map[int32]bool) []PartitionRow {
	rows := make([]PartitionRow, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		row := PartitionRow{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, Adding: p.Adding, Removing: p.Removing,
			UnderReplicated: underReplicated(p), Offline: p.Leader < 0,
			LogStartOffset: -1, LogEndOffset: -1, SizeBytes: -1,
		}
		for _, r := range p.Replicas {
			if !alive[r] {
				row.DeadReplicas = append(row.DeadReplicas, r)
			}
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Partition < rows[j].Partition })
	return rows
}

// partitionSizes picks one size per partition from what the brokers
// reported (broker -> topic -> partition -> bytes): the leader's, else the
// largest replica's.
func partitionSizes(t *image.Topic, reported map[int32]map[string]map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range t.Partitions {
		size, found := int64(-1), false
		for _, r := range p.Replicas {
			s, ok := reported[r][t.Name][p.Partition]
			if !ok {
				continue
			}
			if r == p.Leader {
				size, found = s, true
				break
			}
			size, found = max(size, s), true
		}
		if found {
			out[p.Partition] = size
		}
	}
	return out
}

// topicSize sums sizes; -1 when none is known.
func topicSize(sizes map[int32]int64) int64 {
	if len(sizes) == 0 {
		return -1
	}
	var sum int64
	for _, s := range sizes {
		sum += s
	}
	return sum
}
