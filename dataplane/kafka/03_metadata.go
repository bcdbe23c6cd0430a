package kafka

// Metadata (API key 3), versions 0-12, served from this broker's image.
//
//   - Brokers: the unfenced brokers, with their advertised host, port, rack
//     on the listener the request came in on (Kafka's rule: the listener
//     name of the connection picks the endpoint); a broker without a
//     listener of that name is left out, as are partitions' leaders and
//     replicas on it (they stay listed by id only).
//   - ControllerID: this broker's node id. As in KRaft, admin requests that
//     clients send to "the controller" come to a broker, which forwards them
//     to the active controller (19_, 20_, 37_, 44_).
//   - Topics: all of them when the request's list is null (v1+) or empty
//     (v0); otherwise the requested ones, by name, or by TopicID (v10+, name
//     null). Partitions carry Leader, LeaderEpoch (v7+), Replicas, ISR and
//     OfflineReplicas (v5+: replicas on fenced or unknown brokers); a
//     partition without a leader is LEADER_NOT_AVAILABLE. While a partition
//     is being reassigned (KIP-455) its Replicas are the target followed by
//     the replicas leaving (the same in DescribeTopicPartitions, 75_).
//   - Errors per topic: INVALID_TOPIC_EXCEPTION for a name Kafka would
//     refuse, UNKNOWN_TOPIC_OR_PARTITION for an unknown name,
//     UNKNOWN_TOPIC_ID for an unknown id.
//   - Auto-creation: an unknown, valid name is created when
//     auto.create.topics.enable is on and the request allows it (v4+
//     AllowAutoTopicCreation; v0-3 always allow), never when all topics were
//     asked for. The broker waits a few seconds for the leaders
//     (autocreate.go) and answers LEADER_NOT_AVAILABLE if they are not there
//     yet; clients retry.
//   - Topics whose names start with "__" are flagged IsInternal.
//   - Authorized operations are not computed: -2147483648 (v8+).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// authorizedOperationsOmitted is Kafka's "not requested / not computed"
// value for the authorized-operations bit fields.
const authorizedOperationsOmitted = -2147483648

func (h *Handlers) handleMetadata(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.MetadataRequest)
	img := h.image()
	var created map[string]int16
	if names := autoCreateCandidates(img, r, h.Config.AutoCreateTopics); len(names) > 0 {
		created, img = h.autoCreateTopics(ctx, names)
	}
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	buildMetadata(resp, img, h.Config.NodeID, req.Listener, r, created)
	return resp, nil
}

// allTopicsRequested says the request asks for every topic: a null list
// (v1+) or an empty one (v0).
func allTopicsRequested(r *kmsg.MetadataRequest) bool {
	if r.Version == 0 {
		return len(r.Topics) == 0
	}
	return r.Topics == nil
}

// autoCreateCandidates lists the requested names that are valid, unknown,
// and may be auto-created, without duplicates.
func autoCreateCandidates(img *image.Image, r *kmsg.MetadataRequest, enabled bool) []string {
	if !enabled || allTopicsRequested(r) || (r.Version >= 4 && !r.AllowAutoTopicCreation) {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, rt := range r.Topics {
		if rt.Topic == nil {
			continue
		}
		name := *rt.Topic
		if seen[name] || !validTopicName(name) || img.Topics[name] != nil {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

// buildMetadata fills resp (at r's version) from img, with the brokers'
// addresses on the listener named listener. created holds the outcome of
// auto-creation for the names it tried (see autoCreateTopics).
func buildMetadata(resp *kmsg.MetadataResponse, img *image.Image, nodeID int32, listener string, r *kmsg.MetadataRequest, created map[string]int16) {
	for _, id := range img.BrokerIDs() {
		b := img.Brokers[id]
		if b.Fenced {
			continue
		}
		host, port, ok := b.Endpoint(listener)
		if !ok {
			continue
		}
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.ID, host, port
		rb.Rack = leaderBroker{b}.rack()
		resp.Brokers = append(resp.Brokers, rb)
	}
	if img.ClusterID != "" {
		resp.ClusterID = stringPtr(img.ClusterID)
	}
	resp.ControllerID = nodeID
	resp.AuthorizedOperations = authorizedOperationsOmitted

	if allTopicsRequested(r) {
		for _, name := range img.TopicNames() {
			resp.Topics = append(resp.Topics, metadataTopic(img, img.Topics[name]))
		}
		return
	}
	seenNames := map[string]bool{}
	seenIDs := map[[16]byte]bool{}
	for _, rt := range r.Topics {
		if rt.Topic == nil {
			// v10+: by id.
			if seenIDs[rt.TopicID] {
				continue
			}
			seenIDs[rt.TopicID] = true
			t := img.TopicByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				mt.AuthorizedOperations = authorizedOperationsOmitted
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, metadataTopic(img, t))
			continue
		}
		name := *rt.Topic
		if seenNames[name] {
			continue
		}
		seenNames[name] = true
		if t := img.Topics[name]; t != nil {
			resp.Topics = append(resp.Topics, metadataTopic(img, t))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = stringPtr(name)
		mt.IsInternal = internalTopic(name)
		mt.AuthorizedOperations = authorizedOperationsOmitted
		switch code, tried := created[name]; {
		case !validTopicName(name):
			mt.ErrorCode = kerr.InvalidTopicException.Code
		case tried && code != 0:
			mt.ErrorCode = code
		case tried:
			// Ready in an image newer than img; never happens when img is
			// the one autoCreateTopics returned, but say "retry" if it does.
			mt.ErrorCode = kerr.LeaderNotAvailable.Code
		default:
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}
}

// metadataTopic describes one existing topic.
func metadataTopic(img *image.Image, t *image.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = stringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = internalTopic(t.Name)
	mt.AuthorizedOperations = authorizedOperationsOmitted
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		if p == nil {
			mp.Leader, mp.LeaderEpoch = -1, -1
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mt.Partitions = append(mt.Partitions, mp)
			continue
		}
		mp.Partition = p.Partition
		mp.Leader, mp.LeaderEpoch = p.Leader, p.LeaderEpoch
		// The image is immutable, so its slices can be encoded as they are.
		mp.Replicas, mp.ISR = p.Replicas, p.ISR
		if mp.Replicas == nil {
			mp.Replicas = []int32{}
		}
		if mp.ISR == nil {
			mp.ISR = []int32{}
		}
		mp.OfflineReplicas = offlineReplicas(img, p.Replicas)
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// offlineReplicas are the replicas on brokers that are fenced or not
// registered.
func offlineReplicas(img *image.Image, replicas []int32) []int32 {
	out := []int32{}
	for _, r := range replicas {
		if b := img.Brokers[r]; b == nil || b.Fenced {
			out = append(out, r)
		}
	}
	return out
}
