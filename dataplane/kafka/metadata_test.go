package kafka

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

var (
	metaTopicID    = [16]byte{0x10, 1}
	metaInternalID = [16]byte{0x10, 2}
)

// metadataImage has broker 1 (live, rack "r1"), broker 2 (fenced), topic
// "t" with partition 0 led by 1 (replicas 1,2,3: 3 is unknown) and
// partition 1 offline, and the internal topic "__consumer_offsets".
func metadataImage() *image.Image {
	img := image.New()
	img.Index = 7
	img.ClusterID = "cluster-a"
	img.Brokers[1] = &image.Broker{ID: 1, Host: "h1", Port: 9092, Rack: "r1", Epoch: 1}
	img.Brokers[2] = &image.Broker{ID: 2, Host: "h2", Port: 9093, Epoch: 1, Fenced: true}
	img.Topics["t"] = &image.Topic{Name: "t", ID: metaTopicID, Configs: map[string]string{"retention.ms": "1000"}, Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4},
		{Partition: 1, Replicas: []int32{2}, ISR: []int32{}, Leader: -1, LeaderEpoch: 2},
	}}
	img.Topics["__consumer_offsets"] = &image.Topic{Name: "__consumer_offsets", ID: metaInternalID, Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
	}}
	return img
}

// newImageHandlers returns handlers (no controller client) over a real
// partition manager that has applied img.
func newImageHandlers(t *testing.T, img *image.Image, cfg Config) *Handlers {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := partition.NewManager(cfg.NodeID, store, nil)
	t.Cleanup(func() { _ = m.Close() })
	m.ApplyImage(img)
	return &Handlers{Config: cfg, Partitions: m}
}

func metadata(t *testing.T, h *Handlers, version int16, build func(*kmsg.MetadataRequest)) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	build(req)
	resp, err := h.handleMetadata(context.Background(), request(req, version))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, resp, version)
	return resp.(*kmsg.MetadataResponse)
}

// roundTrip encodes resp at version and decodes it again: what the wire
// would send must parse.
func roundTrip(t *testing.T, resp kmsg.Response, version int16) {
	t.Helper()
	resp.SetVersion(version)
	out := kmsg.ResponseForKey(resp.Key())
	out.SetVersion(version)
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("%s v%d does not round-trip: %v", kmsg.NameForKey(resp.Key()), version, err)
	}
}

func topicNamed(ts []kmsg.MetadataResponseTopic, name string) *kmsg.MetadataResponseTopic {
	for i := range ts {
		if ts[i].Topic != nil && *ts[i].Topic == name {
			return &ts[i]
		}
	}
	return nil
}

func TestMetadataAllTopicsEveryVersion(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	for v := int16(0); v <= 12; v++ {
		resp := metadata(t, h, v, func(r *kmsg.MetadataRequest) {
			if v == 0 {
				r.Topics = []kmsg.MetadataRequestTopic{} // v0: empty means all
			}
		})
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "h1" || resp.Brokers[0].Port != 9092 ||
			resp.Brokers[0].Rack == nil || *resp.Brokers[0].Rack != "r1" {
			t.Fatalf("v%d brokers: want only live broker 1, got %+v", v, resp.Brokers)
		}
		if resp.ControllerID != 1 || resp.ClusterID == nil || *resp.ClusterID != "cluster-a" {
			t.Fatalf("v%d controller %d cluster %v", v, resp.ControllerID, resp.ClusterID)
		}
		if len(resp.Topics) != 2 || *resp.Topics[0].Topic != "__consumer_offsets" || *resp.Topics[1].Topic != "t" {
			t.Fatalf("v%d topics not all, sorted: %+v", v, resp.Topics)
		}
		if !resp.Topics[0].IsInternal || resp.Topics[1].IsInternal {
			t.Fatalf("v%d IsInternal wrong", v)
		}
		tt := resp.Topics[1]
		if tt.ErrorCode != 0 || tt.TopicID != metaTopicID || len(tt.Partitions) != 2 || tt.AuthorizedOperations != authorizedOperationsOmitted {
			t.Fatalf("v%d topic t: %+v", v, tt)
		}
		p0, p1 := tt.Partitions[0], tt.Partitions[1]
		if p0.ErrorCode != 0 || p0.Leader != 1 || p0.LeaderEpoch != 4 || !slices.Equal(p0.Replicas, []int32{1, 2, 3}) ||
			!slices.Equal(p0.ISR, []int32{1}) || !slices.Equal(p0.OfflineReplicas, []int32{2, 3}) {
			t.Fatalf("v%d partition 0: %+v", v, p0)
		}
		if p1.ErrorCode != kerr.LeaderNotAvailable.Code || p1.Leader != -1 || p1.Partition != 1 {
			t.Fatalf("v%d offline partition: %+v", v, p1)
		}
	}
}

