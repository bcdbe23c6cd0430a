//go:build invariants

package controller

import (
	"fmt"
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// checkApplied verifies, in builds with the invariants tag (make test),
// what every applied entry must keep (doc.go "Invariants"); a violation is
// a bug in a decision or in the applier, so it panics.
//   - a leader is in its ISR and its replicas; ISR and ELR are within the
//     replicas, without duplicates, and disjoint; a reassignment's adding
//     and removing replicas are within the replicas and disjoint;
//   - the ELR and last-known ELR are empty while len(ISR) >=
//     min.insync.replicas;
//   - leader and partition epochs, and broker epochs, only grow.
func checkApplied(before, after *image.Image) {
	for name, t := range after.Topics {
		bt := before.Topics[name]
		if bt != nil && bt.ID != t.ID {
			bt = nil
		}
		for i, p := range t.Partitions {
			where := fmt.Sprintf("topic %q partition %d at index %d", name, p.Partition, after.Index)
			if p.Leader != -1 && (!slices.Contains(p.ISR, p.Leader) || !slices.Contains(p.Replicas, p.Leader)) {
				panic(fmt.Sprintf("invariant: %s: leader %d not in ISR %v / replicas %v", where, p.Leader, p.ISR, p.Replicas))
			}
			for _, set := range [][]int32{p.ISR, p.ELR} {
				for j, r := range set {
					if !slices.Contains(p.Replicas, r) || slices.Contains(set[:j], r) {
						panic(fmt.Sprintf("invariant: %s: %v not a set within replicas %v", where, set, p.Replicas))
					}
				}
			}
			for _, r := range p.Adding {
				if !slices.Contains(p.Replicas, r) || slices.Contains(p.Removing, r) {
					panic(fmt.Sprintf("invariant: %s: adding %v / removing %v not disjoint within replicas %v", where, p.Adding, p.Removing, p.Replicas))
				}
			}
			for _, r := range p.Removing {
				if !slices.Contains(p.Replicas, r) {
					panic(fmt.Sprintf("invariant: %s: removing %v not within replicas %v", where, p.Removing, p.Replicas))
				}
			}
			for _, r := range p.ELR {
				if slices.Contains(p.ISR, r) {
					panic(fmt.Sprintf("invariant: %s: ELR %v overlaps ISR %v", where, p.ELR, p.ISR))
				}
			}
			if len(p.ISR) >= minInsync(after, t) && (len(p.ELR) > 0 || len(p.LastKnownELR) > 0) {
				panic(fmt.Sprintf("invariant: %s: ISR %v at min.insync.replicas %d with ELR %v last known %v",
					where, p.ISR, minInsync(after, t), p.ELR, p.LastKnownELR))
			}
			if bt != nil && i < len(bt.Partitions) {
				bp := bt.Partitions[i]
				if p.LeaderEpoch < bp.LeaderEpoch || p.PartitionEpoch < bp.PartitionEpoch {
					panic(fmt.Sprintf("invariant: %s: epochs went back: leader %d -> %d, partition %d -> %d",
						where, bp.LeaderEpoch, p.LeaderEpoch, bp.PartitionEpoch, p.PartitionEpoch))
				}
			}
		}
	}
	for id, b := range after.Brokers {
		if old := before.Brokers[id]; old != nil && b.Epoch < old.Epoch {
			panic(fmt.Sprintf("invariant: broker %d epoch went back: %d -> %d", id, old.Epoch, b.Epoch))
		}
	}
}
