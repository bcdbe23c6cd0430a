package kafka

// FindCoordinator (API key 10), versions 0-4.
//
//   - Key type 0 (group): the coordinator is the leader of partition
//     group.PartitionFor(key, N) of __consumer_offsets. The topic is created
//     on first use (whatever auto.create.topics.enable says) through the
//     controller, with offsets.topic.num.partitions partitions,
//     offsets.topic.replication.factor replicas capped at the live brokers,
//     cleanup.policy=compact and offsets.topic.segment.bytes; until the
//     partition has a live leader the answer is COORDINATOR_NOT_AVAILABLE
//     (retriable).
//   - Key type 1 (transaction): the leader of partition
//     txn.PartitionFor(key, N) of __transaction_state, created on first use
//     the same way with transaction.state.log.num.partitions partitions,
//     transaction.state.log.replication.factor replicas capped at the live
//     brokers, min.insync.replicas transaction.state.log.min.isr (capped at
//     the replication factor), cleanup.policy=compact.
//   - v4 batches keys (CoordinatorKeys, KIP-699); v0-v3 carry one key.
//   - An empty group id: INVALID_REQUEST, as Kafka answers.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/wire"
)

// offsetsTopicWait bounds FindCoordinator's wait for a freshly created
// __consumer_offsets to get leaders; clients retry after that.
const offsetsTopicWait = 3 * time.Second

// offsetsTopicCreator serialises the creation of __consumer_offsets so a
// burst of FindCoordinator requests forwards one CreateTopics.
type offsetsTopicCreator struct {
	mu sync.Mutex
}

func (h *Handlers) handleFindCoordinator(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	resp.Version = r.Version
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	img := h.image()
	switch {
	case r.CoordinatorType == 0 && h.Groups != nil && needsOffsetsTopic(img):
		img = h.ensureOffsetsTopic(ctx)
	case r.CoordinatorType == 1 && h.Txns != nil && img.Topics[txn.StateTopic] == nil:
		img = h.ensureStateTopic(ctx)
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Port = -1, -1
		c.ErrorCode = h.findCoordinator(img, req.Listener, r.CoordinatorType, key, &c)
		if c.ErrorCode != 0 {
			msg := kerr.ErrorForCode(c.ErrorCode).Error()
			c.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if r.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	return resp, nil
}

func (h *Handlers) findCoordinator(img *image.Image, listener string, keyType int8, key string, c *kmsg.FindCoordinatorResponseCoordinator) int16 {
	var t *image.Topic
	var partitionFor func(string, int32) int32
	switch {
	case keyType != 0 && keyType != 1:
		return kerr.InvalidRequest.Code
	case key == "":
		return kerr.InvalidRequest.Code
	case keyType == 0 && h.Groups == nil, keyType == 1 && h.Txns == nil:
		return kerr.CoordinatorNotAvailable.Code
	case keyType == 0:
		t, partitionFor = img.Topics[group.OffsetsTopic], group.PartitionFor
	default:
		t, partitionFor = img.Topics[txn.StateTopic], txn.PartitionFor
	}
	if t == nil || len(t.Partitions) == 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	p := t.Partitions[partitionFor(key, int32(len(t.Partitions)))]
	if p == nil || p.Leader < 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	b := img.Brokers[p.Leader]
	if b == nil || b.Fenced {
		return kerr.CoordinatorNotAvailable.Code
	}
	host, port, ok := b.Endpoint(listener)
	if !ok {
		// The coordinator cannot be reached through this listener (Kafka
		// answers the same when the leader lacks the listener).
		return kerr.CoordinatorNotAvailable.Code
	}
	c.NodeID, c.Host, c.Port = b.ID, host, port
	return 0
}

// needsOffsetsTopic says __consumer_offsets does not exist yet.
func needsOffsetsTopic(img *image.Image) bool {
	return img.Topics[group.OffsetsTopic] == nil
}

// ensureOffsetsTopic creates __consumer_offsets through the controller and
// waits, bounded, for its leaders. It returns the newest image.
func (h *Handlers) ensureOffsetsTopic(ctx context.Context) *image.Image {
	gc := h.Groups.Config()
	return h.ensureInternalTopic(ctx, group.OffsetsTopic, gc.OffsetsTopicNumPartitions, gc.OffsetsTopicReplicationFactor, 0,
		map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  strconv.FormatInt(gc.OffsetsTopicSegmentBytes, 10),
		})
}

// ensureStateTopic creates __transaction_state (see ensureOffsetsTopic).
func (h *Handlers) ensureStateTopic(ctx context.Context) *image.Image {
	tc := h.Txns.Config()
	return h.ensureInternalTopic(ctx, txn.StateTopic, tc.StateLogNumPartitions, tc.StateLogReplicationFactor, tc.StateLogMinISR,
		map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  strconv.FormatInt(tc.StateLogSegmentBytes, 10),
		})
}

// ensureInternalTopic creates an internal topic through the controller
// with rf replicas capped at the live brokers (and min.insync.replicas
// minISR capped at that, when minISR > 0), and waits, bounded, for its
// leaders. It returns the newest image.
func (h *Handlers) ensureInternalTopic(ctx context.Context, name string, partitions int32, replicationFactor int16,
	minISR int, configs map[string]string) *image.Image {
	h.offsetsTopic.mu.Lock()
	defer h.offsetsTopic.mu.Unlock()
	img := h.image()
	if img.Topics[name] != nil {
		return img
	}
	live := 0
	for _, b := range img.Brokers {
		if !b.Fenced {
			live++
		}
	}
	rf := int(replicationFactor)
	rf = max(min(rf, live), 1)
	if minISR > 0 {
		configs["min.insync.replicas"] = strconv.Itoa(min(minISR, rf))
	}
	ctx, cancel := context.WithTimeout(ctx, offsetsTopicWait)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(offsetsTopicWait.Milliseconds())
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = name
	t.NumPartitions = partitions
	t.ReplicationFactor = int16(rf)
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name = k
		cfg.Value = stringPtr(v)
		t.Configs = append(t.Configs, cfg)
	}
	req.Topics = append(req.Topics, t)
	h.dataLog().Info("creating an internal topic", "topic", name, "partitions", t.NumPartitions, "replication_factor", rf)
	resp, err := h.forward(ctx, req)
	if err != nil {
		h.dataLog().Warn("internal topic: controller unreachable", "topic", name, "error", err)
		return h.image()
	}
	if cr, ok := resp.(*kmsg.CreateTopicsResponse); ok {
		for _, rt := range cr.Topics {
			if e := kerr.ErrorForCode(rt.ErrorCode); e != nil && e != kerr.TopicAlreadyExists {
				h.dataLog().Warn("internal topic creation refused by the controller", "topic", name, "error", e)
				return h.image()
			}
		}
	}
	img, _ = h.waitImage(ctx, func(img *image.Image) bool { return topicReady(img.Topics[name]) })
	return img
}
