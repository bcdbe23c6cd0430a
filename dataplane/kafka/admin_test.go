package kafka

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

func describeConfigsReq(t *testing.T, h *Handlers, version int16, synonyms bool, resources ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = synonyms, true
	req.Resources = resources
	resp, err := h.handleDescribeConfigs(context.Background(), request(req, version))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, resp, version)
	return resp.(*kmsg.DescribeConfigsResponse)
}

func configResource(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	r.ConfigNames = keys
	return r
}

func configNamed(cs []kmsg.DescribeConfigsResponseResourceConfig, name string) *kmsg.DescribeConfigsResponseResourceConfig {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func TestDescribeConfigsTopic(t *testing.T) {
	img := metadataImage()
	img.BrokerConfigs["log.segment.bytes"] = "2048"
	h := newImageHandlers(t, img, Config{NodeID: 1})
	for v := int16(1); v <= 4; v++ {
		resp := describeConfigsReq(t, h, v, true, configResource(kmsg.ConfigResourceTypeTopic, "t"))
		rs := resp.Resources[0]
		if rs.ErrorCode != 0 || len(rs.Configs) != len(image.TopicConfigDefs) {
			t.Fatalf("v%d: code %d, %d configs, want %d", v, rs.ErrorCode, len(rs.Configs), len(image.TopicConfigDefs))
		}
		if !slices.IsSortedFunc(rs.Configs, func(a, b kmsg.DescribeConfigsResponseResourceConfig) int {
			return strings.Compare(a.Name, b.Name)
		}) {
			t.Fatalf("v%d: configs not sorted", v)
		}
		// Every entry agrees with the image's rule for effective values.
		for _, c := range rs.Configs {
			want, src := img.TopicConfig(img.Topics["t"], c.Name)
			if c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSource(src) || c.IsSensitive || c.ReadOnly {
				t.Fatalf("v%d %s: got %v source %v, want %q source %v", v, c.Name, c.Value, c.Source, want, src)
			}
			if c.ConfigType != kmsg.ConfigType(image.TopicConfigDefs[c.Name].Type) || c.Documentation == nil {
				t.Fatalf("v%d %s: type %v doc %v", v, c.Name, c.ConfigType, c.Documentation)
			}
			last := c.ConfigSynonyms[len(c.ConfigSynonyms)-1]
			if last.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("v%d %s: last synonym should be the default: %+v", v, c.Name, c.ConfigSynonyms)
			}
		}
		rm := configNamed(rs.Configs, "retention.ms")
		if rm.Source != kmsg.ConfigSourceDynamicTopicConfig || len(rm.ConfigSynonyms) != 2 || rm.ConfigSynonyms[1].Name != "log.retention.ms" {
			t.Fatalf("retention.ms: %+v", rm)
		}
		sb := configNamed(rs.Configs, "segment.bytes")
		if *sb.Value != "2048" || sb.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("segment.bytes: %+v", sb)
		}
		if c := configNamed(rs.Configs, "cleanup.policy"); *c.Value != "delete" || !c.IsDefault {
			t.Fatalf("cleanup.policy: %+v", c)
		}
	}

	resp := describeConfigsReq(t, h, 4, false,
		configResource(kmsg.ConfigResourceTypeTopic, "t", "retention.ms", "no.such.key"),
		configResource(kmsg.ConfigResourceTypeTopic, "nope"),
		configResource(kmsg.ConfigResourceTypeTopic, "bad name"),
		configResource(kmsg.ConfigResourceTypeBrokerLogger, "1"))
	if got := resp.Resources[0].Configs; len(got) != 1 || got[0].Name != "retention.ms" || got[0].ConfigSynonyms != nil {
		t.Fatalf("ConfigNames filter / no synonyms: %+v", got)
	}
	for i, want := range []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.InvalidTopicException.Code, kerr.InvalidRequest.Code} {
		if resp.Resources[i].ErrorCode != want {
			t.Fatalf("resource %d: want code %d, got %d", i, want, resp.Resources[i].ErrorCode)
		}
	}
}

