package controller

// CreateTopics (key 19), v2-v7.
//
// Per topic, in order: appears twice in the request -> INVALID_REQUEST; bad
// name (Kafka's rules) or a name colliding with an existing one up to '.' vs
// '_' -> INVALID_TOPIC_EXCEPTION; exists -> TOPIC_ALREADY_EXISTS; bad configs
// -> INVALID_CONFIG (null or repeated -> INVALID_REQUEST). With an explicit
// ReplicaAssignment, NumPartitions and ReplicationFactor must be -1 and the
// lists are validated (INVALID_REPLICA_ASSIGNMENT). Otherwise -1 means the
// controller's DefaultNumPartitions / DefaultReplicationFactor, the latter
// capped at the number of unfenced brokers, with min.insync.replicas=2 for
// a defaulted RF >= 3 (skein's safer default, defaultReplication); partitions
// <= 0 -> INVALID_PARTITIONS; RF <= 0 or above the number of live brokers ->
// INVALID_REPLICATION_FACTOR; replicas are placed round-robin over live
// brokers, rack-aware (placeReplicas). ISR = replicas, leader = first replica.
//
// Every topic created by one request goes into ONE Raft entry; the response
// is sent after it is applied. ValidateOnly checks everything and writes
// nothing. v5+ responses carry the partition count, replication factor and
// the effective configs; v7 the topic id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// topicPlan is a topic a request would create.
type topicPlan struct {
	name       string
	id         [16]byte
	partitions int32
	rf         int16
	configs    map[string]string
	records    []record
}

