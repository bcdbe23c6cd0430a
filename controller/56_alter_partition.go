package controller

// AlterPartition (key 56), v0-v3 (KIP-497; topic ids from v2, member
// broker epochs from v3, KIP-903): a partition leader asks to change its ISR.
//
// The sender must be registered with the epoch it names
// (STALE_BROKER_EPOCH for the whole request otherwise; -1 skips the epoch
// check, as Kafka). Then, per partition, in this order (design.md §2):
//   - unknown topic: UNKNOWN_TOPIC_ID (v2+) or UNKNOWN_TOPIC_OR_PARTITION;
//     unknown partition, or a partition named twice: UNKNOWN_TOPIC_OR_PARTITION
//     and INVALID_REQUEST;
//   - leader epoch or partition epoch ahead of ours: NOT_CONTROLLER (this
//     controller is behind; the sender retries);
//   - leader epoch behind: FENCED_LEADER_EPOCH;
//   - sender not the partition's leader: INVALID_REQUEST;
//   - partition epoch behind: INVALID_UPDATE_VERSION;
//   - ISR empty, with a duplicate, not within the replicas, or without the
//     leader: INVALID_REQUEST;
//   - a member fenced, in controlled shutdown, not registered, or whose
//     broker epoch (v3; -1 not checked) is not its registration's:
//     INELIGIBLE_REPLICA.
//
// The accepted partitions of one request are ONE Raft entry, one
// ChangePartition per partition (ISR only: partition epoch + 1, leader epoch
// unchanged), written before the answer. An ISR that brings every target
// replica of a partition being reassigned into the ISR completes the
// reassignment in the same record (reassign.go): replicas, ISR and, if the
// leader leaves, leader (and leader epoch) change with it. An ISR equal to the current one
// writes nothing. Each accepted partition is answered with its state after
// the entry: leader, leader epoch, ISR, partition epoch.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleAlterPartition(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterPartitionRequest)

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	plan := planAlterPartition(img, r, ls.live(img, -1))
	resp := plan.resp
	if resp.ErrorCode != 0 || len(plan.recs) == 0 {
		fillAlterPartitionState(img, resp, plan.accepted)
		return resp
	}
	if _, err := c.propose(ls, plan.recs); err != nil {
		code, _ := kafkaError(err)
		for _, at := range plan.accepted {
			resp.Topics[at[0]].Partitions[at[1]].ErrorCode = code
		}
		c.log.Warn("ISR change failed", "broker", r.BrokerID, "partitions", len(plan.recs), "error", err)
		return resp
	}
	after := c.fsm.current()
	fillAlterPartitionState(after, resp, plan.accepted)
	for _, rec := range plan.recs {
		x := rec.ChangePartition
		t := after.TopicByID(x.TopicID)
		if t == nil || int(x.Partition) >= len(t.Partitions) {
			continue
		}
		p := t.Partitions[x.Partition]
		var old []int32
		if bt := img.TopicByID(x.TopicID); bt != nil && int(x.Partition) < len(bt.Partitions) {
			old = bt.Partitions[x.Partition].ISR
		}
		c.log.Info("ISR changed", "topic", t.Name, "partition", p.Partition, "leader", p.Leader,
			"previous_isr", old, "isr", p.ISR, "leader_epoch", p.LeaderEpoch, "partition_epoch", p.PartitionEpoch)
	}
	c.logMoves(img, after, plan.recs, "AlterPartition")
	return resp
}

// alterPartitionPlan is AlterPartition's decision: the answer (error codes
// set; accepted partitions still to be filled), the records, and where in
// the answer each accepted partition sits (topic, partition index).
type alterPartitionPlan struct {
	resp     *kmsg.AlterPartitionResponse
	recs     []record
	accepted [][2]int
}

