package kafka

// Authorization of the broker's APIs (Kafka's KafkaApis checks, with the
// resources and operations Kafka's documentation lists per API). With no
// authorizer (Handlers.Authorizer nil) every request goes straight to its
// handler. With one, each API's gate runs first:
//
//   - a request that needs the cluster resource (DescribeCluster, ...) or
//     one group (JoinGroup, ...) and may not is answered with
//     CLUSTER_AUTHORIZATION_FAILED or GROUP_AUTHORIZATION_FAILED without
//     reaching its handler;
//   - a request naming several topics, groups or config resources has the
//     ones the principal may not touch taken out before its handler runs,
//     and answered with TOPIC_AUTHORIZATION_FAILED (or the group's, or the
//     cluster's code) next to the handler's answers;
//   - listings (Metadata for every topic, ListGroups, OffsetFetch of every
//     topic of a group, DescribeTopicPartitions without names) leave out
//     what the principal may not describe.
//
// Fetch checks READ per partition inside its handler (fetch sessions
// re-read partitions across requests); followers' fetches and
// OffsetForLeaderEpoch need CLUSTER_ACTION. Every check reads the current
// image's ACLs, so a change applies at a connected client's next request.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

// gate authorizes req and either answers it (denied) or calls next.
type gate func(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error)

// guard puts g in front of next when an authorizer is configured.
func (h *Handlers) guard(next wire.HandlerFunc, g gate) wire.HandlerFunc {
	return func(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		if h.Authorizer == nil {
			return next(ctx, req)
		}
		return g(h, ctx, req, next)
	}
}

// gates are the gates of the API keys that have one; an API without one
// needs no authorization (ApiVersions, the SASL exchange).
var gates = map[int16]gate{
	0:  gateProduce,
	2:  gateListOffsets,
	3:  gateMetadata,
	8:  gateOffsetCommit,
	9:  gateOffsetFetch,
	10: gateFindCoordinator,
	11: groupGate(func(r kmsg.Request) string { return r.(*kmsg.JoinGroupRequest).Group }),
	12: groupGate(func(r kmsg.Request) string { return r.(*kmsg.HeartbeatRequest).Group }),
	13: groupGate(func(r kmsg.Request) string { return r.(*kmsg.LeaveGroupRequest).Group }),
	14: groupGate(func(r kmsg.Request) string { return r.(*kmsg.SyncGroupRequest).Group }),
	15: gateDescribeGroups,
	16: gateListGroups,
	19: gateCreateTopics,
	20: gateDeleteTopics,
	21: gateDeleteRecords,
	22: gateInitProducerID,
	23: gateOffsetForLeaderEpoch,
	// Brokers (transaction coordinators) write markers.
	27: clusterGate(kmsg.ACLOperationClusterAction),
	29: clusterGate(kmsg.ACLOperationDescribe),
	30: clusterGate(kmsg.ACLOperationAlter),
	31: clusterGate(kmsg.ACLOperationAlter),
	32: gateDescribeConfigs,
	33: gateAlterConfigs,
	35: clusterGate(kmsg.ACLOperationDescribe),
	37: gateCreatePartitions,
	42: gateDeleteGroups,
	43: clusterGate(kmsg.ACLOperationAlter),
	44: gateIncrementalAlterConfigs,
	45: clusterGate(kmsg.ACLOperationAlter),
	46: clusterGate(kmsg.ACLOperationDescribe),
	47: gateOffsetDelete,
	50: clusterGate(kmsg.ACLOperationDescribe),
	51: clusterGate(kmsg.ACLOperationAlter),
	55: clusterGate(kmsg.ACLOperationDescribe),
	60: clusterGate(kmsg.ACLOperationDescribe),
	61: gateDescribeProducers,
	75: gateDescribeTopicPartitions,
}

// allowed asks the authorizer about req's principal and host.
func (h *Handlers) allowed(req *wire.Request, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return h.Authorizer.Allowed(req.Principal, req.Host(), op, rt, name)
}

func (h *Handlers) topicAllowed(req *wire.Request, op kmsg.ACLOperation, topic string) bool {
	return h.allowed(req, op, kmsg.ACLResourceTypeTopic, topic)
}

func (h *Handlers) clusterAllowed(req *wire.Request, op kmsg.ACLOperation) bool {
	return h.allowed(req, op, kmsg.ACLResourceTypeCluster, authz.ClusterName)
}

