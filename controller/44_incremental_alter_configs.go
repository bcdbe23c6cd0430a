package controller

// IncrementalAlterConfigs (key 44), v0-v1.
//
// TOPIC resources: the topic must exist (UNKNOWN_TOPIC_OR_PARTITION); SET
// validates the value (INVALID_CONFIG), DELETE returns the config to its
// default; APPEND and SUBTRACT are not supported (INVALID_REQUEST). BROKER
// resources: the cluster-wide default (empty name) takes the broker keys
// that back topic defaults (log.retention.ms, ...) and the dynamic broker
// configs (image.DynamicBrokerConfigDefs: the replication throttle rates),
// stored in image.BrokerConfigs; a resource named by a broker id takes only
// the dynamic broker configs, stored in image.BrokerOverrides for that
// broker. A name that is not a non-negative decimal id -> INVALID_REQUEST
// (Kafka's answer), an id no broker registered with -> INVALID_REQUEST; an
// unknown or non-dynamic key, or a rate that is not a long >= 0 ->
// INVALID_CONFIG. A config named
// twice in a resource, or another resource type -> INVALID_REQUEST. A
// resource is changed all or nothing; every valid resource of a request goes
// into ONE Raft entry, with the ChangePartitions emptying the eligible
// leader replicas of topics whose min.insync.replicas changed (KIP-966's
// ClearElrRecord). ValidateOnly writes nothing. After a change, offline
// partitions that may now elect a leader (unclean.leader.election.enable set
// to true) get one, in a second entry, before the answer.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleIncrementalAlterConfigs(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	var recs []record
	var changed []int
	for i := range r.Resources {
		res := &r.Resources[i]
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		add, err := planConfigChanges(img, res)
		if err != nil {
			rr.ErrorCode, rr.ErrorMessage = kafkaError(err)
		} else if !r.ValidateOnly && len(add) > 0 {
			recs = append(recs, add...)
			changed = append(changed, i)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	if len(recs) == 0 {
		return resp
	}
	// A changed min.insync.replicas voids the ELRs it bounded: cleared in
	// the same entry.
	if after, err := applyEntry(img, img.Index+1, entry{Records: recs}); err == nil {
		recs = append(recs, minInsyncChangeDecision(img, after)...)
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for _, i := range changed {
			resp.Resources[i].ErrorCode, resp.Resources[i].ErrorMessage = code, msg
		}
		c.log.Warn("config change failed", "error", err)
		return resp
	}
	for _, i := range changed {
		res := &r.Resources[i]
		c.log.Info("configs changed", "resource_type", res.ResourceType.String(), "resource", res.ResourceName,
			"changes", len(res.Configs))
	}
	// unclean.leader.election.enable may have become true: offline
	// partitions may get a leader now. Their records follow the config's.
	c.electOfflineLocked(ls, "config change")
	return resp
}

func planConfigChanges(img *image.Image, res *kmsg.IncrementalAlterConfigsRequestResource) ([]record, error) {
	var rtype int8
	switch res.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		rtype = resourceTopic
		if img.Topics[res.ResourceName] == nil {
			return nil, errf(kerr.UnknownTopicOrPartition, "topic %q does not exist", res.ResourceName)
		}
	case kmsg.ConfigResourceTypeBroker:
		rtype = resourceBroker
		if res.ResourceName != "" {
			id, err := metalog.BrokerResourceID(res.ResourceName)
			if err != nil {
				return nil, errf(kerr.InvalidRequest, "broker resource name %q: expected a broker id (a base 10 number >= 0), or empty for the cluster-wide default", res.ResourceName)
			}
			if img.Brokers[id] == nil {
				return nil, errf(kerr.InvalidRequest, "broker %d is not registered", id)
			}
		}
	default:
		return nil, errf(kerr.InvalidRequest, "resource type %s is not supported", res.ResourceType)
	}
	var recs []record
	seen := map[string]bool{}
	for _, cfg := range res.Configs {
		if seen[cfg.Name] {
			return nil, errf(kerr.InvalidRequest, "config %s is named twice", cfg.Name)
		}
		seen[cfg.Name] = true
		x := &configChangeRecord{ResourceType: rtype, ResourceName: res.ResourceName, Key: cfg.Name}
		switch cfg.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if cfg.Value == nil {
				return nil, errf(kerr.InvalidRequest, "config %s: SET needs a value", cfg.Name)
			}
			if err := validateConfig(rtype, res.ResourceName, cfg.Name, *cfg.Value); err != nil {
				return nil, errf(kerr.InvalidConfig, "%v", err)
			}
			x.Value = kmsg.StringPtr(*cfg.Value)
		case kmsg.IncrementalAlterConfigOpDelete:
			if err := validateConfigName(rtype, res.ResourceName, cfg.Name); err != nil {
				return nil, errf(kerr.InvalidConfig, "%v", err)
			}
		default:
			return nil, errf(kerr.InvalidRequest, "config %s: operation %s is not supported; use SET or DELETE", cfg.Name, cfg.Op)
		}
		recs = append(recs, record{Type: typeConfigChange, ConfigChange: x})
	}
	return recs, nil
}

// validateConfig checks a SET of key to value on a resource (name: the
// broker resource's name, "" for the cluster-wide default).
func validateConfig(rtype int8, name, key, value string) error {
	if rtype == resourceBroker {
		if err := validateConfigName(rtype, name, key); err != nil {
			return err
		}
		if _, ok := image.DynamicBrokerConfigDefs[key]; ok {
			return image.ValidateDynamicBrokerConfig(key, value)
		}
		return validateBrokerConfig(key, value)
	}
	return image.ValidateTopicConfig(key, value)
}

func validateConfigName(rtype int8, name, key string) error {
	if rtype == resourceBroker {
		if _, ok := image.DynamicBrokerConfigDefs[key]; ok {
			return nil
		}
		if _, ok := brokerConfigDefs[key]; !ok || name != "" {
			return fmt.Errorf("unknown or non-dynamic broker config %q%s", key, perBrokerHint(name))
		}
		return nil
	}
	if _, ok := image.TopicConfigDefs[key]; !ok {
		return fmt.Errorf("unknown topic config %q", key)
	}
	return nil
}

// perBrokerHint explains, for a per-broker resource, which keys it takes.
func perBrokerHint(name string) string {
	if name == "" {
		return ""
	}
	return " for broker " + name + " (a single broker takes only " + image.LeaderThrottledRateConfig + " and " +
		image.FollowerThrottledRateConfig + "; set other broker configs cluster-wide, with an empty broker name)"
}
