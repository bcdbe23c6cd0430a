package controller

// AlterPartitionReassignments (key 45), v0-v1 (KIP-455; v1
// AllowReplicationFactorChange, KIP-860): start, replace or cancel the
// reassignment of partitions (reassign.go has the semantics).
//
// Per partition, in order:
//   - unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
//   - named again in the request: INVALID_REQUEST (the first is decided);
//   - null replicas (cancel) with no reassignment in progress:
//     NO_REASSIGNMENT_IN_PROGRESS;
//   - replicas empty, with a duplicate, or naming a broker that is not
//     registered (a fenced one is fine: it catches up once back):
//     INVALID_REPLICA_ASSIGNMENT;
//   - v1 with AllowReplicationFactorChange false and a target of another
//     size than the original replicas: INVALID_REPLICATION_FACTOR;
//   - a cancel or replacement that would leave no ISR member or no leader:
//     INVALID_REPLICA_ASSIGNMENT.
//
// Every accepted partition of one request is in ONE Raft entry, written
// before the answer (a partition whose replicas would not change writes
// nothing). The non-active controllers forward or answer NOT_CONTROLLER
// (leaderOnly); a failed proposal answers the accepted partitions with
// NOT_CONTROLLER (kafkaError).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleAlterPartitionReassignments(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterPartitionAssignmentsRequest)

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	plan := planReassignments(img, r, ls.live(img, -1))
	resp := plan.resp
	if len(plan.recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, plan.recs); err != nil {
		code, msg := kafkaError(err)
		for _, at := range plan.accepted {
			p := &resp.Topics[at[0]].Partitions[at[1]]
			p.ErrorCode, p.ErrorMessage = code, msg
		}
		c.log.Warn("partition reassignment failed", "partitions", len(plan.recs), "error", err)
		return resp
	}
	c.logMoves(img, c.fsm.current(), plan.recs, "")
	return resp
}

// logMoves logs, for each record of an applied entry that changed a
// partition's replicas or reassignment, what happened to it (started,
// replaced, cancelled, completed); cause names the decision that completed
// a move, "" for a reassignment request.
func (c *Controller) logMoves(before, after *image.Image, recs []record, cause string) {
	for _, rec := range recs {
		x := rec.ChangePartition
		if x == nil || (x.Replicas == nil && x.Adding == nil && x.Removing == nil) {
			continue
		}
		bt, t := before.TopicByID(x.TopicID), after.TopicByID(x.TopicID)
		if bt == nil || t == nil || int(x.Partition) >= len(bt.Partitions) || int(x.Partition) >= len(t.Partitions) {
			continue
		}
		old, p := bt.Partitions[x.Partition], t.Partitions[x.Partition]
		event := "reassignment started"
		switch {
		case reassigning(p) && reassigning(old):
			event = "reassignment replaced"
		case reassigning(p):
		case reassigning(old) && slices.Equal(p.Replicas, targetOf(old)):
			event = "reassignment completed"
		case reassigning(old):
			event = "reassignment cancelled"
		default:
			event = "replicas reordered"
		}
		args := []any{"topic", t.Name, "partition", p.Partition, "previous_replicas", old.Replicas,
			"replicas", p.Replicas, "adding", p.Adding, "removing", p.Removing, "isr", p.ISR,
			"leader", p.Leader, "leader_epoch", p.LeaderEpoch, "partition_epoch", p.PartitionEpoch}
		if cause != "" {
			args = append(args, "by", cause)
		}
		c.log.Info(event, args...)
	}
}

// reassignPlan is AlterPartitionReassignments' decision: the answer, the
// records, and where in the answer each accepted partition sits (topic,
// partition index).
type reassignPlan struct {
	resp     *kmsg.AlterPartitionAssignmentsResponse
	recs     []record
	accepted [][2]int
}

// planReassignments decides an AlterPartitionReassignments request against
// img. It is a pure function.
func planReassignments(img *image.Image, r *kmsg.AlterPartitionAssignmentsRequest, live isLive) reassignPlan {
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	plan := reassignPlan{resp: resp}
	type key struct {
		topic     string
		partition int32
	}
	seen := map[key]bool{}
	for _, rt := range r.Topics {
		ot := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		ot.Topic = rt.Topic
		t := img.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			op.Partition = rp.Partition
			var rec record
			changed := false
			var err *apiError
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				err = errf(kerr.UnknownTopicOrPartition, "topic %q has no partition %d", rt.Topic, rp.Partition)
			case seen[key{rt.Topic, rp.Partition}]:
				err = errf(kerr.InvalidRequest, "partition %d of topic %q is named more than once", rp.Partition, rt.Topic)
			default:
				seen[key{rt.Topic, rp.Partition}] = true
				p := t.Partitions[rp.Partition]
				if rp.Replicas == nil {
					rec, changed, err = cancelDecision(img, t, p, live)
				} else if err = checkTarget(img, p, rp.Replicas, r.Version < 1 || r.AllowReplicationFactorChange); err == nil {
					rec, changed, err = reassignDecision(img, t, p, rp.Replicas, live)
				}
			}
			if err != nil {
				op.ErrorCode, op.ErrorMessage = err.code.Code, kmsg.StringPtr(err.msg)
			} else if changed {
				plan.recs = append(plan.recs, rec)
				plan.accepted = append(plan.accepted, [2]int{len(resp.Topics), len(ot.Partitions)})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return plan
}

// checkTarget validates a reassignment's target replicas for p.
func checkTarget(img *image.Image, p *image.Partition, target []int32, allowRFChange bool) *apiError {
	if len(target) == 0 {
		return errf(kerr.InvalidReplicaAssignment, "the target replica list is empty")
	}
	for i, id := range target {
		if slices.Contains(target[:i], id) {
			return errf(kerr.InvalidReplicaAssignment, "broker %d appears twice in the target replicas %v", id, target)
		}
		if img.Brokers[id] == nil {
			return errf(kerr.InvalidReplicaAssignment, "broker %d of the target replicas %v is not registered", id, target)
		}
	}
	if orig := originalOf(p); !allowRFChange && len(target) != len(orig) {
		return errf(kerr.InvalidReplicationFactor, "the target %v would change the replication factor %d (AllowReplicationFactorChange is false)",
			target, len(orig))
	}
	return nil
}
