package image

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ConfigSource says where an effective config value comes from, with the
// numbering of DescribeConfigs' ConfigSource (v1+).
type ConfigSource int8

// Config sources as Kafka numbers them.
const (
	SourceUnknown ConfigSource = 0
	SourceTopic   ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	// SourceDynamicPerBroker is a value set for one broker (a BROKER
	// resource named by its id).
	SourceDynamicPerBroker ConfigSource = 2 // DYNAMIC_BROKER_CONFIG
	SourceDynamicBroker    ConfigSource = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	SourceStaticBroker     ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefault          ConfigSource = 5 // DEFAULT_CONFIG
)

// ConfigType is the value type, numbered as DescribeConfigs v3 ConfigType.
type ConfigType int8

// Config value types.
const (
	TypeBoolean ConfigType = 1
	TypeString  ConfigType = 2
	TypeInt     ConfigType = 3
	TypeLong    ConfigType = 5
	TypeDouble  ConfigType = 6
	TypeList    ConfigType = 7
)

// ConfigDef describes one topic-level config Skein understands.
type ConfigDef struct {
	Name    string
	Type    ConfigType
	Default string
	// BrokerKey is the broker-wide default's name (log.retention.ms ...).
	BrokerKey string
	Doc       string
	// Valid, if set, lists the only accepted values.
	Valid []string
	// Check, if set, validates a value (after Valid and Type).
	Check func(value string) error
}

// TopicConfigDefs are the topic configs, Kafka's names and defaults.
var TopicConfigDefs = map[string]ConfigDef{}

func def(name string, t ConfigType, dflt, brokerKey, doc string, valid ...string) {
	TopicConfigDefs[name] = ConfigDef{Name: name, Type: t, Default: dflt, BrokerKey: brokerKey, Doc: doc, Valid: valid}
}

func init() {
	def("cleanup.policy", TypeList, "delete", "log.cleanup.policy", "delete old segments, or compact by key", "delete", "compact", "compact,delete", "delete,compact")
	def("compression.type", TypeString, "producer", "compression.type", "keep the producer's compression", "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
	def("delete.retention.ms", TypeLong, "86400000", "log.cleaner.delete.retention.ms", "how long tombstones are kept after compaction")
	def("file.delete.delay.ms", TypeLong, "60000", "log.segment.delete.delay.ms", "delay before a deleted segment's file is removed")
	def("flush.messages", TypeLong, "9223372036854775807", "log.flush.interval.messages", "fsync after this many records")
	def("flush.ms", TypeLong, "9223372036854775807", "log.flush.interval.ms", "fsync after this long")
	def("index.interval.bytes", TypeInt, "4096", "log.index.interval.bytes", "bytes between offset index entries")
	def("max.compaction.lag.ms", TypeLong, "9223372036854775807", "log.cleaner.max.compaction.lag.ms", "maximum time a record may stay uncompacted")
	def("max.message.bytes", TypeInt, "1048588", "message.max.bytes", "largest record batch accepted")
	def("message.timestamp.type", TypeString, "CreateTime", "log.message.timestamp.type", "CreateTime or LogAppendTime", "CreateTime", "LogAppendTime")
	def("min.cleanable.dirty.ratio", TypeDouble, "0.5", "log.cleaner.min.cleanable.ratio", "dirty ratio that triggers compaction")
	def("min.compaction.lag.ms", TypeLong, "0", "log.cleaner.min.compaction.lag.ms", "minimum age before a record may be compacted")
	def("min.insync.replicas", TypeInt, "1", "min.insync.replicas", "in-sync replicas needed for acks=all")
	def("retention.bytes", TypeLong, "-1", "log.retention.bytes", "bytes kept per partition, -1 unlimited")
	def("retention.ms", TypeLong, "604800000", "log.retention.ms", "time records are kept, -1 forever")
	def("segment.bytes", TypeInt, "1073741824", "log.segment.bytes", "segment file size before rolling")
	def("segment.index.bytes", TypeInt, "10485760", "log.index.size.max.bytes", "largest offset index size")
	def("segment.ms", TypeLong, "604800000", "log.roll.ms", "segment age before rolling")
	def("unclean.leader.election.enable", TypeBoolean, "false", "unclean.leader.election.enable", "elect an out-of-sync replica when no in-sync one is left")
	for _, d := range []ConfigDef{
		{Name: LeaderThrottledReplicasConfig, Type: TypeList,
			Doc: "replicas (partition:broker,... or *) whose replication is throttled on the leader side: a leader listed sends to followers outside the ISR at most leader.replication.throttled.rate"},
		{Name: FollowerThrottledReplicasConfig, Type: TypeList,
			Doc: "replicas (partition:broker,... or *) whose replication is throttled on the follower side: a follower listed fetches them, while not caught up, at most follower.replication.throttled.rate"},
	} {
		d.Check = checkThrottledReplicas
		TopicConfigDefs[d.Name] = d
	}
}

// The replication throttle configs (KIP-73): two topic configs naming the
// throttled replicas and two broker configs bounding their rate.
const (
	LeaderThrottledReplicasConfig   = "leader.replication.throttled.replicas"
	FollowerThrottledReplicasConfig = "follower.replication.throttled.replicas"
	LeaderThrottledRateConfig       = "leader.replication.throttled.rate"
	FollowerThrottledRateConfig     = "follower.replication.throttled.rate"
)

// DynamicBrokerConfigDefs are the broker configs that may be set per broker
// (a BROKER resource named by the broker id, image.BrokerOverrides) as well
// as cluster-wide (image.BrokerConfigs). Kafka's names and defaults.
var DynamicBrokerConfigDefs = map[string]ConfigDef{
	LeaderThrottledRateConfig: {Name: LeaderThrottledRateConfig, Type: TypeLong, Default: "9223372036854775807",
		Doc: "bytes/s a leader sends, in total, for the replicas of leader.replication.throttled.replicas it leads to followers outside the ISR", Check: checkNonNegativeLong},
	FollowerThrottledRateConfig: {Name: FollowerThrottledRateConfig, Type: TypeLong, Default: "9223372036854775807",
		Doc: "bytes/s a follower fetches, in total, for its replicas in follower.replication.throttled.replicas while they are not caught up", Check: checkNonNegativeLong},
}

// ValidateDynamicBrokerConfig checks one key of DynamicBrokerConfigDefs and
// its value.
func ValidateDynamicBrokerConfig(key, value string) error {
	d, ok := DynamicBrokerConfigDefs[key]
	if !ok {
		return fmt.Errorf("unknown or non-dynamic broker config %q", key)
	}
	return validate(d, value)
}

func checkNonNegativeLong(value string) error {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("expected a long >= 0")
	}
	return nil
}

