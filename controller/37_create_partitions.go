package controller

// CreatePartitions (key 37), v0-v3.
//
// Per topic: named twice -> INVALID_REQUEST; unknown ->
// UNKNOWN_TOPIC_OR_PARTITION; Count not above the current count ->
// INVALID_PARTITIONS. An explicit Assignment needs one replica list per new
// partition, each as long as the topic's replication factor, naming
// registered brokers (INVALID_REPLICA_ASSIGNMENT); otherwise the new
// partitions are placed round-robin over live brokers
// (INVALID_REPLICATION_FACTOR when there are fewer than the topic's RF).
// ONE Raft entry per request; ValidateOnly writes nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleCreatePartitions(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	counts := map[string]int{}
	for _, t := range r.Topics {
		counts[t.Topic]++
	}

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	live := ls.live(img, -1)
	brokers := liveBrokers(img, live)
	var recs []record
	var changed []int
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		var add []record
		var err error
		if counts[t.Topic] > 1 {
			err = errf(kerr.InvalidRequest, "topic %q appears more than once in the request", t.Topic)
		} else {
			add, err = planNewPartitions(img, brokers, live, t)
		}
		if err != nil {
			rt.ErrorCode, rt.ErrorMessage = kafkaError(err)
		} else if !r.ValidateOnly {
			recs = append(recs, add...)
			changed = append(changed, i)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for _, i := range changed {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = code, msg
		}
		c.log.Warn("partition creation failed", "error", err)
		return resp
	}
	for _, i := range changed {
		c.log.Info("partitions added", "topic", r.Topics[i].Topic, "partitions", r.Topics[i].Count)
	}
	return resp
}

func planNewPartitions(img *image.Image, brokers []*image.Broker, live isLive, t *kmsg.CreatePartitionsRequestTopic) ([]record, error) {
	topic := img.Topics[t.Topic]
	if topic == nil {
		return nil, errf(kerr.UnknownTopicOrPartition, "topic %q does not exist", t.Topic)
	}
	current := int32(len(topic.Partitions))
	switch {
	case t.Count <= current:
		return nil, errf(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", t.Topic, current, t.Count)
	case t.Count-current > maxNewPartitions:
		return nil, errf(kerr.InvalidPartitions, "%d new partitions requested, at most %d per request", t.Count-current, maxNewPartitions)
	}
	rf := 1
	if current > 0 {
		// The target's size while partition 0 is being reassigned: its
		// replicas are then the target and the replicas leaving.
		rf = len(targetOf(topic.Partitions[0]))
	}
	var assignment [][]int32
	if t.Assignment != nil {
		if int32(len(t.Assignment)) != t.Count-current {
			return nil, errf(kerr.InvalidReplicaAssignment, "%d replica lists given for %d new partitions", len(t.Assignment), t.Count-current)
		}
		for _, a := range t.Assignment {
			assignment = append(assignment, a.Replicas)
		}
		if err := validateAssignment(img, assignment, rf); err != nil {
			return nil, err
		}
	} else {
		if rf > len(brokers) {
			return nil, errf(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d available (unfenced) brokers", rf, len(brokers))
		}
		assignment = placeReplicas(brokers, current, t.Count-current, rf, int(topic.ID[0]))
	}
	return partitionRecords(topic.ID, current, assignment, live)
}