var (
	topicDenied   = kerr.TopicAuthorizationFailed.Code
	groupDenied   = kerr.GroupAuthorizationFailed.Code
	clusterDenied = kerr.ClusterAuthorizationFailed.Code
)

// clusterGate needs op on the cluster for the whole request.
func clusterGate(op kmsg.ACLOperation) gate {
	return func(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
		if !h.clusterAllowed(req, op) {
			return authz.Denied(req.Body, clusterDenied), nil
		}
		return next(ctx, req)
	}
}

// groupGate needs READ on the request's group.
func groupGate(group func(kmsg.Request) string) gate {
	return func(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
		if !h.allowed(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, group(req.Body)) {
			return authz.Denied(req.Body, groupDenied), nil
		}
		return next(ctx, req)
	}
}

// split keeps in items those allowed says yes to and returns the others.
func split[T any](items *[]T, allowed func(T) bool) (denied []T) {
	kept := (*items)[:0:0]
	for _, it := range *items {
		if allowed(it) {
			kept = append(kept, it)
		} else {
			denied = append(denied, it)
		}
	}
	*items = kept
	return denied
}

func gateProduce(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ProduceRequest)
	denied := split(&r.Topics, func(t kmsg.ProduceRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationWrite, t.Topic)
	})
	if r.TransactionID != nil && !h.allowed(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionID) {
		denied, r.Topics = append(denied, r.Topics...), nil
	}
	resp, err := next(ctx, req)
	if resp == nil || err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.ProduceResponse)
	for _, t := range denied {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = p.Partition, topicDenied, -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

// fetchDenied says whether a consumer's fetch may not read topic (Fetch's
// per-partition check; followers are checked as a whole).
func (h *Handlers) fetchDenied(req *wire.Request, replicaID int32, topic string) bool {
	return h.Authorizer != nil && replicaID < 0 && !h.topicAllowed(req, kmsg.ACLOperationRead, topic)
}

// followerDenied says whether a follower's request (replicaID >= 0) may
// not act as a replica: it needs CLUSTER_ACTION on the cluster.
func (h *Handlers) followerDenied(req *wire.Request, replicaID int32) bool {
	return h.Authorizer != nil && replicaID >= 0 && !h.clusterAllowed(req, kmsg.ACLOperationClusterAction)
}

func gateListOffsets(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ListOffsetsRequest)
	denied := split(&r.Topics, func(t kmsg.ListOffsetsRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationDescribe, t.Topic)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.ListOffsetsResponse)
	for _, t := range denied {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Timestamp, rp.Offset = p.Partition, topicDenied, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateDescribeProducers(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeProducersRequest)
	denied := split(&r.Topics, func(t kmsg.DescribeProducersRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationRead, t.Topic)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.DescribeProducersResponse)
	for _, t := range denied {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateMetadata(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.MetadataRequest)
	img := h.image()
	all := r.Topics == nil
	mayCreateAll := h.clusterAllowed(req, kmsg.ACLOperationCreate)
	denied := split(&r.Topics, func(t kmsg.MetadataRequestTopic) bool {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		} else if tp := img.TopicByID(t.TopicID); tp != nil {
			name = tp.Name
		} else {
			return true // unknown id: the handler answers it
		}
		if !h.topicAllowed(req, kmsg.ACLOperationDescribe, name) {
			return false
		}
		if img.Topics[name] == nil && r.AllowAutoTopicCreation && h.Config.AutoCreateTopics {
			return mayCreateAll || h.topicAllowed(req, kmsg.ACLOperationCreate, name)
		}
		return true
	})
	resp, err := next(ctx, req)
	if err != nil {
		return resp, err
	}
	out := resp.(*kmsg.MetadataResponse)
	if all {
		out.Topics = slices.DeleteFunc(out.Topics, func(t kmsg.MetadataResponseTopic) bool {
			return t.Topic != nil && !h.topicAllowed(req, kmsg.ACLOperationDescribe, *t.Topic)
		})
	}
	for _, t := range denied {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, topicDenied
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateOffsetCommit(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetCommitRequest)
	var denied []kmsg.OffsetCommitRequestTopic
	code := topicDenied
	if !h.allowed(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group) {
		denied, r.Topics, code = r.Topics, nil, groupDenied
	} else {
		denied = split(&r.Topics, func(t kmsg.OffsetCommitRequestTopic) bool {
			return h.topicAllowed(req, kmsg.ACLOperationRead, t.Topic)
		})
	}
	var out *kmsg.OffsetCommitResponse
	if len(r.Topics) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.OffsetCommitResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.OffsetCommitResponse)
	}
	for _, t := range denied {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateOffsetFetch(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetFetchRequest)
	groupOK := func(g string) bool { return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g) }
	topicOK := func(t string) bool { return h.topicAllowed(req, kmsg.ACLOperationDescribe, t) }
	deniedPartition := func(p int32, code int16) kmsg.OffsetFetchResponseTopicPartition {
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, code
		return rp
	}
	if r.Version < 8 {
		if !groupOK(r.Group) {
			out := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			out.ErrorCode = groupDenied
			for _, t := range r.Topics { // v0-v1 have no top-level code
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rt.Partitions = append(rt.Partitions, deniedPartition(p, groupDenied))
				}
				out.Topics = append(out.Topics, rt)
			}
			return out, nil
		}
		all := r.Topics == nil
		denied := split(&r.Topics, func(t kmsg.OffsetFetchRequestTopic) bool { return topicOK(t.Topic) })
		if !all && len(r.Topics) == 0 && len(denied) > 0 {
			r.Topics = []kmsg.OffsetFetchRequestTopic{} // not null: not "every topic"
		}
		resp, err := next(ctx, req)
		if err != nil {
			return resp, err
		}
		out := resp.(*kmsg.OffsetFetchResponse)
		if all {
			out.Topics = slices.DeleteFunc(out.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !topicOK(t.Topic) })
		}
		for _, t := range denied {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, deniedPartition(p, topicDenied))
			}
			out.Topics = append(out.Topics, rt)
		}
		return out, nil
	}
	deniedGroups := split(&r.Groups, func(g kmsg.OffsetFetchRequestGroup) bool { return groupOK(g.Group) })
	deniedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{}
	allTopics := map[string]bool{}
	for i := range r.Groups {
		g := &r.Groups[i]
		allTopics[g.Group] = g.Topics == nil
		wasSet := g.Topics != nil
		deniedTopics[g.Group] = split(&g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) bool { return topicOK(t.Topic) })
		if wasSet && g.Topics == nil {
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
	}
	var out *kmsg.OffsetFetchResponse
	if len(r.Groups) == 0 {
		out = r.ResponseKind().(*kmsg.OffsetFetchResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil {
			return resp, err
		}
		out = resp.(*kmsg.OffsetFetchResponse)
	}
	for i := range out.Groups {
		g := &out.Groups[i]
		if allTopics[g.Group] {
			g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return !topicOK(t.Topic) })
		}
		for _, t := range deniedTopics[g.Group] {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, topicDenied
				rt.Partitions = append(rt.Partitions, rp)
			}
			g.Topics = append(g.Topics, rt)
		}
	}
	for _, g := range deniedGroups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = g.Group, groupDenied
		out.Groups = append(out.Groups, rg)
	}
	return out, nil
}

