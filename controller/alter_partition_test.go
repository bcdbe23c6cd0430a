package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterPartitionMember is a proposed ISR member and its broker epoch.
type alterPartitionMember struct {
	id    int32
	epoch int64
}

// alterPartitionCase is one AlterPartition check on partition
// "1,2,3/1,2/1" (leader epoch 5, partition epoch 7) of electionImage, where
// broker id has epoch id: the request (version, sender), the brokers fenced
// or shutting down, the partition's proposal, and the outcome (top-level
// error, partition error, state after).
type alterPartitionCase struct {
	name           string
	version        int16
	sender         int32
	senderEpoch    int64
	fenced         []int32
	shutting       []int32
	leaderEpoch    int32
	partitionEpoch int32
	isr            []alterPartitionMember
	topLevel       int16
	code           int16
	after          string
}

// alterPartitionCases lists each AlterPartition check, in design.md §2's
// order.
func alterPartitionCases() []alterPartitionCase {
	m := func(ids ...int32) []alterPartitionMember {
		var out []alterPartitionMember
		for _, id := range ids {
			out = append(out, alterPartitionMember{id, int64(id)})
		}
		return out
	}
	return []alterPartitionCase{
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
		{name: "ISR outside the replicas", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7, isr: []alterPartitionMember{{1, 1}, {4, 4}},
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
			isr: []alterPartitionMember{{1, 1}, {2, 2}, {3, 2}}, code: kerr.IneligibleReplica.Code},
		{name: "member epoch -1 is not checked", version: 3, sender: 1, senderEpoch: 1, leaderEpoch: 5, partitionEpoch: 7,
			isr: []alterPartitionMember{{1, 1}, {2, 2}, {3, -1}}, after: "1,2,3/1,2,3/1 e5 p8"},
	}
}

// addAlterPartition appends tc's proposal for partition index to the
// request's only topic (created if needed).
func addAlterPartition(req *kmsg.AlterPartitionRequest, tc alterPartitionCase, index int32) {
	if len(req.Topics) == 0 {
		rt := kmsg.NewAlterPartitionRequestTopic()
		rt.Topic, rt.TopicID = "t", topicA
		req.Topics = append(req.Topics, rt)
	}
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = index, tc.leaderEpoch, tc.partitionEpoch
	for _, x := range tc.isr {
		if tc.version >= 3 {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID, e.BrokerEpoch = x.id, x.epoch
			rp.NewEpochISR = append(rp.NewEpochISR, e)
		} else {
			rp.NewISR = append(rp.NewISR, x.id)
		}
	}
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
}

// newAlterPartitionRequest is an empty request of tc's version and sender.
func newAlterPartitionRequest(tc alterPartitionCase) *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = tc.version, tc.sender, tc.senderEpoch
	return req
}

// TestPlanAlterPartition checks each AlterPartition check alone
// (alterPartitionCases).
func TestPlanAlterPartition(t *testing.T) {
	for _, tc := range alterPartitionCases() {
		t.Run(tc.name, func(t *testing.T) {
			img := electionImage(t, tc.fenced, nil, "1,2,3/1,2/1")
			req := newAlterPartitionRequest(tc)
			addAlterPartition(req, tc, 0)

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

// TestPlanAlterPartitionBatched: the cases of alterPartitionCases that one
// broker can send together (same version, sender and sender epoch, with the
// same brokers fenced or shutting down) go in ONE request, each on its own
// partition of a topic whose partitions are all "1,2,3/1,2/1". Each
// partition gets the answer and the state it gets alone, valid and invalid
// ones mixed; the accepted changes are the records of one entry.
func TestPlanAlterPartitionBatched(t *testing.T) {
	type requestKey struct {
		version          int16
		sender           int32
		senderEpoch      int64
		fenced, shutting string
	}
	groups := map[requestKey][]alterPartitionCase{}
	var keys []requestKey
	for _, tc := range alterPartitionCases() {
		k := requestKey{tc.version, tc.sender, tc.senderEpoch, fmt.Sprint(tc.fenced), fmt.Sprint(tc.shutting)}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], tc)
	}
	const initial = "1,2,3/1,2/1 e5 p7"
	mixed := false
	for _, k := range keys {
		cases := groups[k]
		t.Run(fmt.Sprintf("%+v", k), func(t *testing.T) {
			specs := make([]string, len(cases))
			for i := range specs {
				specs[i] = "1,2,3/1,2/1"
			}
			img := electionImage(t, cases[0].fenced, nil, specs...)
			live := liveExcept(img, cases[0].shutting...)
			req := newAlterPartitionRequest(cases[0])
			for i, tc := range cases {
				addAlterPartition(req, tc, int32(i))
			}
			plan := planAlterPartition(img, req, live)
			if plan.resp.ErrorCode != cases[0].topLevel {
				t.Fatalf("top-level error %v, want %v", kerr.ErrorForCode(plan.resp.ErrorCode), kerr.ErrorForCode(cases[0].topLevel))
			}
			if cases[0].topLevel != 0 {
				if len(plan.recs) != 0 {
					t.Fatalf("records written: %v", plan.recs)
				}
				return
			}
			after := applied(t, img, plan.recs) // one entry
			accepted, changed := 0, 0
			for i, tc := range cases {
				// Alone: the same case as the only partition of a request.
				one := newAlterPartitionRequest(tc)
				addAlterPartition(one, tc, 0)
				oneImg := electionImage(t, tc.fenced, nil, "1,2,3/1,2/1")
				alone := planAlterPartition(oneImg, one, liveExcept(oneImg, tc.shutting...))

				got := plan.resp.Topics[0].Partitions[i]
				if got.Partition != int32(i) || got.ErrorCode != tc.code || got.ErrorCode != alone.resp.Topics[0].Partitions[0].ErrorCode {
					t.Errorf("%s: partition %d error %v, want %v (alone: %v)", tc.name, got.Partition, kerr.ErrorForCode(got.ErrorCode),
						kerr.ErrorForCode(tc.code), kerr.ErrorForCode(alone.resp.Topics[0].Partitions[0].ErrorCode))
				}
				want := initial
				if tc.code == 0 {
					want = tc.after
					accepted++
				}
				if want != initial {
					changed++
				}
				if after[i] != want {
					t.Errorf("%s: partition %d after %s, want %s", tc.name, i, after[i], want)
				}
			}
			if len(plan.accepted) != accepted || len(plan.recs) != changed {
				t.Errorf("%d accepted with %d records, want %d with %d", len(plan.accepted), len(plan.recs), accepted, changed)
			}
			mixed = mixed || (accepted > 0 && accepted < len(cases))
		})
	}
	if !mixed {
		t.Fatal("no batched request mixed accepted and refused partitions")
	}
}
