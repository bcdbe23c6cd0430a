package kafka

// DescribeConfigs (API key 32), versions 1-4, served from this broker's image.
//
//   - TOPIC resources: every topic config Skein knows (image.TopicConfigDefs),
//     sorted by name, with its effective value and source: the topic's own
//     value (DYNAMIC_TOPIC_CONFIG), else a cluster-wide broker default set
//     dynamically (DYNAMIC_DEFAULT_BROKER_CONFIG), else the built-in default
//     (DEFAULT_CONFIG). ConfigNames, when not null, keeps only those names.
//     Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name:
//     INVALID_TOPIC_EXCEPTION.
//   - BROKER resources for this node id or "" (the cluster default): the
//     broker settings this node has (node.id, message.max.bytes,
//     auto.create.topics.enable, num.partitions, default.replication.factor)
//     and the broker-wide defaults of the topic configs (log.retention.ms,
//     ...), and the dynamic broker configs (the replication throttle
//     rates): for this node's id, its own value (DYNAMIC_BROKER_CONFIG)
//     over the cluster-wide one (DYNAMIC_DEFAULT_BROKER_CONFIG) over the
//     default; for "", the cluster-wide one over the default. Another
//     broker's id: INVALID_REQUEST (ask that broker).
//   - IncludeSynonyms (v1+): the value's synonyms from the most to the least
//     specific source (topic override, dynamic broker default, static broker
//     setting, built-in default), named as at each level.
//   - ConfigType (v3+) per entry; Documentation (v3+) when
//     IncludeDocumentation. Nothing is read-only except node.id and nothing
//     is sensitive.
//   - Other resource types: INVALID_REQUEST.

import (
	"context"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeConfigs(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	describeConfigs(resp, h.image(), h.Config, r)
	return resp, nil
}

// describeConfigs fills resp from img and the broker's own settings.
func describeConfigs(resp *kmsg.DescribeConfigsResponse, img *image.Image, cfg Config, r *kmsg.DescribeConfigsRequest) {
	for _, rr := range r.Resources {
		rs := kmsg.NewDescribeConfigsResponseResource()
		rs.ResourceType, rs.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			switch t := img.Topics[rr.ResourceName]; {
			case !validTopicName(rr.ResourceName):
				rs.ErrorCode = kerr.InvalidTopicException.Code
			case t == nil:
				rs.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				entries = topicConfigEntries(img, t)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(cfg.NodeID)) {
				rs.ErrorCode = kerr.InvalidRequest.Code
				rs.ErrorMessage = stringPtr("broker " + strconv.Itoa(int(cfg.NodeID)) + " cannot describe the configs of broker " + rr.ResourceName)
				break
			}
			entries = brokerConfigEntries(img, cfg, rr.ResourceName != "")
		default:
			rs.ErrorCode = kerr.InvalidRequest.Code
			rs.ErrorMessage = stringPtr("unsupported config resource type " + rr.ResourceType.String())
		}
		if rs.ErrorCode != 0 && rs.ErrorMessage == nil {
			rs.ErrorMessage = stringPtr(kerr.ErrorForCode(rs.ErrorCode).Error())
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !containsString(rr.ConfigNames, e.name) {
				continue
			}
			rs.Configs = append(rs.Configs, e.response(r.IncludeSynonyms, r.IncludeDocumentation))
		}
		resp.Resources = append(resp.Resources, rs)
	}
}

// configEntry is one described config: its effective value first in
// synonyms (most specific source first).
type configEntry struct {
	name     string
	typ      image.ConfigType
	doc      string
	readOnly bool
	synonyms []configSynonym
}

type configSynonym struct {
	name   string
	value  string
	source image.ConfigSource
}

func (e configEntry) response(includeSynonyms, includeDoc bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = e.name
	c.ReadOnly = e.readOnly
	c.ConfigType = kmsg.ConfigType(e.typ)
	if len(e.synonyms) > 0 {
		c.Value = stringPtr(e.synonyms[0].value)
		c.Source = kmsg.ConfigSource(e.synonyms[0].source)
	} else {
		c.Source = kmsg.ConfigSourceDefaultConfig
	}
	c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
	if includeSynonyms {
		for _, s := range e.synonyms {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Value, cs.Source = s.name, stringPtr(s.value), kmsg.ConfigSource(s.source)
			c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
		}
	}
	if includeDoc && e.doc != "" {
		c.Documentation = stringPtr(e.doc)
	}
	return c
}

