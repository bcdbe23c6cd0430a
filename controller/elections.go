package controller

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
)

// Elections are pure functions of an image and a liveness predicate; they
// return the ChangePartition records of the decision, in topic-name and
// partition order so the same input always gives the same entry, and at
// most one record per partition.
//
// Every change of a partition's ISR or leader goes through transition,
// which applies Kafka's rules with eligible leader replicas (KIP-966), with
// the topic's min.insync.replicas as the bound (the data plane's high
// watermark does not move while len(ISR) < min.insync.replicas, so a
// replica that left the ISR then still holds everything below the HW):
//
//   - ELR: when the resulting ISR is smaller than min.insync.replicas, the
//     replicas that were in the ISR or the ELR and are not in the new ISR
//     are the ELR, minus brokers that restarted uncleanly; when it reaches
//     min.insync.replicas the ELR (and LastKnownELR) is emptied. So a
//     replica rejoining the ISR leaves the ELR, and an unclean restart
//     (uncleanRestartDecision: a registration without a clean shutdown)
//     removes a broker from it and from the ISR. A change of the topic's
//     min.insync.replicas empties it (minInsyncChangeDecision). Fenced ELR
//     members stay. A reassignment that completes or is cancelled takes
//     the replicas it drops out of the ISR, ELR and LastKnownELR
//     (reassign.go).
//   - while a partition is reassigned its replicas are the target followed
//     by the original replicas not in it: any ISR member may lead, and the
//     preferred leader is the first target replica.
//   - the ISR may become empty (KIP-966): a fenced broker leaves every ISR,
//     the last member too; it then joins the ELR (0 < min.insync.replicas)
//     and the partition is offline. This replaces the pre-ELR rule (the
//     last member stays in the ISR): a clean return gives the same result
//     (it is elected from the ELR), an unclean one does not (it is no
//     longer eligible).
//   - clean election: the first replica, in replica order, that is in the
//     ISR and live; else the first live ELR member, which leads with ISR
//     [it] and leaves the ELR (ISR members that were not live join it);
//   - no live ISR or ELR member: unclean election if the topic allows it
//     (unclean.leader.election.enable): the first live replica leads with
//     ISR [it] (records may be lost); ELR and LastKnownELR are emptied,
//     since that leader rewrites the history they vouched for;
//   - last replica standing: ISR and ELR empty (every replica that held
//     the committed records restarted uncleanly), the topic does not allow
//     unclean election: the first of LastKnownELR leads again with ISR
//     [it] once live, as KIP-966's "last known leader" (Kafka 4.0's
//     balanced recovery) does. LastKnownELR lists the eligible replicas
//     that restarted uncleanly, the last leader first (it is put first
//     when its unclean restart empties both ISR and ELR). Records that
//     replica lost in its crash are lost, and other replicas truncate to
//     it: no replica is known to hold them. Logged at Warn. This is the
//     pre-ELR outcome (the last ISR member stays and is re-elected) kept
//     only where no eligible replica is left: a whole-cluster power loss
//     still comes back without an operator. Until that replica returns the
//     partition is offline (ElectLeaders UNCLEAN or the topic config can
//     pick another).
//   - otherwise the partition is offline (leader -1).
//   - preferred election: the first replica leads when it is live and in
//     the ISR.

// isLive says whether a broker may lead and stay in ISRs: registered,
// unfenced and not in controlled shutdown.
type isLive func(id int32) bool

// uncleanConfig is the topic config allowing out-of-sync leaders.
const uncleanConfig = "unclean.leader.election.enable"

// minInsyncConfig bounds the ELR (KIP-966).
const minInsyncConfig = "min.insync.replicas"

// uncleanAllowed says whether topic t may elect an out-of-sync replica
// (its own config, else the cluster-wide default, else false).
func uncleanAllowed(img *image.Image, t *image.Topic) bool {
	v, _ := img.TopicConfig(t, uncleanConfig)
	return v == "true"
}