func TestDescribeConfigsBroker(t *testing.T) {
	img := metadataImage()
	img.BrokerConfigs["log.retention.ms"] = "5000"
	h := newImageHandlers(t, img, Config{NodeID: 1, AutoCreateTopics: true, NumPartitions: 3, DefaultReplicationFactor: 1, MessageMaxBytes: 1048588})
	for _, name := range []string{"1", ""} {
		resp := describeConfigsReq(t, h, 4, true, configResource(kmsg.ConfigResourceTypeBroker, name))
		rs := resp.Resources[0]
		if rs.ErrorCode != 0 {
			t.Fatalf("broker %q: code %d", name, rs.ErrorCode)
		}
		want := map[string]struct {
			value  string
			source kmsg.ConfigSource
		}{
			"num.partitions":             {"3", kmsg.ConfigSourceStaticBrokerConfig},
			"default.replication.factor": {"1", kmsg.ConfigSourceDefaultConfig},
			"auto.create.topics.enable":  {"true", kmsg.ConfigSourceDefaultConfig},
			"message.max.bytes":          {"1048588", kmsg.ConfigSourceDefaultConfig},
			"log.retention.ms":           {"5000", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"log.segment.bytes":          {"1073741824", kmsg.ConfigSourceDefaultConfig},
			"node.id":                    {"1", kmsg.ConfigSourceStaticBrokerConfig},
		}
		for key, w := range want {
			c := configNamed(rs.Configs, key)
			if c == nil || c.Value == nil || *c.Value != w.value || c.Source != w.source {
				t.Fatalf("broker %q %s: want %s/%v, got %+v", name, key, w.value, w.source, c)
			}
		}
		if c := configNamed(rs.Configs, "num.partitions"); len(c.ConfigSynonyms) != 2 {
			t.Fatalf("num.partitions synonyms: %+v", c.ConfigSynonyms)
		}
	}
	// The throttle rates: this broker's own value over the cluster-wide one
	// over the default; the cluster-wide resource ("") does not show the
	// broker's own value.
	img.BrokerConfigs["follower.replication.throttled.rate"] = "2000"
	img.BrokerConfigs["leader.replication.throttled.rate"] = "3000"
	img.BrokerOverrides = map[int32]map[string]string{1: {"leader.replication.throttled.rate": "1000"}, 2: {"follower.replication.throttled.rate": "7"}}
	for _, tc := range []struct {
		resource, key string
		synonyms      []kmsg.ConfigSource
		value         string
	}{
		{"1", "leader.replication.throttled.rate", []kmsg.ConfigSource{kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceDefaultConfig}, "1000"},
		{"1", "follower.replication.throttled.rate", []kmsg.ConfigSource{kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceDefaultConfig}, "2000"},
		{"", "leader.replication.throttled.rate", []kmsg.ConfigSource{kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceDefaultConfig}, "3000"},
	} {
		resp := describeConfigsReq(t, h, 4, true, configResource(kmsg.ConfigResourceTypeBroker, tc.resource, tc.key))
		cs := resp.Resources[0].Configs
		if len(cs) != 1 || *cs[0].Value != tc.value || cs[0].Source != tc.synonyms[0] || len(cs[0].ConfigSynonyms) != len(tc.synonyms) ||
			cs[0].ConfigType != kmsg.ConfigTypeLong {
			t.Fatalf("broker %q %s: %+v", tc.resource, tc.key, cs)
		}
		for i, syn := range cs[0].ConfigSynonyms {
			if syn.Source != tc.synonyms[i] || syn.Name != tc.key {
				t.Fatalf("broker %q %s synonym %d: %+v", tc.resource, tc.key, i, syn)
			}
		}
		if last := cs[0].ConfigSynonyms[len(cs[0].ConfigSynonyms)-1]; *last.Value != "9223372036854775807" {
			t.Fatalf("broker %q %s default: %+v", tc.resource, tc.key, last)
		}
	}
	delete(img.BrokerConfigs, "leader.replication.throttled.rate")
	resp := describeConfigsReq(t, h, 4, false, configResource(kmsg.ConfigResourceTypeBroker, "", "leader.replication.throttled.rate"))
	if c := resp.Resources[0].Configs; len(c) != 1 || !c[0].IsDefault || *c[0].Value != "9223372036854775807" {
		t.Fatalf("unset rate: %+v", c)
	}
	resp = describeConfigsReq(t, h, 4, false, configResource(kmsg.ConfigResourceTypeBroker, "2"))
	if resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("another broker's configs: want INVALID_REQUEST, got %d", resp.Resources[0].ErrorCode)
	}
}

