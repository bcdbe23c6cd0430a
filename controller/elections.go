package controller

import (
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// Elections are pure functions of an image and a liveness predicate; they
// return the ChangePartition records of the decision, in topic-name and
// partition order so the same input always gives the same entry.

// isLive says whether a broker may lead and stay in ISRs: registered,
// unfenced and not in controlled shutdown.
type isLive func(id int32) bool

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

// fenceDecision takes broker id out of service: it leaves every ISR that has
// other members and loses every leadership, each to the first live ISR
// member, or to nobody (-1). An ISR is never shrunk to empty: when id is its
// last member the partition goes offline with ISR [id], as Kafka does, and
// id is elected again once unfenced. live must already say false for id.
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
				leader = electLeader(p, isr, live)
			}
			if leader != p.Leader || !slices.Equal(isr, p.ISR) {
				recs = append(recs, changePartition(t, p, leader, isr))
			}
		}
	}
	return recs
}

// electLeaderless elects a leader for every offline partition that has a
// live ISR member (after a broker is unfenced, say).
func electLeaderless(img *image.Image, live isLive) []record {
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if p.Leader != -1 {
				continue
			}
			if leader := electLeader(p, p.ISR, live); leader != -1 {
				recs = append(recs, changePartition(t, p, leader, p.ISR))
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
