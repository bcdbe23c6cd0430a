package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

func aclEntry(id string, rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) image.ACL {
	return image.ACL{ID: id, ResourceType: int8(rt), ResourceName: name, PatternType: int8(pt), Principal: principal,
		Host: "*", Operation: int8(op), Permission: int8(perm)}
}

// setACLs applies the handlers' image again with acls (the next index).
func setACLs(h *Handlers, acls ...image.ACL) {
	img := *h.Partitions.Image()
	img.Index++
	img.ACLs = acls
	h.Partitions.ApplyImage(&img)
}

// serve runs req through the registry, as the wire server would, as
// principal.
func serve(t *testing.T, r *wire.Registry, principal string, req *wire.Request) kmsg.Response {
	t.Helper()
	api, ok := r.Lookup(req.Body.Key())
	if !ok {
		t.Fatalf("key %d not registered", req.Body.Key())
	}
	req.Principal = principal
	resp, err := api.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestAuthorizerGates(t *testing.T) {
	h := newDataHandlers(t)
	h.Authorizer = authz.New(authz.Config{SuperUsers: []string{"User:broker"}}, func() []image.ACL { return h.Partitions.Image().ACLs })
	r := wire.NewRegistry()
	h.Register(r)
	T, lit, pre := kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	setACLs(h,
		aclEntry("1", T, "t", lit, "User:alice", kmsg.ACLOperationWrite, allow),
		aclEntry("2", T, "t", pre, "User:bob", kmsg.ACLOperationRead, allow),
		aclEntry("3", T, "w", lit, "User:bob", kmsg.ACLOperationAll, deny),
		aclEntry("4", T, "w", lit, "User:*", kmsg.ACLOperationRead, allow),
	)
	produceCode := func(who, topic string) int16 {
		resp := serve(t, r, who, produceRequest(9, 1, 1000, topic, 0, batch(2, 10))).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("produce answer %+v", resp.Topics)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	fetchCode := func(who, topic string, replica int32) int16 {
		req := fetchRequest(h, 12, 0, 0, 1<<20, fetchPart{topic: topic, maxBytes: 1 << 20, epoch: -1})
		req.Body.(*kmsg.FetchRequest).ReplicaID = replica
		resp := resolveFetch(t, serve(t, r, who, req))
		if resp.ErrorCode != 0 {
			return resp.ErrorCode
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	// Write without read: alice produces but may not consume.
	if c := produceCode("User:alice", "t"); c != 0 {
		t.Fatalf("alice produce: %v", kerr.ErrorForCode(c))
	}
	if c := fetchCode("User:alice", "t", -1); c != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice fetch: %v", kerr.ErrorForCode(c))
	}
	// Prefixed read: bob consumes but may not produce; nothing is written.
	if c := fetchCode("User:bob", "t", -1); c != 0 {
		t.Fatalf("bob fetch: %v", kerr.ErrorForCode(c))
	}
	p, _ := h.Partitions.Partition("t", 0)
	leo := p.HighWatermark()
	if c := produceCode("User:bob", "t"); c != kerr.TopicAuthorizationFailed.Code || p.HighWatermark() != leo {
		t.Fatalf("bob produce: %v, log end %d -> %d", kerr.ErrorForCode(c), leo, p.HighWatermark())
	}
	// Deny beats allow: User:* may read w, bob is denied everything on it.
	if c := fetchCode("User:carol", "w", -1); c != 0 {
		t.Fatalf("carol fetch w: %v", kerr.ErrorForCode(c))
	}
	if c := fetchCode("User:bob", "w", -1); c != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob fetch w: %v", kerr.ErrorForCode(c))
	}
	// Followers need CLUSTER_ACTION; the super user has it.
	if c := fetchCode("User:alice", "t", 2); c != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alice as a follower: %v", kerr.ErrorForCode(c))
	}
	if c := fetchCode("User:broker", "t", 2); c != 0 {
		t.Fatalf("broker as a follower: %v", kerr.ErrorForCode(c))
	}
	// Metadata lists only what the principal may describe; a named topic
	// it may not is refused.
	md := kmsg.NewPtrMetadataRequest()
	mresp := serve(t, r, "User:alice", request(md, 9)).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 2 { // t (write implies describe) and w (User:* read)
		t.Fatalf("alice sees %d topics", len(mresp.Topics))
	}
	mresp = serve(t, r, "User:eve", request(kmsg.NewPtrMetadataRequest(), 9)).(*kmsg.MetadataResponse)
	for _, tp := range mresp.Topics {
		if *tp.Topic != "w" {
			t.Fatalf("eve sees %s", *tp.Topic)
		}
	}
	md = kmsg.NewPtrMetadataRequest()
	f := "f"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &f}}
	mresp = serve(t, r, "User:alice", request(md, 9)).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice metadata f: %+v", mresp.Topics)
	}
	// DeleteRecords: DELETE on the topic; alice (WRITE only) is refused
	// and the log start stays, the super user deletes.
	deleteRecords := func(who string) (int16, int64) {
		dr := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Offset = -1
		rt.Partitions = append(rt.Partitions, rp)
		dr.Topics, dr.TimeoutMillis = append(dr.Topics, rt), 1000
		resp := serve(t, r, who, request(dr, 2)).(*kmsg.DeleteRecordsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("delete records answer %+v", resp.Topics)
		}
		out := resp.Topics[0].Partitions[0]
		return out.ErrorCode, out.LowWatermark
	}
	if c, _ := deleteRecords("User:alice"); c != kerr.TopicAuthorizationFailed.Code || p.Log().LogStartOffset() != 0 {
		t.Fatalf("alice delete records: %v, log start %d", kerr.ErrorForCode(c), p.Log().LogStartOffset())
	}
	if c, low := deleteRecords("User:broker"); c != 0 || low != p.HighWatermark() || p.Log().LogStartOffset() != low {
		t.Fatalf("broker delete records: %v, low watermark %d, HW %d, log start %d", kerr.ErrorForCode(c), low, p.HighWatermark(), p.Log().LogStartOffset())
	}
	// Groups: no ACL on the group.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType = "g", "consumer"
	if c := serve(t, r, "User:alice", request(jg, 5)).(*kmsg.JoinGroupResponse).ErrorCode; c != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("join: %v", kerr.ErrorForCode(c))
	}
	// Cluster APIs.
	if c := serve(t, r, "User:alice", request(kmsg.NewPtrDescribeClusterRequest(), 0)).(*kmsg.DescribeClusterResponse).ErrorCode; c != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("describe cluster: %v", kerr.ErrorForCode(c))
	}
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = append(ca.Creations, kmsg.NewCreateACLsRequestCreation())
	if res := serve(t, r, "User:alice", request(ca, 2)).(*kmsg.CreateACLsResponse).Results; len(res) != 1 || res[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("create ACLs: %+v", res)
	}
	// Configs: DESCRIBE_CONFIGS on the topic (not implied by WRITE), on
	// the cluster for a broker; refused resources are answered beside the
	// handler's.
	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, res := range []struct {
		rt   kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "t"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = res.rt, res.name
		dc.Resources = append(dc.Resources, rr)
	}
	codes := map[string]int16{}
	for _, res := range serve(t, r, "User:alice", request(dc, 4)).(*kmsg.DescribeConfigsResponse).Resources {
		codes[res.ResourceName] = res.ErrorCode
	}
	if codes["t"] != kerr.TopicAuthorizationFailed.Code || codes["1"] != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("describe configs as alice: %v", codes)
	}
	// Idempotence needs WRITE on some topic (or IDEMPOTENT_WRITE).
	ip := kmsg.NewPtrInitProducerIDRequest()
	if c := serve(t, r, "User:bob", request(ip, 4)).(*kmsg.InitProducerIDResponse).ErrorCode; c != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("bob init producer id: %v", kerr.ErrorForCode(c))
	}
	// An ACL change applies at the next request: deny alice's writes.
	setACLs(h, append(h.Partitions.Image().ACLs, aclEntry("5", T, "t", lit, "User:alice", kmsg.ACLOperationWrite, deny))...)
	if c := produceCode("User:alice", "t"); c != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice produce after deny: %v", kerr.ErrorForCode(c))
	}
}
