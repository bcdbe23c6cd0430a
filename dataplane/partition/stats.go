package partition

import (
	"slices"
	"sync/atomic"

	"github.com/skein-io/skein/controller/image"
)

// What the broker's metrics read (dataplane/metrics.go). The request path
// only bumps counters (one atomic add each, on counters its partition
// holds a pointer to); everything else is read here, when Prometheus
// scrapes, from state the replicas keep anyway.

// Traffic counts one topic's traffic through this broker, summed over its
// replicas hosted here.
type Traffic struct {
	// BytesIn and RecordsIn: batches produced to replicas led here (an
	// idempotent retry of a batch already in the log is not counted).
	BytesIn, RecordsIn atomic.Int64
	// BytesOut and RecordsOut: batches answered to consumers' fetches
	// (records: the offsets from the fetch offset to the end of the last
	// batch answered; a compacted log's gaps count).
	BytesOut, RecordsOut atomic.Int64
	// ReplicationBytesIn: batches appended as a follower.
	// ReplicationBytesOut: batches answered to followers' fetches.
	ReplicationBytesIn, ReplicationBytesOut atomic.Int64
}

// CountFetched counts a fetch answer of bytes whose batches hold the
// records from fetchOffset up to next (exclusive): a follower's
// (replica) as replication traffic.
func (p *Partition) CountFetched(replica bool, bytes, fetchOffset, next int64) {
	if bytes <= 0 {
		return
	}
	if replica {
		p.traffic.ReplicationBytesOut.Add(bytes)
		return
	}
	p.traffic.BytesOut.Add(bytes)
	if next > fetchOffset {
		p.traffic.RecordsOut.Add(next - fetchOffset)
	}
}

// countISRChange counts an ISR change of a replica led here: a shrink
// when a member left, an expansion when one joined (both when both).
func (p *Partition) countISRChange(old, isr []int32) {
	if p.env == nil {
		return
	}
	for _, r := range old {
		if !slices.Contains(isr, r) {
			p.env.shrinks.Add(1)
			break
		}
	}
	for _, r := range isr {
		if !slices.Contains(old, r) {
			p.env.expands.Add(1)
			break
		}
	}
}

// Stats is a snapshot of one hosted replica.
type Stats struct {
	Topic     string
	Partition int32
	Role      Role
	// Leader is the partition's leader, -1 when it has none (offline).
	Leader int32
	// PreferredLeader is the first replica (-1 when there is none).
	PreferredLeader int32
	// ReplicationFactor is the number of replicas, without those a
	// reassignment is adding (as Kafka counts under-replication).
	ReplicationFactor int
	// ISR is the size of the in-sync replica set this replica knows.
	ISR               int
	MinInsyncReplicas int
	HighWatermark     int64
	LogStartOffset    int64
	LogEndOffset      int64
	// SizeBytes and Segments are the log's segment files.
	SizeBytes int64
	Segments  int
}

// UnderReplicated says whether this replica leads a partition whose ISR
// lacks some of its replicas.
func (s Stats) UnderReplicated() bool {
	return s.Role == RoleLeader && s.ISR < s.ReplicationFactor
}

// UnderMinISR says whether this replica leads a partition whose ISR is
// smaller than min.insync.replicas (acks=all produces are refused).
func (s Stats) UnderMinISR() bool {
	return s.Role == RoleLeader && s.ISR < s.MinInsyncReplicas
}

// stats is the replica's snapshot; adding is how many of its replicas a
// reassignment is adding.
func (p *Partition) stats(adding int) Stats {
	p.roleMu.RLock()
	s := Stats{
		Topic: p.tp.Topic, Partition: p.tp.Partition, Role: p.role, Leader: p.leaderID,
		PreferredLeader: -1, ReplicationFactor: max(len(p.replicas)-adding, 0), ISR: len(p.isr),
		MinInsyncReplicas: p.settings.MinInsyncReplicas,
	}
	if len(p.replicas) > 0 {
		s.PreferredLeader = p.replicas[0]
	}
	p.roleMu.RUnlock()
	s.HighWatermark = p.HighWatermark()
	s.LogStartOffset = p.log.LogStartOffset()
	s.LogEndOffset = p.log.LogEndOffset()
	s.SizeBytes = p.log.Size()
	s.Segments = p.log.Segments()
	return s
}

// EachReplica calls fn with a snapshot of every hosted replica. It takes
// each replica's locks briefly, one at a time: for metrics, never for the
// request path.
func (m *Manager) EachReplica(fn func(Stats)) {
	for _, ht := range m.current.Load().topics {
		for idx, p := range ht.parts {
			adding := 0
			if ip := imagePartition(ht.topic, idx); ip != nil {
				adding = len(ip.Adding)
			}
			fn(p.stats(adding))
		}
	}
}

// imagePartition finds partition idx of t (nil when it has none).
func imagePartition(t *image.Topic, idx int32) *image.Partition {
	if i := int(idx); i >= 0 && i < len(t.Partitions) && t.Partitions[i] != nil && t.Partitions[i].Partition == idx {
		return t.Partitions[i]
	}
	for _, ip := range t.Partitions {
		if ip != nil && ip.Partition == idx {
			return ip
		}
	}
	return nil
}

// EachTopic calls fn with every topic of the applied image, its traffic
// counters and how many of its replicas are hosted here.
func (m *Manager) EachTopic(fn func(topic string, traffic *Traffic, hosted int)) {
	for name, ht := range m.current.Load().topics {
		if ht.traffic != nil {
			fn(name, ht.traffic, len(ht.parts))
		}
	}
}

// ISRChanges returns how many times the ISR of a partition led here has
// shrunk and expanded since the broker started (the changes it made
// through AlterPartition and those metadata made, such as a fenced
// follower removed by the controller).
func (m *Manager) ISRChanges() (shrinks, expands int64) {
	return m.isr.shrinks.Load(), m.isr.expands.Load()
}