// coordinatorAllowed: DESCRIBE on the group (key type 0) or on the
// transactional id (1).
func (h *Handlers) coordinatorAllowed(req *wire.Request, keyType int8, key string) (bool, int16) {
	if keyType == 1 {
		return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key),
			kerr.TransactionalIDAuthorizationFailed.Code
	}
	return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key), groupDenied
}

func gateFindCoordinator(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.FindCoordinatorRequest)
	if r.Version < 4 {
		if ok, code := h.coordinatorAllowed(req, r.CoordinatorType, r.CoordinatorKey); !ok {
			out := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
			out.ErrorCode, out.NodeID = code, -1
			return out, nil
		}
		return next(ctx, req)
	}
	codes := map[string]int16{}
	denied := split(&r.CoordinatorKeys, func(k string) bool {
		ok, code := h.coordinatorAllowed(req, r.CoordinatorType, k)
		codes[k] = code
		return ok
	})
	var out *kmsg.FindCoordinatorResponse
	if len(r.CoordinatorKeys) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.FindCoordinatorResponse)
	}
	for _, k := range denied {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.ErrorCode = k, -1, codes[k]
		out.Coordinators = append(out.Coordinators, c)
	}
	return out, nil
}

func gateDescribeGroups(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeGroupsRequest)
	denied := split(&r.Groups, func(g string) bool {
		return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.DescribeGroupsResponse)
	for _, g := range denied {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, groupDenied
		out.Groups = append(out.Groups, rg)
	}
	return out, nil
}

