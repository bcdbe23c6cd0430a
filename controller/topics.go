package controller

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// Shared validation and planning of topics and partitions: pure functions of
// the image and the request, used by CreateTopics and CreatePartitions.

const (
	maxTopicNameLength = 249
	// maxNewPartitions bounds the partitions one request may add, so a typo
	// cannot make the controller build a gigantic entry.
	maxNewPartitions = 10000
)

// validateTopicName applies Kafka's topic name rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errf(kerr.InvalidTopicException, "topic name is empty")
	case name == "." || name == "..":
		return errf(kerr.InvalidTopicException, "topic name cannot be %q", name)
	case len(name) > maxTopicNameLength:
		return errf(kerr.InvalidTopicException, "topic name is %d characters long, the limit is %d", len(name), maxTopicNameLength)
	case name == metalog.Topic:
		return errf(kerr.InvalidTopicException, "%s is reserved", metalog.Topic)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errf(kerr.InvalidTopicException, "topic name %q has the illegal character %q: use ASCII letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// collisionKey maps names that Kafka's metric names cannot tell apart ("a.b"
// and "a_b") to one key.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// liveBrokers returns the brokers that may receive new replicas, sorted by id.
func liveBrokers(img *image.Image, live isLive) []*image.Broker {
	var out []*image.Broker
	for _, id := range img.BrokerIDs() {
		if live(id) {
			out = append(out, img.Brokers[id])
		}
	}
	return out
}

// validateAssignment checks explicit replica lists: each non-empty, without
// duplicates, rf long when rf > 0 (else all the same length), naming
// registered brokers only.
func validateAssignment(img *image.Image, assignment [][]int32, rf int) error {
	for i, replicas := range assignment {
		if len(replicas) == 0 {
			return errf(kerr.InvalidReplicaAssignment, "partition %d has no replicas", i)
		}
		if rf <= 0 {
			rf = len(replicas)
		}
		if len(replicas) != rf {
			return errf(kerr.InvalidReplicaAssignment, "partition %d has %d replicas, expected %d", i, len(replicas), rf)
		}
		seen := map[int32]bool{}
		for _, r := range replicas {
			if seen[r] {
				return errf(kerr.InvalidReplicaAssignment, "partition %d lists broker %d twice", i, r)
			}
			seen[r] = true
			if img.Brokers[r] == nil {
				return errf(kerr.InvalidReplicaAssignment, "partition %d names broker %d, which is not registered", i, r)
			}
		}
	}
	return nil
}

// partitionRecords creates partitions first, first+1, ... of topic id with
// the given replicas: ISR = the live replicas, leader = the first of them,
// epochs 0. A partition without any live replica is an error.
func partitionRecords(id [16]byte, first int32, assignment [][]int32, live isLive) ([]record, error) {
	recs := make([]record, 0, len(assignment))
	for i, replicas := range assignment {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return !live(r) })
		if len(isr) == 0 {
			return nil, errf(kerr.InvalidReplicaAssignment, "every replica of partition %d (%v) is fenced or shutting down", first+int32(i), replicas)
		}
		recs = append(recs, record{Type: typeCreatePartition, CreatePartition: &createPartitionRecord{
			TopicID: id, Partition: first + int32(i), Replicas: slices.Clone(replicas), ISR: isr, Leader: isr[0],
		}})
	}
	return recs, nil
}

// topicConfigs validates the configs of a new topic.
func topicConfigs(names []string, values []*string) (map[string]string, error) {
	out := map[string]string{}
	for i, name := range names {
		if values[i] == nil {
			return nil, errf(kerr.InvalidRequest, "config %s has a null value", name)
		}
		if _, dup := out[name]; dup {
			return nil, errf(kerr.InvalidRequest, "config %s is given twice", name)
		}
		if err := image.ValidateTopicConfig(name, *values[i]); err != nil {
			return nil, errf(kerr.InvalidConfig, "%v", err)
		}
		out[name] = *values[i]
	}
	return out, nil
}

// newTopicID returns a random topic id not used in img.
func newTopicID(img *image.Image) [16]byte {
	for {
		id := uuid.New()
		if img.TopicByID(id) == nil {
			return id
		}
	}
}

// configNames lists the topic config names sorted.
func configNames() []string {
	out := make([]string, 0, len(image.TopicConfigDefs))
	for name := range image.TopicConfigDefs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// brokerConfigDefs maps the cluster-wide broker keys that back topic
// defaults (log.retention.ms, ...) to their topic config's definition.
var brokerConfigDefs = func() map[string]image.ConfigDef {
	out := map[string]image.ConfigDef{}
	for _, d := range image.TopicConfigDefs {
		if d.BrokerKey != "" {
			out[d.BrokerKey] = d
		}
	}
	return out
}()

func validateBrokerConfig(key, value string) error {
	d, ok := brokerConfigDefs[key]
	if !ok {
		return fmt.Errorf("unknown or non-dynamic broker config %q", key)
	}
	return image.ValidateTopicConfig(d.Name, value)
}

func uuidString(id [16]byte) string { return uuid.UUID(id).String() }