func TestMetadataEmptyListMeansNoTopicsFromV1(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	resp := metadata(t, h, 1, func(r *kmsg.MetadataRequest) { r.Topics = []kmsg.MetadataRequestTopic{} })
	if len(resp.Topics) != 0 {
		t.Fatalf("v1 empty list: want no topics, got %d", len(resp.Topics))
	}
}

func TestMetadataRequestedTopics(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	named := func(name string) kmsg.MetadataRequestTopic {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		return rt
	}
	byID := func(id [16]byte) kmsg.MetadataRequestTopic {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		return rt
	}
	resp := metadata(t, h, 12, func(r *kmsg.MetadataRequest) {
		r.AllowAutoTopicCreation = true // auto-create is off in the config
		r.Topics = []kmsg.MetadataRequestTopic{named("t"), named("nope"), named("bad/name"), named("t"), byID(metaInternalID), byID([16]byte{9})}
	})
	if len(resp.Topics) != 5 {
		t.Fatalf("want 5 topics (duplicate collapsed), got %d: %+v", len(resp.Topics), resp.Topics)
	}
	check := func(i int, name string, code int16) {
		t.Helper()
		got := resp.Topics[i]
		if got.ErrorCode != code || (name != "" && (got.Topic == nil || *got.Topic != name)) {
			t.Fatalf("topic %d: want %q code %d, got %+v", i, name, code, got)
		}
	}
	check(0, "t", 0)
	check(1, "nope", kerr.UnknownTopicOrPartition.Code)
	check(2, "bad/name", kerr.InvalidTopicException.Code)
	check(3, "__consumer_offsets", 0)
	check(4, "", kerr.UnknownTopicID.Code)
	if resp.Topics[3].TopicID != metaInternalID || resp.Topics[4].TopicID != [16]byte{9} {
		t.Fatal("topic ids not echoed")
	}
}

func TestMetadataAutoCreateWithoutController(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1, AutoCreateTopics: true, NumPartitions: 3, DefaultReplicationFactor: 1})
	resp := metadata(t, h, 9, func(r *kmsg.MetadataRequest) {
		r.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("fresh")
		r.Topics = append(r.Topics, rt)
	})
	if got := topicNamed(resp.Topics, "fresh"); got == nil || got.ErrorCode != kerr.LeaderNotAvailable.Code {
		t.Fatalf("auto-create without a controller: want LEADER_NOT_AVAILABLE (retry), got %+v", got)
	}
}

func TestAutoCreateCandidates(t *testing.T) {
	img := metadataImage()
	req := func(version int16, allow bool, names ...string) *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		r.SetVersion(version)
		r.AllowAutoTopicCreation = allow
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	cases := []struct {
		name    string
		r       *kmsg.MetadataRequest
		enabled bool
		want    []string
	}{
		{"v3 always allows", req(3, false, "a", "t", "a", "bad name"), true, []string{"a"}},
		{"v4 asks not to", req(4, false, "a"), true, nil},
		{"v4 allows", req(4, true, "a", "b"), true, []string{"a", "b"}},
		{"broker disabled", req(12, true, "a"), false, nil},
		{"all topics", req(12, true), true, nil},
		{"v0 all topics", req(0, true), true, nil},
	}
	for _, c := range cases {
		if got := autoCreateCandidates(img, c.r, c.enabled); !slices.Equal(got, c.want) {
			t.Errorf("%s: want %v, got %v", c.name, c.want, got)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'a'
	}
	for name, want := range map[string]bool{
		"t": true, "a.b_c-D9": true, string(long[:249]): true,
		"": false, ".": false, "..": false, "a b": false, "a/b": false, "ü": false, string(long): false,
	} {
		if got := validTopicName(name); got != want {
			t.Errorf("validTopicName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDescribeCluster(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp, err := h.handleDescribeCluster(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		dr := resp.(*kmsg.DescribeClusterResponse)
		if dr.ErrorCode != 0 || dr.ClusterID != "cluster-a" || dr.ControllerID != 1 || len(dr.Brokers) != 1 || dr.Brokers[0].NodeID != 1 ||
			dr.ClusterAuthorizedOperations != authorizedOperationsOmitted {
			t.Fatalf("v%d: %+v", v, dr)
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	resp, _ := h.handleDescribeCluster(context.Background(), request(req, 1))
	if code := resp.(*kmsg.DescribeClusterResponse).ErrorCode; code != kerr.MismatchedEndpointType.Code {
		t.Fatalf("controller endpoints from a broker: want MISMATCHED_ENDPOINT_TYPE, got %d", code)
	}
}