func gateListGroups(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	resp, err := next(ctx, req)
	if err != nil || h.clusterAllowed(req, kmsg.ACLOperationDescribe) {
		return resp, err
	}
	out := resp.(*kmsg.ListGroupsResponse)
	out.Groups = slices.DeleteFunc(out.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
		return !h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, g.Group)
	})
	return out, nil
}

func gateCreateTopics(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	all := h.clusterAllowed(req, kmsg.ACLOperationCreate)
	denied := split(&r.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
		return all || h.topicAllowed(req, kmsg.ACLOperationCreate, t.Topic)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.CreateTopicsResponse)
	for _, t := range denied {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.NumPartitions, rt.ReplicationFactor = t.Topic, topicDenied, -1, -1
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateDeleteTopics(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	img := h.image()
	mayDelete := func(name string) bool { return h.topicAllowed(req, kmsg.ACLOperationDelete, name) }
	deniedNames := split(&r.TopicNames, mayDelete)
	deniedTopics := split(&r.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool {
		if t.Topic != nil {
			return mayDelete(*t.Topic)
		}
		if tp := img.TopicByID(t.TopicID); tp != nil {
			return mayDelete(tp.Name)
		}
		return true // unknown id: the handler answers it
	})
	resp, err := next(ctx, req)
	if err != nil || len(deniedNames)+len(deniedTopics) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.DeleteTopicsResponse)
	for _, name := range deniedNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.ErrorCode = &name, topicDenied
		out.Topics = append(out.Topics, rt)
	}
	for _, t := range deniedTopics {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, topicDenied
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateInitProducerID(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	code := int16(0)
	switch {
	case r.TransactionalID != nil:
		if !h.allowed(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionalID) {
			code = kerr.TransactionalIDAuthorizationFailed.Code
		}
	case h.clusterAllowed(req, kmsg.ACLOperationIdempotentWrite):
	case h.Authorizer.AllowedAny(req.Principal, req.Host(), kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic):
	default:
		code = clusterDenied
	}
	if code != 0 {
		out := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		out.ErrorCode, out.ProducerID, out.ProducerEpoch = code, -1, -1
		return out, nil
	}
	return next(ctx, req)
}

func gateOffsetForLeaderEpoch(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetForLeaderEpochRequest)
	var denied []kmsg.OffsetForLeaderEpochRequestTopic
	code := topicDenied
	if r.ReplicaID >= 0 {
		if !h.clusterAllowed(req, kmsg.ACLOperationClusterAction) {
			denied, r.Topics, code = r.Topics, nil, clusterDenied
		}
	} else {
		denied = split(&r.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) bool {
			return h.topicAllowed(req, kmsg.ACLOperationDescribe, t.Topic)
		})
	}
	var out *kmsg.OffsetForLeaderEpochResponse
	if len(r.Topics) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.OffsetForLeaderEpochResponse)
	}
	for _, t := range denied {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, code, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

// configAllowed: op on the topic for a TOPIC resource, on the cluster for
// the others (BROKER, BROKER_LOGGER); the code to answer when not.
func (h *Handlers) configAllowed(req *wire.Request, op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) (bool, int16) {
	if rt == kmsg.ConfigResourceTypeTopic {
		return h.topicAllowed(req, op, name), topicDenied
	}
	return h.clusterAllowed(req, op), clusterDenied
}

// configGate splits a config request's resources (DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs) by configAllowed for op, runs the
// handler on the allowed ones and answers the others with their code.
func configGate[R any](h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc, op kmsg.ACLOperation,
	resources *[]R, key func(R) (kmsg.ConfigResourceType, string),
	deny func(resp kmsg.Response, rt kmsg.ConfigResourceType, name string, code int16)) (kmsg.Response, error) {
	type denied struct {
		rt   kmsg.ConfigResourceType
		name string
		code int16
	}
	var refused []denied
	kept := (*resources)[:0:0]
	for _, res := range *resources {
		rt, name := key(res)
		if ok, code := h.configAllowed(req, op, rt, name); ok {
			kept = append(kept, res)
		} else {
			refused = append(refused, denied{rt, name, code})
		}
	}
	*resources = kept
	resp, err := next(ctx, req)
	if err != nil {
		return resp, err
	}
	for _, d := range refused {
		deny(resp, d.rt, d.name, d.code)
	}
	return resp, nil
}

func gateDescribeConfigs(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeConfigsRequest)
	return configGate(h, ctx, req, next, kmsg.ACLOperationDescribeConfigs, &r.Resources,
		func(res kmsg.DescribeConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		},
		func(resp kmsg.Response, rt kmsg.ConfigResourceType, name string, code int16) {
			out := resp.(*kmsg.DescribeConfigsResponse)
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rt, name, code
			out.Resources = append(out.Resources, rr)
		})
}