// planAlterPartition decides an AlterPartition request against img; live
// says whether a broker is registered, unfenced and not shutting down. It is
// a pure function.
func planAlterPartition(img *image.Image, r *kmsg.AlterPartitionRequest, live isLive) alterPartitionPlan {
	resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
	plan := alterPartitionPlan{resp: resp}
	if b := img.Brokers[r.BrokerID]; b == nil || (r.BrokerEpoch != -1 && b.Epoch != r.BrokerEpoch) {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return plan
	}
	type key struct {
		topic     [16]byte
		partition int32
	}
	seen := map[key]bool{}
	for _, rt := range r.Topics {
		ot := kmsg.NewAlterPartitionResponseTopic()
		ot.Topic, ot.TopidID = rt.Topic, rt.TopicID
		var t *image.Topic
		if r.Version >= 2 {
			t = img.TopicByID(rt.TopicID)
		} else {
			t = img.Topics[rt.Topic]
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderID = -1
			var isr []int32
			var epochs []int64
			if r.Version >= 3 {
				for _, m := range rp.NewEpochISR {
					isr = append(isr, m.BrokerID)
					epochs = append(epochs, m.BrokerEpoch)
				}
			} else {
				isr = slices.Clone(rp.NewISR)
				for range isr {
					epochs = append(epochs, -1)
				}
			}
			var p *image.Partition
			switch {
			case t == nil && r.Version >= 2:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case seen[key{t.ID, rp.Partition}]:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				seen[key{t.ID, rp.Partition}] = true
				p = t.Partitions[rp.Partition]
				if err := checkAlterPartition(img, p, r.BrokerID, rp.LeaderEpoch, rp.PartitionEpoch, isr, epochs, live); err != nil {
					op.ErrorCode = err.Code
					p = nil
				}
			}
			if p != nil {
				plan.accepted = append(plan.accepted, [2]int{len(resp.Topics), len(ot.Partitions)})
				if !slices.Equal(isr, p.ISR) {
					st, _ := transition(p, isr, nil, policyOf(img, t), live)
					if rec, ok := changeTo(t, p, st); ok {
						plan.recs = append(plan.recs, rec)
					}
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return plan
}

// checkAlterPartition applies the per-partition checks, in design.md §2's
// order, to a proposed ISR (with its members' broker epochs, -1 unknown)
// from sender at the given epochs.
func checkAlterPartition(img *image.Image, p *image.Partition, sender, leaderEpoch, partitionEpoch int32,
	isr []int32, epochs []int64, live isLive) *kerr.Error {
	switch {
	case leaderEpoch > p.LeaderEpoch || partitionEpoch > p.PartitionEpoch:
		return kerr.NotController
	case leaderEpoch < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	case sender != p.Leader:
		return kerr.InvalidRequest
	case partitionEpoch < p.PartitionEpoch:
		return kerr.InvalidUpdateVersion
	case len(isr) == 0 || !slices.Contains(isr, p.Leader):
		return kerr.InvalidRequest
	}
	for i, id := range isr {
		if !slices.Contains(p.Replicas, id) || slices.Contains(isr[:i], id) {
			return kerr.InvalidRequest
		}
	}
	for i, id := range isr {
		b := img.Brokers[id]
		if b == nil || !live(id) || (epochs[i] != -1 && epochs[i] != b.Epoch) {
			return kerr.IneligibleReplica
		}
	}
	return nil
}

// fillAlterPartitionState answers each accepted partition with its state in
// img.
func fillAlterPartitionState(img *image.Image, resp *kmsg.AlterPartitionResponse, accepted [][2]int) {
	for _, at := range accepted {
		rt := &resp.Topics[at[0]]
		op := &rt.Partitions[at[1]]
		var t *image.Topic
		if resp.Version >= 2 {
			t = img.TopicByID(rt.TopidID)
		} else {
			t = img.Topics[rt.Topic]
		}
		if t == nil || int(op.Partition) >= len(t.Partitions) {
			op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		p := t.Partitions[op.Partition]
		op.LeaderID, op.LeaderEpoch, op.PartitionEpoch = p.Leader, p.LeaderEpoch, p.PartitionEpoch
		op.ISR = slices.Clone(p.ISR)
	}
}
