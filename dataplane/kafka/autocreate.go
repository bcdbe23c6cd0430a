package kafka

// Auto-creation of topics (auto.create.topics.enable), used by Metadata and
// available to Produce: the broker forwards a CreateTopics with
// num.partitions and default.replication.factor to the active controller,
// then waits, bounded by autoCreateWait, until its image has the topics with
// a leader for every partition.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/group"
)

// autoCreateTopics creates the named topics (valid names unknown to the
// image; the caller checks) and waits for their leaders. It returns a code
// per name: 0 when the topic is ready in the returned image,
// INVALID_TOPIC_EXCEPTION when the controller refuses the name (it collides
// with another up to '.' vs '_'), else LEADER_NOT_AVAILABLE: still being
// created, controller unreachable, or refused for a reason that may pass
// (INVALID_REPLICATION_FACTOR while too few brokers are live); clients retry
// and the refusal is logged. The image returned is the newest one the wait
// saw; answer from it.
func (h *Handlers) autoCreateTopics(ctx context.Context, names []string) (map[string]int16, *image.Image) {
	codes := make(map[string]int16, len(names))
	if h.Groups != nil && slices.Contains(names, group.OffsetsTopic) {
		// The offsets topic is created with the coordinator's settings
		// (offsets.topic.*, compacted), never num.partitions.
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == group.OffsetsTopic })
		codes[group.OffsetsTopic] = kerr.LeaderNotAvailable.Code
		if topicReady(h.ensureOffsetsTopic(ctx).Topics[group.OffsetsTopic]) {
			codes[group.OffsetsTopic] = 0
		}
	}
	if len(names) == 0 {
		return codes, h.image()
	}
	ctx, cancel := context.WithTimeout(ctx, autoCreateWait)
	defer cancel()

	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(autoCreateWait.Milliseconds())
	for _, name := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = name
		t.NumPartitions, t.ReplicationFactor = -1, -1 // the controller's defaults
		if h.Config.NumPartitions > 0 {
			t.NumPartitions = h.Config.NumPartitions
		}
		if h.Config.DefaultReplicationFactor > 0 {
			t.ReplicationFactor = h.Config.DefaultReplicationFactor
		}
		req.Topics = append(req.Topics, t)
		codes[name] = kerr.LeaderNotAvailable.Code
	}
	h.dataLog().Info("auto-creating topics", "topics", names, "partitions", h.Config.NumPartitions, "replication_factor", h.Config.DefaultReplicationFactor)

	resp, err := h.forward(ctx, req)
	if err != nil {
		h.dataLog().Warn("auto-create: controller unreachable", "topics", names, "error", err)
		return codes, h.image()
	}
	cr, ok := resp.(*kmsg.CreateTopicsResponse)
	if !ok {
		h.dataLog().Error("auto-create: unexpected controller response", "type", kmsg.NameForKey(resp.Key()))
		return codes, h.image()
	}
	var waiting []string
	for _, t := range cr.Topics {
		if _, asked := codes[t.Topic]; !asked {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil, err == kerr.TopicAlreadyExists:
			waiting = append(waiting, t.Topic)
		case err == kerr.InvalidTopicException:
			codes[t.Topic] = t.ErrorCode // a name colliding with another
		case kerr.IsRetriable(err):
			// Stays LEADER_NOT_AVAILABLE: the client will ask again.
		default:
			// As in Kafka, the client keeps seeing LEADER_NOT_AVAILABLE
			// (no live brokers yet may be the reason); the operator sees
			// why here.
			h.dataLog().Warn("auto-create refused by the controller", "topic", t.Topic, "error", err)
		}
	}
	if len(waiting) == 0 {
		return codes, h.image()
	}
	img, _ := h.waitImage(ctx, func(img *image.Image) bool {
		for _, name := range waiting {
			if !topicReady(img.Topics[name]) {
				return false
			}
		}
		return true
	})
	for _, name := range waiting {
		if topicReady(img.Topics[name]) {
			codes[name] = 0
		}
	}
	return codes, img
}