// topicConfigEntries describes every known topic config of t, sorted. The
// first synonym is the effective value, by the same rule as
// image.TopicConfig (a test holds them together).
func topicConfigEntries(img *image.Image, t *image.Topic) []configEntry {
	names := make([]string, 0, len(image.TopicConfigDefs))
	for name := range image.TopicConfigDefs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]configEntry, 0, len(names))
	for _, name := range names {
		def := image.TopicConfigDefs[name]
		e := configEntry{name: name, typ: def.Type, doc: def.Doc}
		if v, ok := t.Configs[name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{name, v, image.SourceTopic})
		}
		brokerName := name
		if def.BrokerKey != "" {
			brokerName = def.BrokerKey
			if v, ok := img.BrokerConfigs[def.BrokerKey]; ok {
				e.synonyms = append(e.synonyms, configSynonym{def.BrokerKey, v, image.SourceDynamicBroker})
			}
		}
		e.synonyms = append(e.synonyms, configSynonym{brokerName, def.Default, image.SourceDefault})
		out = append(out, e)
	}
	return out
}

// Kafka's defaults of the broker settings this node reports.
const (
	kafkaDefaultMessageMaxBytes          = 1048588
	kafkaDefaultNumPartitions            = 1
	kafkaDefaultReplicationFactor        = 1
	kafkaDefaultAutoCreateTopicsEnable   = true
	brokerConfigAutoCreateTopics         = "auto.create.topics.enable"
	brokerConfigNumPartitions            = "num.partitions"
	brokerConfigDefaultReplicationFactor = "default.replication.factor"
	brokerConfigMessageMaxBytes          = "message.max.bytes"
)

// brokerConfigEntries describes the broker's settings, the broker-wide
// defaults of topic configs and the dynamic broker configs (with this
// broker's own values when own, the resource named by its id), sorted by
// name.
func brokerConfigEntries(img *image.Image, cfg Config, own bool) []configEntry {
	byName := map[string]configEntry{}
	// static adds a setting of this node: a dynamic cluster-wide value wins,
	// then the node's own (STATIC_BROKER_CONFIG when it differs from Kafka's
	// default), then the default.
	static := func(name string, typ image.ConfigType, value, dflt, doc string) {
		e := configEntry{name: name, typ: typ, doc: doc}
		if v, ok := img.BrokerConfigs[name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{name, v, image.SourceDynamicBroker})
		}
		if value != dflt {
			e.synonyms = append(e.synonyms, configSynonym{name, value, image.SourceStaticBroker})
		}
		e.synonyms = append(e.synonyms, configSynonym{name, dflt, image.SourceDefault})
		byName[name] = e
	}
	static(brokerConfigMessageMaxBytes, image.TypeInt, strconv.Itoa(int(cfg.MessageMaxBytes)), strconv.Itoa(kafkaDefaultMessageMaxBytes), "largest record batch the broker accepts")
	static(brokerConfigAutoCreateTopics, image.TypeBoolean, strconv.FormatBool(cfg.AutoCreateTopics), strconv.FormatBool(kafkaDefaultAutoCreateTopicsEnable), "create unknown topics on Metadata requests")
	static(brokerConfigNumPartitions, image.TypeInt, strconv.Itoa(int(cfg.NumPartitions)), strconv.Itoa(kafkaDefaultNumPartitions), "partitions of auto-created topics")
	static(brokerConfigDefaultReplicationFactor, image.TypeInt, strconv.Itoa(int(cfg.DefaultReplicationFactor)), strconv.Itoa(kafkaDefaultReplicationFactor), "replication factor of auto-created topics")
	id := strconv.Itoa(int(cfg.NodeID))
	byName["node.id"] = configEntry{name: "node.id", typ: image.TypeInt, readOnly: true, doc: "this node's id",
		synonyms: []configSynonym{{"node.id", id, image.SourceStaticBroker}}}

	for name, def := range image.DynamicBrokerConfigDefs {
		e := configEntry{name: name, typ: def.Type, doc: def.Doc}
		if v, ok := img.BrokerOverrides[cfg.NodeID][name]; ok && own {
			e.synonyms = append(e.synonyms, configSynonym{name, v, image.SourceDynamicPerBroker})
		}
		if v, ok := img.BrokerConfigs[name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{name, v, image.SourceDynamicBroker})
		}
		e.synonyms = append(e.synonyms, configSynonym{name, def.Default, image.SourceDefault})
		byName[name] = e
	}
	for _, def := range image.TopicConfigDefs {
		if def.BrokerKey == "" {
			continue
		}
		if _, done := byName[def.BrokerKey]; done {
			continue
		}
		e := configEntry{name: def.BrokerKey, typ: def.Type, doc: def.Doc}
		if v, ok := img.BrokerConfigs[def.BrokerKey]; ok {
			e.synonyms = append(e.synonyms, configSynonym{def.BrokerKey, v, image.SourceDynamicBroker})
		}
		e.synonyms = append(e.synonyms, configSynonym{def.BrokerKey, def.Default, image.SourceDefault})
		byName[def.BrokerKey] = e
	}
	out := make([]configEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
