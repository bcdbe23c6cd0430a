package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
)

// Elections are pure functions of an image and a liveness predicate; they
// return the ChangePartition records of the decision, in topic-name and
// partition order so the same input always gives the same entry, and at
// most one record per partition.
//
// Rules (Kafka's):
//   - clean election: the first replica, in replica order, that is in the
//     ISR and live;
//   - no live ISR member: the partition goes offline (leader -1, ISR kept)
//     unless unclean.leader.election.enable is true for its topic; then the
//     first live replica leads with ISR [it] (records may be lost);
//   - preferred election: the first replica leads when it is live and in
//     the ISR.

// isLive says whether a broker may lead and stay in ISRs: registered,
// unfenced and not in controlled shutdown.
type isLive func(id int32) bool

// uncleanConfig is the topic config allowing out-of-sync leaders.
const uncleanConfig = "unclean.leader.election.enable"

// uncleanAllowed says whether topic t may elect an out-of-sync replica
// (its own config, else the cluster-wide default, else false).
func uncleanAllowed(img *image.Image, t *image.Topic) bool {
	v, _ := img.TopicConfig(t, uncleanConfig)
	return v == "true"
}

// electLeader picks the first replica, in replica order, that is in the ISR
// and live; -1 when there is none.
func electLeader(p *image.Partition, isr []int32, live isLive) int32 {
	for _, r := range p.Replicas {
		if slices.Contains(isr, r) && live(r) {
			return r
		}
	}
	return -1
}

// firstLiveReplica is the unclean choice: the first live replica in replica
// order, in the ISR or not; -1 when there is none.
func firstLiveReplica(p *image.Partition, live isLive) int32 {
	for _, r := range p.Replicas {
		if live(r) {
			return r
		}
	}
	return -1
}

// electWithISR is the leader and ISR a partition gets when its leader must
// be (re)chosen from isr: a clean election, else, when unclean is set, the
// first live replica with ISR [it], else leader -1 with isr unchanged.
func electWithISR(p *image.Partition, isr []int32, live isLive, unclean bool) (int32, []int32) {
	if leader := electLeader(p, isr, live); leader != -1 {
		return leader, isr
	}
	if unclean {
		if leader := firstLiveReplica(p, live); leader != -1 {
			return leader, []int32{leader}
		}
	}
	return -1, isr
}

// fenceDecision takes broker id out of service: it leaves every ISR that has
// other members and loses every leadership, each to the first live ISR
// member, or (unclean election enabled) the first live replica, or to
// nobody (-1). An ISR is never shrunk to empty: when id is its last member
// the partition goes offline with ISR [id], as Kafka does, and id is elected
// again once unfenced. live must already say false for id.
func fenceDecision(img *image.Image, id int32, live isLive) []record {
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			inISR := slices.Contains(p.ISR, id)
			if !inISR && p.Leader != id {
				continue
			}
			isr := p.ISR
			if inISR && len(p.ISR) > 1 {
				isr = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
			}
			leader := p.Leader
			if leader == id || leader == -1 {
				leader, isr = electWithISR(p, isr, live, uncleanAllowed(img, t))
			}
			if leader != p.Leader || !slices.Equal(isr, p.ISR) {
				recs = append(recs, changePartition(t, p, leader, isr))
			}
		}
	}
	return recs
}

// electLeaderless elects a leader for every offline partition that can get
// one: from its live ISR, or, where the topic allows unclean election, its
// first live replica. Run after a broker is unfenced, after a config change,
// and periodically.
func electLeaderless(img *image.Image, live isLive) []record {
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if p.Leader != -1 {
				continue
			}
			if leader, isr := electWithISR(p, p.ISR, live, uncleanAllowed(img, t)); leader != -1 {
				recs = append(recs, changePartition(t, p, leader, isr))
			}
		}
	}
	return recs
}

// unfenceDecision is what unfencing broker id changes in partitions, beside
// the UnfenceBroker record: every offline partition that can now get a
// leader gets one (electLeaderless: id itself where it is in the ISR; an
// out-of-sync live replica only where the topic allows unclean election).
// id does NOT rejoin any ISR here: a replica enters an ISR only through its
// leader's AlterPartition once it has caught up (design.md §3). live must
// say true for id.
func unfenceDecision(img *image.Image, id int32, live isLive) []record {
	return electLeaderless(img, live)
}

// preferredElection makes the preferred replica (the first) the leader of
// p: the change, or the Kafka error saying why there is none:
// ELECTION_NOT_NEEDED when it already leads, PREFERRED_LEADER_NOT_AVAILABLE
// when it is not live or not in the ISR.
func preferredElection(t *image.Topic, p *image.Partition, live isLive) (record, *apiError) {
	if len(p.Replicas) == 0 {
		return record{}, errf(kerr.PreferredLeaderNotAvailable, "partition has no replicas")
	}
	preferred := p.Replicas[0]
	switch {
	case p.Leader == preferred:
		return record{}, errf(kerr.ElectionNotNeeded, "preferred replica %d already leads", preferred)
	case !live(preferred):
		return record{}, errf(kerr.PreferredLeaderNotAvailable, "preferred replica %d is fenced, shutting down or not registered", preferred)
	case !slices.Contains(p.ISR, preferred):
		return record{}, errf(kerr.PreferredLeaderNotAvailable, "preferred replica %d is not in the ISR %v", preferred, p.ISR)
	}
	return changePartition(t, p, preferred, p.ISR), nil
}

// uncleanElection is ElectLeaders' UNCLEAN election for p: a partition with
// a leader needs none (ELECTION_NOT_NEEDED); an offline one gets its first
// live ISR member, else its first live replica with ISR [it], whatever the
// topic config; ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
func uncleanElection(t *image.Topic, p *image.Partition, live isLive) (record, *apiError) {
	if p.Leader != -1 {
		return record{}, errf(kerr.ElectionNotNeeded, "partition has leader %d", p.Leader)
	}
	leader, isr := electWithISR(p, p.ISR, live, true)
	if leader == -1 {
		return record{}, errf(kerr.EligibleLeadersNotAvailable, "no replica of %v is live", p.Replicas)
	}
	return changePartition(t, p, leader, isr), nil
}

// rebalanceDecision is automatic leader rebalancing (Kafka's
// auto.leader.rebalance.enable): for every live broker whose share of
// partitions it prefers (is the first replica of) but does not lead exceeds
// percentage %, each of those partitions that has a leader moves back to it
// where it is in the ISR. Offline partitions are electLeaderless's.
func rebalanceDecision(img *image.Image, live isLive, percentage int) []record {
	preferred := map[int32]int{}  // broker -> partitions it prefers
	imbalanced := map[int32]int{} // broker -> of those, led by another
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			preferred[pref]++
			if p.Leader != pref {
				imbalanced[pref]++
			}
		}
	}
	over := func(id int32) bool {
		return imbalanced[id]*100 > percentage*preferred[id]
	}
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if p.Leader == -1 || len(p.Replicas) == 0 || !over(p.Replicas[0]) {
				continue
			}
			if rec, err := preferredElection(t, p, live); err == nil {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// leadsAny says whether broker id leads at least one partition.
func leadsAny(img *image.Image, id int32) bool {
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}