func gateAlterConfigs(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AlterConfigsRequest)
	return configGate(h, ctx, req, next, kmsg.ACLOperationAlterConfigs, &r.Resources,
		func(res kmsg.AlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		},
		func(resp kmsg.Response, rt kmsg.ConfigResourceType, name string, code int16) {
			out := resp.(*kmsg.AlterConfigsResponse)
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rt, name, code
			out.Resources = append(out.Resources, rr)
		})
}

func gateIncrementalAlterConfigs(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	return configGate(h, ctx, req, next, kmsg.ACLOperationAlterConfigs, &r.Resources,
		func(res kmsg.IncrementalAlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
			return res.ResourceType, res.ResourceName
		},
		func(resp kmsg.Response, rt kmsg.ConfigResourceType, name string, code int16) {
			out := resp.(*kmsg.IncrementalAlterConfigsResponse)
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rt, name, code
			out.Resources = append(out.Resources, rr)
		})
}

func gateCreatePartitions(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	denied := split(&r.Topics, func(t kmsg.CreatePartitionsRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationAlter, t.Topic)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.CreatePartitionsResponse)
	for _, t := range denied {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic, rt.ErrorCode = t.Topic, topicDenied
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateDeleteGroups(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteGroupsRequest)
	denied := split(&r.Groups, func(g string) bool {
		return h.allowed(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, g)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.DeleteGroupsResponse)
	for _, g := range denied {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, groupDenied
		out.Groups = append(out.Groups, rg)
	}
	return out, nil
}

func gateOffsetDelete(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetDeleteRequest)
	if !h.allowed(req, kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, r.Group) {
		out := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		out.ErrorCode = groupDenied
		return out, nil
	}
	denied := split(&r.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationRead, t.Topic)
	})
	resp, err := next(ctx, req)
	if err != nil || len(denied) == 0 {
		return resp, err
	}
	out := resp.(*kmsg.OffsetDeleteResponse)
	for _, t := range denied {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateDescribeTopicPartitions(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeTopicPartitionsRequest)
	all := len(r.Topics) == 0
	denied := split(&r.Topics, func(t kmsg.DescribeTopicPartitionsRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationDescribe, t.Topic)
	})
	var out *kmsg.DescribeTopicPartitionsResponse
	if !all && len(r.Topics) == 0 {
		out = r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil {
			return resp, err
		}
		out = resp.(*kmsg.DescribeTopicPartitionsResponse)
	}
	if all {
		out.Topics = slices.DeleteFunc(out.Topics, func(t kmsg.DescribeTopicPartitionsResponseTopic) bool {
			return t.Topic != nil && !h.topicAllowed(req, kmsg.ACLOperationDescribe, *t.Topic)
		})
	}
	for _, t := range denied {
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := t.Topic
		rt.Topic, rt.ErrorCode = &name, topicDenied
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

// gateDeleteRecords needs DELETE on each topic; the others' partitions are
// answered TOPIC_AUTHORIZATION_FAILED.
func gateDeleteRecords(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	denied := split(&r.Topics, func(t kmsg.DeleteRecordsRequestTopic) bool {
		return h.topicAllowed(req, kmsg.ACLOperationDelete, t.Topic)
	})
	var out *kmsg.DeleteRecordsResponse
	if len(r.Topics) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.DeleteRecordsResponse)
	}
	for _, t := range denied {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark, rp.ErrorCode = p.Partition, -1, topicDenied
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}
