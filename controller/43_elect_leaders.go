package controller

// ElectLeaders (key 43), v0-v2 (KIP-183; ElectionType since v1, KIP-460).
//
// ElectionType 0, PREFERRED: the first replica leads when it is live and in
// the ISR; ELECTION_NOT_NEEDED when it already leads,
// PREFERRED_LEADER_NOT_AVAILABLE when it is fenced, shutting down or out of
// the ISR. ElectionType 1, UNCLEAN: a partition without a leader gets its
// first live ISR member, else its first live replica (ISR = [it]) whatever
// the topic's unclean.leader.election.enable; ELECTION_NOT_NEEDED when it
// has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
// Another type: INVALID_REQUEST at the top (v1+) and per partition.
//
// Topics null: every partition, and, as Kafka, the answer leaves out the
// partitions that needed no election. Unknown topics or partitions:
// UNKNOWN_TOPIC_OR_PARTITION. A partition named twice is answered once.
// Every election of one request goes into ONE Raft entry, written before
// the answer. TimeoutMillis is the broker's concern (it waits for its image).

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// Kafka's ElectionType values.
const (
	electionPreferred int8 = 0
	electionUnclean   int8 = 1
)

func (c *Controller) handleElectLeaders(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	kind := r.ElectionType
	if r.Version == 0 {
		kind = electionPreferred
	}

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	plan := planElections(img, r.Topics, r.Topics == nil, kind, ls.live(img, -1))
	if kind != electionPreferred && kind != electionUnclean {
		resp.ErrorCode = kerr.InvalidRequest.Code
	}
	resp.Topics = plan.results
	if len(plan.recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, plan.recs); err != nil {
		code, msg := kafkaError(err)
		for _, at := range plan.elected {
			p := &resp.Topics[at[0]].Partitions[at[1]]
			p.ErrorCode, p.ErrorMessage = code, msg
		}
		c.log.Warn("leader election failed", "election", electionName(kind), "partitions", len(plan.recs), "error", err)
		return resp
	}
	c.log.Info("leader election requested", "election", electionName(kind), "partitions", len(plan.recs))
	c.logElections(img, plan.recs)
	return resp
}

// electionPlan is ElectLeaders' decision: the answer, the records, and
// where in the answer each elected partition sits (topic, partition index).
type electionPlan struct {
	results []kmsg.ElectLeadersResponseTopic
	recs    []record
	elected [][2]int
}

// planElections decides an ElectLeaders request of the given kind against
// img; all means every partition (the request's topics were null). It is a
// pure function.
func planElections(img *image.Image, topics []kmsg.ElectLeadersRequestTopic, all bool, kind int8, live isLive) electionPlan {
	var plan electionPlan
	add := func(topic string, partition int32, rec record, err *apiError) {
		if all && err != nil && err.code == kerr.ElectionNotNeeded {
			return
		}
		ti := slices.IndexFunc(plan.results, func(t kmsg.ElectLeadersResponseTopic) bool { return t.Topic == topic })
		if ti < 0 {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = topic
			plan.results = append(plan.results, rt)
			ti = len(plan.results) - 1
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = partition
		if err != nil {
			rp.ErrorCode, rp.ErrorMessage = err.code.Code, kmsg.StringPtr(err.msg)
		} else {
			plan.recs = append(plan.recs, rec)
			plan.elected = append(plan.elected, [2]int{ti, len(plan.results[ti].Partitions)})
		}
		plan.results[ti].Partitions = append(plan.results[ti].Partitions, rp)
	}
	elect := func(t *image.Topic, p *image.Partition) {
		if kind != electionPreferred && kind != electionUnclean {
			add(t.Name, p.Partition, record{}, errf(kerr.InvalidRequest, "unknown election %s", electionName(kind)))
			return
		}
		var rec record
		var err *apiError
		if kind == electionPreferred {
			rec, err = preferredElection(t, p, live)
		} else {
			rec, err = uncleanElection(img, t, p, live)
		}
		add(t.Name, p.Partition, rec, err)
	}

	if all {
		for _, name := range img.TopicNames() {
			t := img.Topics[name]
			for _, p := range t.Partitions {
				elect(t, p)
			}
		}
		return plan
	}
	type key struct {
		topic     string
		partition int32
	}
	seen := map[key]bool{}
	for _, rt := range topics {
		for _, part := range rt.Partitions {
			k := key{rt.Topic, part}
			if seen[k] {
				continue
			}
			seen[k] = true
			t := img.Topics[rt.Topic]
			if t == nil || part < 0 || int(part) >= len(t.Partitions) {
				add(rt.Topic, part, record{}, errf(kerr.UnknownTopicOrPartition, "topic %q has no partition %d", rt.Topic, part))
				continue
			}
			elect(t, t.Partitions[part])
		}
	}
	return plan
}

func electionName(kind int8) string {
	switch kind {
	case electionPreferred:
		return "PREFERRED"
	case electionUnclean:
		return "UNCLEAN"
	}
	return "type " + strconv.Itoa(int(kind))
}