// Without a controller client every forwarded admin request answers a
// retriable NOT_CONTROLLER per resource, at the request's version.
func TestAdminRequestsWithoutController(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	ctx := context.Background()
	wantCode := kerr.NotController.Code

	for v := int16(2); v <= 7; v++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 1000
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "x", 1, 1
		req.Topics = append(req.Topics, ct)
		resp, err := h.handleCreateTopics(ctx, request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		cr := resp.(*kmsg.CreateTopicsResponse)
		if cr.Version != v || len(cr.Topics) != 1 || cr.Topics[0].Topic != "x" || cr.Topics[0].ErrorCode != wantCode {
			t.Fatalf("create topics v%d: %+v", v, cr)
		}
	}
	for v := int16(1); v <= 6; v++ {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 1000
		if v < 6 {
			req.TopicNames = []string{"t"}
		} else {
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.TopicID = metaTopicID
			req.Topics = append(req.Topics, dt)
		}
		resp, err := h.handleDeleteTopics(ctx, request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		dr := resp.(*kmsg.DeleteTopicsResponse)
		if len(dr.Topics) != 1 || dr.Topics[0].ErrorCode != wantCode {
			t.Fatalf("delete topics v%d: %+v", v, dr)
		}
		if v < 6 && *dr.Topics[0].Topic != "t" || v == 6 && dr.Topics[0].TopicID != metaTopicID {
			t.Fatalf("delete topics v%d: topic not echoed: %+v", v, dr.Topics[0])
		}
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 1000
		cp := kmsg.NewCreatePartitionsRequestTopic()
		cp.Topic, cp.Count = "t", 4
		req.Topics = append(req.Topics, cp)
		resp, err := h.handleCreatePartitions(ctx, request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		if cr := resp.(*kmsg.CreatePartitionsResponse); len(cr.Topics) != 1 || cr.Topics[0].ErrorCode != wantCode {
			t.Fatalf("create partitions v%d: %+v", v, cr)
		}
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		req.Resources = append(req.Resources, rr)
		resp, err := h.handleIncrementalAlterConfigs(ctx, request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		if ar := resp.(*kmsg.IncrementalAlterConfigsResponse); len(ar.Resources) != 1 || ar.Resources[0].ErrorCode != wantCode || ar.Resources[0].ResourceName != "t" {
			t.Fatalf("incremental alter configs v%d: %+v", v, ar)
		}
	}
}

func TestDeleteTopicsForwardUsesV6Form(t *testing.T) {
	old := kmsg.NewPtrDeleteTopicsRequest()
	old.SetVersion(3)
	old.TopicNames = []string{"a", "b"}
	fwd := deleteTopicsForward(old)
	if fwd.Version != 6 || fwd.TopicNames != nil || len(fwd.Topics) != 2 || *fwd.Topics[1].Topic != "b" {
		t.Fatalf("v3 request: %+v", fwd)
	}
	v6 := kmsg.NewPtrDeleteTopicsRequest()
	v6.SetVersion(6)
	byName, byID := kmsg.NewDeleteTopicsRequestTopic(), kmsg.NewDeleteTopicsRequestTopic()
	byName.Topic, byID.TopicID = kmsg.StringPtr("a"), [16]byte{5}
	v6.Topics = []kmsg.DeleteTopicsRequestTopic{byName, byID}
	fwd = deleteTopicsForward(v6)
	if fwd.TopicNames != nil || len(fwd.Topics) != 2 || *fwd.Topics[0].Topic != "a" || fwd.Topics[1].TopicID != [16]byte{5} {
		t.Fatalf("v6 request: %+v", fwd)
	}
}

func TestAppliedConfigChanges(t *testing.T) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	add := func(typ kmsg.ConfigResourceType, name string, cfgs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = typ, name, cfgs
		req.Resources = append(req.Resources, rr)
	}
	cfg := func(key string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = key, op, value
		return c
	}
	add(kmsg.ConfigResourceTypeTopic, "t",
		cfg("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1000")),
		cfg("segment.ms", kmsg.IncrementalAlterConfigOpDelete, nil),
		cfg("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")))
	add(kmsg.ConfigResourceTypeTopic, "refused", cfg("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1")))
	add(kmsg.ConfigResourceTypeBroker, "", cfg("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("9")))
	add(kmsg.ConfigResourceTypeBroker, "1", cfg("leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("7")))
	add(kmsg.ConfigResourceTypeBroker, "x", cfg("leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("7")))

	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	for _, rr := range req.Resources {
		rs := kmsg.NewIncrementalAlterConfigsResponseResource()
		rs.ResourceType, rs.ResourceName = rr.ResourceType, rr.ResourceName
		if rr.ResourceName == "refused" {
			rs.ErrorCode = kerr.InvalidConfig.Code
		}
		resp.Resources = append(resp.Resources, rs)
	}
	changes := appliedConfigChanges(req, resp)
	if len(changes) != 4 || changes[3].brokerID != 1 {
		t.Fatalf("want set+delete on t, the cluster-wide set and broker 1's, got %+v", changes)
	}
	img := metadataImage() // t has retention.ms=1000 and no segment.ms
	for i, want := range []bool{true, true, false, false} {
		if got := changes[i].visible(img); got != want {
			t.Fatalf("change %d %+v visible=%v, want %v", i, changes[i], got, want)
		}
	}
	img.BrokerConfigs["log.retention.ms"] = "9"
	if !changes[2].visible(img) {
		t.Fatal("cluster-wide change not seen")
	}
	img.BrokerOverrides = map[int32]map[string]string{1: {"leader.replication.throttled.rate": "7"}}
	if !changes[3].visible(img) {
		t.Fatal("per-broker change not seen")
	}
}

func TestTopicSettled(t *testing.T) {
	img := metadataImage()
	tp := img.Topics["t"]
	// Partition 1 has no leader but its only replica (2) is fenced: settled.
	if !topicSettled(img, tp, 2) || topicSettled(img, tp, 3) || topicReady(tp) {
		t.Fatal("settled/ready wrong")
	}
	img.Brokers[2] = &image.Broker{ID: 2}
	if topicSettled(img, tp, 2) {
		t.Fatal("a live replica can still lead: not settled")
	}
	if !topicReady(img.Topics["__consumer_offsets"]) {
		t.Fatal("led topic not ready")
	}
}
