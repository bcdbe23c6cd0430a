package controller

// Partition reassignment (KIP-455), as pure functions of an image.
//
// A reassignment is recorded in the partition itself, in the metadata log:
// while it is in progress the partition's Replicas are the target followed
// by the original replicas not in the target, Adding = target − original and
// Removing = original − target (both non-empty-or-nil, in Replicas order).
// So the original set is Replicas − Adding and the target Replicas −
// Removing, and everything survives a controller failover and broker
// restarts. Brokers open a log for every replica in Replicas: the adding
// ones start outside the ISR, fetch as followers and join the ISR through
// their leader's AlterPartition, like any lagging replica.
//
// Completion: when the ISR holds every target replica, the decision that
// made it so (an AlterPartition, or the reassignment's own entry when that
// is already true, e.g. shrinking the replication factor) also completes
// the move (completeMove): Replicas := target, ISR := ISR ∩ target (= the
// target), ELR and LastKnownELR lose the removed replicas (and are then
// empty), Adding and Removing are cleared, and a leader that leaves is
// replaced by the first live target replica (a leader change: leader epoch
// + 1). The ISR after a completion is the whole target, so it is below
// min.insync.replicas only when the target itself is smaller. A completion
// that would leave the partition without a leader (no target replica live)
// waits.
//
// Cancel (null target): back to the original set (Replicas − Adding, in
// Replicas order, as Kafka), ISR ∩ original, a leader that was an adding
// replica replaced. A new reassignment of a partition already moving
// replaces the old one; its original is the set before the first one.
// A reassignment that changes neither set (a reordering of the replicas)
// just reorders them. A cancel or replacement that would leave no ISR
// member, or no leader where there is one, is refused: the replicas that
// hold the partition's records would be dropped.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
)

// assignment is a partition's replicas and ongoing reassignment.
type assignment struct {
	replicas, adding, removing []int32
}

// reassigning says a reassignment of p is in progress.
func reassigning(p *image.Partition) bool {
	return len(p.Adding) > 0 || len(p.Removing) > 0
}

// targetOf is the replica set p is moving to: its replicas when it is not
// moving.
func targetOf(p *image.Partition) []int32 {
	return minus(p.Replicas, p.Removing)
}

// originalOf is the replica set p had before its reassignment began: its
// replicas when it is not moving.
func originalOf(p *image.Partition) []int32 {
	return minus(p.Replicas, p.Adding)
}

// minus is the members of a not in b, in a's order; nil when none.
func minus(a, b []int32) []int32 {
	var out []int32
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// within is the members of a in b, in a's order; nil when none.
func within(a, b []int32) []int32 {
	var out []int32
	for _, r := range a {
		if slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// containsAll says every member of b is in a.
func containsAll(a, b []int32) bool {
	for _, r := range b {
		if !slices.Contains(a, r) {
			return false
		}
	}
	return true
}

// reshaped is a copy of p with the assignment a: its ISR, ELR and
// last-known ELR keep only a's replicas.
func reshaped(p *image.Partition, a assignment) *image.Partition {
	q := *p
	q.Replicas, q.Adding, q.Removing = a.replicas, a.adding, a.removing
	q.ISR = within(p.ISR, a.replicas)
	q.ELR = within(p.ELR, a.replicas)
	q.LastKnownELR = within(p.LastKnownELR, a.replicas)
	return &q
}

// completeMove is the state completing p's reassignment when st (a
// decision's outcome for p) has every target replica in its ISR, and ok;
// not ok when p is not moving, the target is not all in the ISR, or the
// completion would leave no leader where st has one.
func completeMove(p *image.Partition, st partitionState, dropped []int32, pol policy, live isLive) (partitionState, electionKind, bool) {
	if !reassigning(p) {
		return st, electedNone, false
	}
	target := targetOf(p)
	if !containsAll(st.isr, target) {
		return st, electedNone, false
	}
	a := assignment{replicas: target}
	q := reshaped(p, a)
	done, kind := transitionWithin(q, within(st.isr, target), dropped, pol, live)
	if done.leader == -1 && st.leader != -1 {
		return st, electedNone, false
	}
	done.move = &a
	return done, kind, true
}

// reassignDecision is the record starting (or replacing) the reassignment
// of p to target, which the caller validated (registered brokers, no
// duplicates, not empty). It completes at once when the ISR already holds
// the whole target.
func reassignDecision(img *image.Image, t *image.Topic, p *image.Partition, target []int32, live isLive) (record, bool, *apiError) {
	orig := originalOf(p)
	a := assignment{
		replicas: append(slices.Clone(target), minus(orig, target)...),
		adding:   minus(target, orig),
		removing: minus(orig, target),
	}
	if len(a.adding) == 0 && len(a.removing) == 0 {
		a.replicas = slices.Clone(target) // a reordering, or target = original: nothing moves
	}
	return moveDecision(img, t, p, a, live)
}

// cancelDecision is the record cancelling p's reassignment:
// NO_REASSIGNMENT_IN_PROGRESS when there is none.
func cancelDecision(img *image.Image, t *image.Topic, p *image.Partition, live isLive) (record, bool, *apiError) {
	if !reassigning(p) {
		return record{}, false, errf(kerr.NoReassignmentInProgress, "partition %d of topic %q is not being reassigned", p.Partition, t.Name)
	}
	return moveDecision(img, t, p, assignment{replicas: originalOf(p)}, live)
}

// moveDecision gives p the assignment a, its ISR, ELR and last-known ELR
// restricted to a's replicas, a new leader if the current one leaves or is
// not live, and completes the move if the ISR holds the whole target; and
// whether that changes anything.
func moveDecision(img *image.Image, t *image.Topic, p *image.Partition, a assignment, live isLive) (record, bool, *apiError) {
	q := reshaped(p, a)
	if len(q.ISR) == 0 && len(p.ISR) > 0 {
		return record{}, false, errf(kerr.InvalidReplicaAssignment,
			"no replica of the ISR %v of partition %d of topic %q would be left in %v", p.ISR, p.Partition, t.Name, a.replicas)
	}
	st, _ := transition(q, q.ISR, nil, policyOf(img, t), live)
	if st.leader == -1 && p.Leader != -1 {
		return record{}, false, errf(kerr.InvalidReplicaAssignment,
			"partition %d of topic %q would have no live leader among %v (ISR %v)", p.Partition, t.Name, a.replicas, q.ISR)
	}
	if st.move == nil {
		st.move = &a
	}
	rec, changed := changeTo(t, p, st)
	return rec, changed, nil
}