// minInsync is topic t's effective min.insync.replicas, at least 1.
func minInsync(img *image.Image, t *image.Topic) int {
	v, _ := img.TopicConfig(t, minInsyncConfig)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// partitionState is the leader, ISR, ELR and last-known ELR one decision
// gives a partition, and its replicas when the decision changes them.
type partitionState struct {
	leader       int32
	isr          []int32
	elr          []int32
	lastKnownELR []int32
	// move is the partition's replicas and reassignment (reassign.go)
	// after the decision; nil: unchanged.
	move *assignment
}

// stateOf is p's current state.
func stateOf(p *image.Partition) partitionState {
	return partitionState{leader: p.Leader, isr: p.ISR, elr: p.ELR, lastKnownELR: p.LastKnownELR}
}

// policy is what transition needs to know of a partition's topic.
type policy struct {
	minInsync int
	unclean   bool // unclean.leader.election.enable, or an UNCLEAN ElectLeaders
}

func policyOf(img *image.Image, t *image.Topic) policy {
	return policy{minInsync: minInsync(img, t), unclean: uncleanAllowed(img, t)}
}

// electionKind says how a transition chose its leader.
type electionKind int

const (
	electedNone      electionKind = iota // no leader change
	electedISR                           // first live ISR member
	electedELR                           // first live ELR member, ISR [it]
	electedUnclean                       // out-of-sync replica (topic config or ElectLeaders)
	electedLastKnown                     // KIP-966 last known leader, restarted uncleanly
	electedNobody                        // offline
)

// transition is p's state once its ISR becomes isr (members in replica
// order or as the leader sent them), brokers in dropped (unclean restarts)
// leave the ELR, and, when the current leader is not a live member of the
// new ISR, a new leader is elected. It is the one place the ISR, ELR and
// election rules above meet.
//
// When p is being reassigned and the resulting ISR holds every target
// replica, the same state completes the reassignment (completeMove).
func transition(p *image.Partition, isr []int32, dropped []int32, pol policy, live isLive) (partitionState, electionKind) {
	st, kind := transitionWithin(p, isr, dropped, pol, live)
	if done, doneKind, ok := completeMove(p, st, dropped, pol, live); ok {
		return done, doneKind
	}
	return st, kind
}

// transitionWithin is transition without completing a reassignment.
func transitionWithin(p *image.Partition, isr []int32, dropped []int32, pol policy, live isLive) (partitionState, electionKind) {
	st := partitionState{leader: p.Leader, isr: isr}
	st.elr, st.lastKnownELR = elrAfter(p, isr, dropped, pol.minInsync)
	if len(st.isr) == 0 && len(st.elr) == 0 && p.Leader != -1 {
		// The leader was the last eligible replica and restarted
		// uncleanly: it is the last known leader.
		st.lastKnownELR = append([]int32{p.Leader}, without(st.lastKnownELR, p.Leader)...)
	}
	if p.Leader != -1 && slices.Contains(isr, p.Leader) && live(p.Leader) {
		return st, electedNone
	}
	for _, r := range p.Replicas {
		if slices.Contains(st.isr, r) && live(r) {
			st.leader = r
			return st, electedISR
		}
	}
	for _, r := range p.Replicas {
		if slices.Contains(st.elr, r) && live(r) {
			// ISR members that are not live (none, unless one is shutting
			// down unfenced) hold everything too: they join the ELR.
			var elr []int32
			for _, o := range p.Replicas {
				if o != r && (slices.Contains(st.elr, o) || slices.Contains(st.isr, o)) {
					elr = append(elr, o)
				}
			}
			st.leader, st.isr, st.elr = r, []int32{r}, elr
			if len(st.isr) >= pol.minInsync { // min.insync.replicas=1
				st.elr, st.lastKnownELR = nil, nil
			}
			return st, electedELR
		}
	}
	if pol.unclean {
		for _, r := range p.Replicas {
			if live(r) {
				st = partitionState{leader: r, isr: []int32{r}}
				return st, electedUnclean
			}
		}
	}
	if len(st.isr) == 0 && len(st.elr) == 0 && len(st.lastKnownELR) > 0 && live(st.lastKnownELR[0]) {
		r := st.lastKnownELR[0]
		st = partitionState{leader: r, isr: []int32{r}}
		return st, electedLastKnown
	}
	st.leader = -1
	return st, electedNobody
}

// elrAfter is p's ELR and last-known ELR once its ISR becomes isr and the
// brokers in dropped restarted uncleanly (KIP-966's rules, above). The ELR
// is in replica order; the last-known ELR keeps its order (the first is
// the last known leader) and appends, in replica order, the eligible
// replicas dropped now.
func elrAfter(p *image.Partition, isr, dropped []int32, minInsync int) (elr, lastKnown []int32) {
	if len(isr) >= minInsync {
		return nil, nil
	}
	var gone []int32
	for _, r := range p.Replicas {
		if slices.Contains(isr, r) || !(slices.Contains(p.ISR, r) || slices.Contains(p.ELR, r)) {
			continue
		}
		if slices.Contains(dropped, r) {
			gone = append(gone, r)
		} else {
			elr = append(elr, r)
		}
	}
	for _, r := range append(slices.Clone(p.LastKnownELR), gone...) {
		if slices.Contains(p.Replicas, r) && !slices.Contains(isr, r) && !slices.Contains(elr, r) && !slices.Contains(lastKnown, r) {
			lastKnown = append(lastKnown, r)
		}
	}
	return elr, lastKnown
}

func without(v []int32, id int32) []int32 {
	return slices.DeleteFunc(slices.Clone(v), func(r int32) bool { return r == id })
}

// touches says whether broker id is in p's ISR or ELR or leads it.
func touches(p *image.Partition, id int32) bool {
	return p.Leader == id || slices.Contains(p.ISR, id) || slices.Contains(p.ELR, id)
}

// fenceDecision takes broker id out of service: it leaves every ISR (the
// last member too: the partition then goes offline with id in its ELR) and
// loses every leadership, each to the first live ISR member, else the
// first live ELR member, else (unclean election enabled) the first live
// replica, else to nobody (-1). live must already say false for id.
func fenceDecision(img *image.Image, id int32, live isLive) []record {
	return removeDecision(img, id, nil, live)
}

// uncleanRestartDecision is what a registration without a clean shutdown
// (design.md §3 "Epochs") changes: broker id leaves every ISR and every
// ELR and loses its leaderships, as fenceDecision, and is not eligible
// again until it rejoins an ISR through its leader's AlterPartition. live
// must say false for id (it registers fenced).
func uncleanRestartDecision(img *image.Image, id int32, live isLive) []record {
	return removeDecision(img, id, []int32{id}, live)
}

func removeDecision(img *image.Image, id int32, dropped []int32, live isLive) []record {
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if !touches(p, id) {
				continue
			}
			st, _ := transition(p, without(p.ISR, id), dropped, policyOf(img, t), live)
			if rec, ok := changeTo(t, p, st); ok {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// minInsyncChangeDecision empties the ELR and last-known ELR of every
// partition of each topic whose effective min.insync.replicas differs
// between before and after (a config change), as Kafka's ClearElrRecord
// does: the ELR's guarantee rests on the high watermark not moving while
// the ISR is below the old minimum, which a lower one no longer gives.
func minInsyncChangeDecision(before, after *image.Image) []record {
	var recs []record
	for _, name := range after.TopicNames() {
		t := after.Topics[name]
		bt := before.Topics[name]
		if bt == nil || minInsync(before, bt) == minInsync(after, t) {
			continue
		}
		for _, p := range t.Partitions {
			st := stateOf(p)
			st.elr, st.lastKnownELR = nil, nil
			if rec, ok := changeTo(t, p, st); ok {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// electLeaderless elects a leader for every offline partition that can get
// one (transition's rules: live ISR member, live ELR member, unclean where
// the topic allows it, last known leader). Run after a broker is unfenced,
// after a config change, and periodically.
func electLeaderless(img *image.Image, live isLive) []record {
	var recs []record
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for _, p := range t.Partitions {
			if p.Leader != -1 {
				continue
			}
			if st, _ := transition(p, p.ISR, nil, policyOf(img, t), live); st.leader != -1 {
				if rec, ok := changeTo(t, p, st); ok {
					recs = append(recs, rec)
				}
			}
		}
	}
	return recs
}

// unfenceDecision is what unfencing broker id changes in partitions, beside
// the UnfenceBroker record: every offline partition that can now get a
// leader gets one (electLeaderless: id itself where it is in the ISR or
// the ELR; an out-of-sync live replica only where the topic allows unclean
// election, or as the last known leader). id does NOT rejoin any ISR here:
// a replica enters an ISR only through its leader's AlterPartition once it
// has caught up (design.md §3). live must say true for id.
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
	st := stateOf(p)
	st.leader = preferred
	rec, _ := changeTo(t, p, st)
	return rec, nil
}

// uncleanElection is ElectLeaders' UNCLEAN election for p: a partition with
// a leader needs none (ELECTION_NOT_NEEDED); an offline one gets its first
// live ISR member, else its first live ELR member, else its first live
// replica with ISR [it], whatever the topic config;
// ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
func uncleanElection(img *image.Image, t *image.Topic, p *image.Partition, live isLive) (record, *apiError) {
	if p.Leader != -1 {
		return record{}, errf(kerr.ElectionNotNeeded, "partition has leader %d", p.Leader)
	}
	pol := policyOf(img, t)
	pol.unclean = true
	st, _ := transition(p, p.ISR, nil, pol, live)
	if st.leader == -1 {
		return record{}, errf(kerr.EligibleLeadersNotAvailable, "no replica of %v is live", p.Replicas)
	}
	rec, _ := changeTo(t, p, st)
	return rec, nil
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
