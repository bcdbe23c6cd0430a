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
//   - Key type 1 (transaction): INVALID_REQUEST; there is no transaction
//     coordinator (InitProducerId refuses transactional ids too).
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
	if r.CoordinatorType == 0 && h.Groups != nil && needsOffsetsTopic(img) {
		img = h.ensureOffsetsTopic(ctx)
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Port = -1, -1
		c.ErrorCode = h.findCoordinator(img, req.Listener, r.CoordinatorType, key, &c)
		if c.ErrorCode != 0 {
			msg := kerr.ErrorForCode(c.ErrorCode).Error()
			if r.CoordinatorType == 1 {
				msg = "transactions are not supported by this broker"
			}
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
	switch {
	case keyType != 0:
		return kerr.InvalidRequest.Code
	case key == "":
		return kerr.InvalidRequest.Code
	case h.Groups == nil:
		return kerr.CoordinatorNotAvailable.Code
	}
	t := img.Topics[group.OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	p := t.Partitions[group.PartitionFor(key, int32(len(t.Partitions)))]
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
	h.offsetsTopic.mu.Lock()
	defer h.offsetsTopic.mu.Unlock()
	img := h.image()
	if !needsOffsetsTopic(img) {
		return img
	}
	gc := h.Groups.Config()
	live := 0
	for _, b := range img.Brokers {
		if !b.Fenced {
			live++
		}
	}
	rf := int(gc.OffsetsTopicReplicationFactor)
	rf = max(min(rf, live), 1)
	ctx, cancel := context.WithTimeout(ctx, offsetsTopicWait)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(offsetsTopicWait.Milliseconds())
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = group.OffsetsTopic
	t.NumPartitions = gc.OffsetsTopicNumPartitions
	t.ReplicationFactor = int16(rf)
	for k, v := range map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.FormatInt(gc.OffsetsTopicSegmentBytes, 10),
	} {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name = k
		cfg.Value = stringPtr(v)
		t.Configs = append(t.Configs, cfg)
	}
	req.Topics = append(req.Topics, t)
	h.dataLog().Info("creating the offsets topic", "topic", group.OffsetsTopic, "partitions", t.NumPartitions, "replication_factor", rf)
	resp, err := h.forward(ctx, req)
	if err != nil {
		h.dataLog().Warn("offsets topic: controller unreachable", "error", err)
		return h.image()
	}
	if cr, ok := resp.(*kmsg.CreateTopicsResponse); ok {
		for _, rt := range cr.Topics {
			if e := kerr.ErrorForCode(rt.ErrorCode); e != nil && e != kerr.TopicAlreadyExists {
				h.dataLog().Warn("offsets topic creation refused by the controller", "error", e)
				return h.image()
			}
		}
	}
	img, _ = h.waitImage(ctx, func(img *image.Image) bool { return topicReady(img.Topics[group.OffsetsTopic]) })
	return img
}
