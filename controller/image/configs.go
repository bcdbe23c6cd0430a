package image

import (
	"fmt"
	"strconv"
)

// ConfigSource says where an effective config value comes from, with the
// numbering of DescribeConfigs' ConfigSource (v1+).
type ConfigSource int8

// Config sources as Kafka numbers them.
const (
	SourceUnknown       ConfigSource = 0
	SourceTopic         ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceDynamicBroker ConfigSource = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	SourceStaticBroker  ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefault       ConfigSource = 5 // DEFAULT_CONFIG
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
}

// ValidateTopicConfig checks one key and value; the error says what is wrong.
func ValidateTopicConfig(key, value string) error {
	d, ok := TopicConfigDefs[key]
	if !ok {
		return fmt.Errorf("unknown topic config %q", key)
	}
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
	return nil
}
