package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func legacyResource(typ kmsg.ConfigResourceType, name string, kv ...*string) kmsg.AlterConfigsRequestResource {
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = *kv[i], kv[i+1]
		rr.Configs = append(rr.Configs, c)
	}
	return rr
}

type incOp struct {
	op    kmsg.IncrementalAlterConfigOp
	value string // "" for DELETE
}

func incOps(t *testing.T, ir kmsg.IncrementalAlterConfigsRequestResource) map[string]incOp {
	t.Helper()
	out := map[string]incOp{}
	for _, c := range ir.Configs {
		if _, dup := out[c.Name]; dup {
			t.Fatalf("%s named twice in %+v", c.Name, ir)
		}
		o := incOp{op: c.Op}
		if c.Value != nil {
			o.value = *c.Value
		}
		out[c.Name] = o
	}
	return out
}

func TestIncrementalFromLegacy(t *testing.T) {
	img := metadataImage()
	img.Topics["t"].Configs = map[string]string{"retention.ms": "1000", "segment.ms": "5000", "cleanup.policy": "compact"}
	img.BrokerConfigs["log.retention.ms"] = "9000"
	img.BrokerOverrides = map[int32]map[string]string{1: {"leader.replication.throttled.rate": "5", "follower.replication.throttled.rate": "6"}}
	s := kmsg.StringPtr
	set, del := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete

	cases := []struct {
		name string
		in   kmsg.AlterConfigsRequestResource
		want map[string]incOp
	}{
		{"topic: listed set, unlisted deleted, null deletes",
			legacyResource(kmsg.ConfigResourceTypeTopic, "t", s("retention.ms"), s("2000"), s("max.message.bytes"), s("100"), s("segment.ms"), nil),
			map[string]incOp{"retention.ms": {set, "2000"}, "max.message.bytes": {set, "100"}, "segment.ms": {del, ""}, "cleanup.policy": {del, ""}}},
		{"topic: no configs clears all",
			legacyResource(kmsg.ConfigResourceTypeTopic, "t"),
			map[string]incOp{"retention.ms": {del, ""}, "segment.ms": {del, ""}, "cleanup.policy": {del, ""}}},
		{"unknown topic: only the listed ops, the controller answers",
			legacyResource(kmsg.ConfigResourceTypeTopic, "nope", s("retention.ms"), s("1")),
			map[string]incOp{"retention.ms": {set, "1"}}},
		{"cluster-wide broker default",
			legacyResource(kmsg.ConfigResourceTypeBroker, "", s("log.segment.bytes"), s("4096")),
			map[string]incOp{"log.segment.bytes": {set, "4096"}, "log.retention.ms": {del, ""}}},
		{"per-broker name: its own configs not listed are deleted",
			legacyResource(kmsg.ConfigResourceTypeBroker, "1", s("leader.replication.throttled.rate"), s("4096")),
			map[string]incOp{"leader.replication.throttled.rate": {set, "4096"}, "follower.replication.throttled.rate": {del, ""}}},
		{"another broker's name: nothing to delete here",
			legacyResource(kmsg.ConfigResourceTypeBroker, "2", s("leader.replication.throttled.rate"), s("4096")),
			map[string]incOp{"leader.replication.throttled.rate": {set, "4096"}}},
		{"a name that is not a broker id: only the listed ops",
			legacyResource(kmsg.ConfigResourceTypeBroker, "x", s("log.segment.bytes"), s("4096")),
			map[string]incOp{"log.segment.bytes": {set, "4096"}}},
	}
	for _, tc := range cases {
		ir, err := incrementalFromLegacy(img, &tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ir.ResourceType != tc.in.ResourceType || ir.ResourceName != tc.in.ResourceName {
			t.Fatalf("%s: resource %v %q", tc.name, ir.ResourceType, ir.ResourceName)
		}
		got := incOps(t, ir)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		for k, w := range tc.want {
			if got[k] != w {
				t.Fatalf("%s: %s: got %+v, want %+v", tc.name, k, got[k], w)
			}
		}
	}

	dup := legacyResource(kmsg.ConfigResourceTypeTopic, "t", s("retention.ms"), s("1"), s("retention.ms"), s("2"))
	if _, err := incrementalFromLegacy(img, &dup); err == nil {
		t.Fatal("a key named twice was accepted")
	}
}

func TestAlterConfigsWithoutController(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	s := kmsg.StringPtr
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Resources = []kmsg.AlterConfigsRequestResource{
			legacyResource(kmsg.ConfigResourceTypeTopic, "t", s("retention.ms"), s("5")),
			legacyResource(kmsg.ConfigResourceTypeTopic, "dup"),
			legacyResource(kmsg.ConfigResourceTypeTopic, "dup"),
			legacyResource(kmsg.ConfigResourceTypeTopic, "k", s("retention.ms"), s("5"), s("retention.ms"), nil),
		}
		resp, err := h.handleAlterConfigs(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		ar := resp.(*kmsg.AlterConfigsResponse)
		want := []struct {
			name string
			code int16
		}{
			{"t", kerr.NotController.Code},
			{"dup", kerr.InvalidRequest.Code},
			{"dup", kerr.InvalidRequest.Code},
			{"k", kerr.InvalidRequest.Code},
		}
		if ar.Version != v || len(ar.Resources) != len(want) {
			t.Fatalf("v%d: %+v", v, ar)
		}
		for i, w := range want {
			rs := ar.Resources[i]
			if rs.ResourceName != w.name || rs.ResourceType != kmsg.ConfigResourceTypeTopic || rs.ErrorCode != w.code || rs.ErrorMessage == nil {
				t.Fatalf("v%d resource %d: %+v, want %s code %d", v, i, rs, w.name, w.code)
			}
		}
	}
}