func (c *Controller) handleCreateTopics(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	counts := map[string]int{}
	for _, t := range r.Topics {
		counts[t.Topic]++
	}

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	live := ls.live(img, -1)
	brokers := liveBrokers(img, live)
	planned := map[string]bool{}
	var recs []record
	var plans []*topicPlan
	var created []int // indexes into resp.Topics
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, -1, -1
		var plan *topicPlan
		var err error
		if counts[t.Topic] > 1 {
			err = errf(kerr.InvalidRequest, "topic %q appears more than once in the request", t.Topic)
		} else {
			plan, err = c.planTopic(img, brokers, live, t, len(img.Topics)+i, planned)
		}
		if err != nil {
			rt.ErrorCode, rt.ErrorMessage = kafkaError(err)
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		rt.NumPartitions, rt.ReplicationFactor = plan.partitions, plan.rf
		rt.Configs = describeNewTopicConfigs(img, plan.configs)
		if !r.ValidateOnly {
			rt.TopicID = plan.id
			recs = append(recs, plan.records...)
			plans = append(plans, plan)
			created = append(created, len(resp.Topics))
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for _, i := range created {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = code, msg
			resp.Topics[i].TopicID = [16]byte{}
		}
		c.log.Warn("topic creation failed", "error", err)
		return resp
	}
	for _, p := range plans {
		c.log.Info("topic created", "topic", p.name, "topic_id", uuidString(p.id), "partitions", p.partitions,
			"replication_factor", p.rf, "configs", len(p.configs))
	}
	return resp
}

func (c *Controller) planTopic(img *image.Image, brokers []*image.Broker, live isLive,
	t *kmsg.CreateTopicsRequestTopic, start int, planned map[string]bool) (*topicPlan, error) {
	if err := validateTopicName(t.Topic); err != nil {
		return nil, err
	}
	if img.Topics[t.Topic] != nil {
		return nil, errf(kerr.TopicAlreadyExists, "topic %q already exists", t.Topic)
	}
	key := collisionKey(t.Topic)
	if planned[key] {
		return nil, errf(kerr.InvalidTopicException, "topic %q collides with another topic of this request ('.' and '_' are the same in metric names)", t.Topic)
	}
	for name := range img.Topics {
		if collisionKey(name) == key {
			return nil, errf(kerr.InvalidTopicException, "topic %q collides with existing topic %q ('.' and '_' are the same in metric names)", t.Topic, name)
		}
	}
	names := make([]string, len(t.Configs))
	values := make([]*string, len(t.Configs))
	for i, cfg := range t.Configs {
		names[i], values[i] = cfg.Name, cfg.Value
	}
	configs, err := topicConfigs(names, values)
	if err != nil {
		return nil, err
	}

	var assignment [][]int32
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return nil, errf(kerr.InvalidRequest, "with a replica assignment, NumPartitions and ReplicationFactor must be -1")
		}
		if len(t.ReplicaAssignment) > maxNewPartitions {
			return nil, errf(kerr.InvalidPartitions, "%d partitions requested, at most %d per request", len(t.ReplicaAssignment), maxNewPartitions)
		}
		assignment = make([][]int32, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(assignment) || assignment[a.Partition] != nil {
				return nil, errf(kerr.InvalidReplicaAssignment, "partitions must be numbered 0..%d, each once; got %d", len(assignment)-1, a.Partition)
			}
			assignment[a.Partition] = a.Replicas
			if a.Replicas == nil {
				assignment[a.Partition] = []int32{}
			}
		}
		if err := validateAssignment(img, assignment, 0); err != nil {
			return nil, err
		}
	} else {
		n, rf := t.NumPartitions, int(t.ReplicationFactor)
		if n == -1 {
			n = c.cfg.DefaultNumPartitions
		}
		if rf == -1 {
			rf = defaultReplication(int(c.cfg.DefaultReplicationFactor), len(brokers), configs)
		}
		switch {
		case n <= 0:
			return nil, errf(kerr.InvalidPartitions, "number of partitions %d must be larger than 0", n)
		case n > maxNewPartitions:
			return nil, errf(kerr.InvalidPartitions, "%d partitions requested, at most %d per request", n, maxNewPartitions)
		case rf <= 0:
			return nil, errf(kerr.InvalidReplicationFactor, "replication factor %d must be larger than 0", rf)
		case rf > len(brokers):
			return nil, errf(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d available (unfenced) brokers", rf, len(brokers))
		}
		assignment = placeReplicas(brokers, 0, n, rf, start)
	}

	id := newTopicID(img)
	recs := []record{{Type: typeCreateTopic, CreateTopic: &createTopicRecord{Name: t.Topic, TopicID: id, Configs: cloneConfigs(configs)}}}
	parts, err := partitionRecords(id, 0, assignment, live)
	if err != nil {
		return nil, err
	}
	planned[key] = true
	return &topicPlan{
		name: t.Topic, id: id, partitions: int32(len(assignment)), rf: int16(len(assignment[0])),
		configs: configs, records: append(recs, parts...),
	}, nil
}

// defaultMinInsyncReplicas is min.insync.replicas of topics whose
// replication factor is defaulted to 3 or more.
const defaultMinInsyncReplicas = "2"

// defaultReplication is the replication factor of a topic created without
// one: the configured default capped at the number of unfenced brokers
// (when there is any). When that is 3 or more and the request sets no
// min.insync.replicas, it sets min.insync.replicas=2 in configs, so that
// acks=all survives one broker loss without ever being acknowledged by a
// single replica (Kafka's cluster default is 1).
func defaultReplication(configured, unfenced int, configs map[string]string) int {
	rf := configured
	if unfenced > 0 {
		rf = min(rf, unfenced)
	}
	if _, set := configs["min.insync.replicas"]; rf >= 3 && !set {
		configs["min.insync.replicas"] = defaultMinInsyncReplicas
	}
	return rf
}

// describeNewTopicConfigs lists every topic config with its effective value
// for a topic with the given explicit configs.
func describeNewTopicConfigs(img *image.Image, configs map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	t := &image.Topic{Configs: configs}
	names := configNames()
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(names))
	for _, name := range names {
		value, source := img.TopicConfig(t, name)
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value, rc.Source = name, kmsg.StringPtr(value), int8(source)
		out = append(out, rc)
	}
	return out
}