func checkThrottledReplicas(value string) error {
	_, err := ParseThrottledReplicas(value)
	return err
}

// ThrottledReplicas is a parsed leader/follower.replication.throttled.replicas
// value: every replica of the topic (All, "*"), or the listed
// partition:broker pairs ("" lists none).
type ThrottledReplicas struct {
	All   bool
	Pairs []ReplicaRef
}

// ReplicaRef names the replica of a partition on a broker.
type ReplicaRef struct {
	Partition, Broker int32
}

// ParseThrottledReplicas reads a throttled-replicas list as Kafka does: ""
// (none), "*" (all), or comma-separated partition:broker pairs of
// non-negative decimal ids, blanks around each pair ignored (an empty item
// is skipped).
func ParseThrottledReplicas(value string) (ThrottledReplicas, error) {
	v := strings.TrimSpace(value)
	if v == "*" {
		return ThrottledReplicas{All: true}, nil
	}
	var out ThrottledReplicas
	if v == "" {
		return out, nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, b, ok := strings.Cut(item, ":")
		pn, perr := parseID(p)
		bn, berr := parseID(b)
		if !ok || perr != nil || berr != nil {
			return ThrottledReplicas{}, fmt.Errorf("%q is not partition:broker; expected \"*\" or a list like 0:101,1:102", item)
		}
		out.Pairs = append(out.Pairs, ReplicaRef{Partition: pn, Broker: bn})
	}
	return out, nil
}

// parseID reads a non-negative decimal int32 (digits only).
func parseID(s string) (int32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err
}

// Has says whether the replica of partition on broker is listed.
func (r ThrottledReplicas) Has(partition, broker int32) bool {
	if r.All {
		return true
	}
	for _, x := range r.Pairs {
		if x.Partition == partition && x.Broker == broker {
			return true
		}
	}
	return false
}

// Partitions returns the partitions whose replica on broker is listed: all
// of them (all true), or those in parts (sorted, deduplicated; nil when
// none).
func (r ThrottledReplicas) Partitions(broker int32) (all bool, parts []int32) {
	if r.All {
		return true, nil
	}
	for _, x := range r.Pairs {
		if x.Broker == broker && !slices.Contains(parts, x.Partition) {
			parts = append(parts, x.Partition)
		}
	}
	slices.Sort(parts)
	return false, parts
}

// ValidateTopicConfig checks one key and value; the error says what is wrong.
func ValidateTopicConfig(key, value string) error {
	d, ok := TopicConfigDefs[key]
	if !ok {
		return fmt.Errorf("unknown topic config %q", key)
	}
	return validate(d, value)
}

func validate(d ConfigDef, value string) error {
	key := d.Name
	if len(d.Valid) > 0 {
		for _, v := range d.Valid {
			if v == value {
				return nil
			}
		}
		return fmt.Errorf("invalid value %q for %s: expected one of %v", value, key, d.Valid)
	}
	switch d.Type {
	case TypeInt:
		if _, err := strconv.ParseInt(value, 10, 32); err != nil {
			return fmt.Errorf("invalid value %q for %s: expected an int", value, key)
		}
	case TypeLong:
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return fmt.Errorf("invalid value %q for %s: expected a long", value, key)
		}
	case TypeDouble:
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return fmt.Errorf("invalid value %q for %s: expected a number", value, key)
		}
	case TypeBoolean:
		if value != "true" && value != "false" {
			return fmt.Errorf("invalid value %q for %s: expected true or false", value, key)
		}
	}
	if d.Check != nil {
		if err := d.Check(value); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", value, key, err)
		}
	}
	return nil
}
