package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPlanAlterPartition checks each AlterPartition check, in design.md §2's
// order, on partition "1,2,3/1,2/1" (leader epoch 5, partition epoch 7) of
// electionImage, where broker id has epoch id.
func TestPlanAlterPartition(t *testing.T) {
	type member struct {
		id    int32
		epoch int64
	}
	m := func(ids ...int32) []member {
		var out []member
		for _, id := range ids {
			out = append(out, member{id, int64(id)})
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		version        int16
		sender         int32
		senderEpoch    int64
		fenced         []int32
		shutting       []int32
		leaderEpoch    int32
		partitionEpoch int32
		isr            []member
		topLevel       int16
		code           int16
		after          string
	}{
		{name: "expand", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2, 3),
			after: "1,2,3/1,2,3/1 e5 p8"},
		{name: "shrink", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: m(1),
			after: "1,2,3/1/1 e5 p8"},
		{name: "no change writes nothing", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2),
			after: "1,2,3/1,2/1 e5 p7"},
		{name: "v0 without member epochs", version: 0, sender: 1, senderEpoch: -1, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 3),
			after: "1,2,3/1,3/1 e5 p8"},
		{name: "stale sender epoch", version: 3, sender: 1, senderEpoch: 9, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2, 3),
			topLevel: kerr.StaleBrokerEpoch.Code},
		{name: "leader epoch ahead", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 6, partitionEpoch: 7, isr: m(1, 2, 3),
			code: kerr.NotController.Code},
		{name: "partition epoch ahead", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 8, isr: m(1, 2, 3),
			code: kerr.NotController.Code},
		{name: "ahead wins over not the leader", version: 3, sender: 2, senderEpoch: 2, leaderEpoch: 6, partitionEpoch: 7, isr: m(2, 3),
			code: kerr.NotController.Code},
		{name: "leader epoch behind", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 4, partitionEpoch: 9, isr: m(1, 2, 3),
			code: kerr.NotController.Code}, // the partition epoch is ahead: checked first
		{name: "leader epoch behind, partition epoch behind", version: 3, sender: 2, senderEpoch: 2, leaderEpoch: 4, partitionEpoch: 6, isr: m(2),
			code: kerr.FencedLeaderEpoch.Code},
		{name: "sender not the leader", version: 3, sender: 2, senderEpoch: 2, leaderEpoch: 5, partitionEpoch: 6, isr: m(2),
			code: kerr.InvalidRequest.Code},
		{name: "partition epoch behind", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 6, isr: m(1, 2, 3),
			code: kerr.InvalidUpdateVersion.Code},
		{name: "ISR without the leader", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: m(2, 3),
			code: kerr.InvalidRequest.Code},
		{name: "ISR outside the replicas", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: []member{{1, 1}, {4, 4}},
			code: kerr.InvalidRequest.Code},
		{name: "ISR with a duplicate", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2, 2),
			code: kerr.InvalidRequest.Code},
		{name: "empty ISR", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: nil,
			code: kerr.InvalidRequest.Code},
		{name: "fenced member", version: 3, sender: 1, senderEpoch: 1, fenced: []int32{3}, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2, 3),
			code: kerr.IneligibleReplica.Code},
		{name: "member in controlled shutdown", version: 3, sender: 1, senderEpoch: 1, shutting: []int32{3}, leaderEpoch: 5, partitionEpoch: 7, isr: m(1, 2, 3),
			code: kerr.IneligibleReplica.Code},
		{name: "re-registered member (broker epoch mismatch)", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7,
			isr: []member{{1, 1}, {2, 2}, {3, 2}}, code: kerr.IneligibleReplica.Code},
		{name: "member epoch -1 is not checked", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7,
			isr: []member{{1, 1}, {2, 2}, {3, -1}}, after: "1,2,3/1,2,3/1 e5 p8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := electionImage(t, tc.fenced, nil, "1,2,3/1,2/1")
			req := kmsg.NewPtrAlterPartitionRequest()
			req.Version, req.BrokerID, req.BrokerEpoch = tc.version, tc.sender, tc.senderEpoch
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.Topic, rt.TopicID = "t", topicA
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = 0, tc.leaderEpoch, tc.partitionEpoch
			for _, x := range tc.isr {
				if tc.version >= 3 {
					e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
					e.BrokerID, e.BrokerEpoch = x.id, x.epoch
					rp.NewEpochISR = append(rp.NewEpochISR, e)
				} else {
					rp.NewISR = append(rp.NewISR, x.id)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)

			plan := planAlterPartition(img, req, liveExcept(img, tc.shutting...))
			if plan.resp.ErrorCode != tc.topLevel {
				t.Fatalf("top-level error %v, want %v", kerr.ErrorForCode(plan.resp.ErrorCode), kerr.ErrorForCode(tc.topLevel))
			}
			if tc.topLevel != 0 {
				if len(plan.recs) != 0 {
					t.Fatalf("records written: %v", plan.recs)
				}
				return
			}
			got := plan.resp.Topics[0].Partitions[0]
			if got.ErrorCode != tc.code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(tc.code))
			}
			if tc.code != 0 {
				if len(plan.recs) != 0 || len(plan.accepted) != 0 {
					t.Fatalf("refused change wrote %d records", len(plan.recs))
				}
				return
			}
			if len(plan.recs) > 1 {
				t.Fatalf("%d records, want at most 1", len(plan.recs))
			}
			if after := applied(t, img, plan.recs); !slices.Equal(after, []string{tc.after}) {
				t.Fatalf("after: %v, want %s", after, tc.after)
			}
		})
	}
}

// TestPlanAlterPartitionUnknown: unknown topic ids, unknown partitions and a
// partition named twice.
func TestPlanAlterPartitionUnknown(t *testing.T) {
	img := electionImage(t, nil, nil, "1,2,3/1,2/1")
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = 2, 1, 1
	part := func(i int32) kmsg.AlterPartitionRequestTopicPartition {
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = i, 5, 7, []int32{1}
		return rp
	}
	known := kmsg.NewAlterPartitionRequestTopic()
	known.TopicID = topicA
	known.Partitions = append(known.Partitions, part(0), part(0), part(3))
	unknown := kmsg.NewAlterPartitionRequestTopic()
	unknown.TopicID = [16]byte{9}
	unknown.Partitions = append(unknown.Partitions, part(0))
	req.Topics = append(req.Topics, known, unknown)
	plan := planAlterPartition(img, req, liveExcept(img))
	var codes []int16
	for _, rt := range plan.resp.Topics {
		for _, p := range rt.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	want := []int16{0, kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code}
	if !slices.Equal(codes, want) || len(plan.recs) != 1 {
		t.Fatalf("codes %v (%d records), want %v (1 record)", codes, len(plan.recs), want)
	}
}
