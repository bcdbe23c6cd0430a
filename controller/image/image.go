// Package image is the cluster metadata image: the one small type that the
// controller (which writes it through Raft) and the brokers (which read it)
// share.
//
// # Immutability
//
// An *Image handed out by the controller or by the broker's metadata client
// is immutable, and so is everything it points to (topics, partitions,
// brokers, maps, slices): never modify any of it. New images are derived by
// metalog.ApplyEntry (or Clone, for a deep copy one may modify).
//
// # Sharing
//
// Consecutive images share what did not change (metalog.ApplyEntry copies
// on write), and readers may rely on it to skip work:
//   - a topic the entry did not change keeps the same *Topic pointer in the
//     next image; a changed topic is a new *Topic;
//   - likewise a partition keeps its *Partition, a broker its *Broker;
//   - a top-level map (Topics, Brokers, Controllers, BrokerConfigs,
//     BrokerOverrides) the entry did not write is the same map;
//     BrokerConfigs in particular is a new map whenever it changes, and so
//     is BrokerOverrides, whose per-broker maps are likewise new whenever
//     that broker's configs change (a broker's map the entry did not change
//     is the same map).
//
// The converse does not hold: a new pointer may hold an equal value. An
// image loaded from a snapshot (Unmarshal) shares nothing with the one
// before it.
package image

import (
	"slices"
	"sort"
	"strings"
)

// Image is the whole cluster metadata as of Raft index Index.
type Image struct {
	// Index is the Raft log index of the last record applied.
	Index uint64 `json:"index"`
	// ClusterID is fixed at the first bootstrap.
	ClusterID string `json:"cluster_id"`
	// Controllers are the Raft voters' Kafka listeners, by node id.
	Controllers map[int32]Controller `json:"controllers"`
	// ActiveController is the node id of the Raft leader, -1 if unknown.
	// It is not replicated state; the controller fills it when serving.
	ActiveController int32             `json:"active_controller"`
	Brokers          map[int32]*Broker `json:"brokers"`
	// Topics by name.
	Topics map[string]*Topic `json:"topics"`
	// BrokerConfigs are dynamic cluster-wide broker configs (resource "").
	BrokerConfigs map[string]string `json:"broker_configs,omitempty"`
	// BrokerOverrides are per-broker dynamic configs (a BROKER resource
	// named by the broker id: DYNAMIC_BROKER_CONFIG), by broker id; they
	// win over BrokerConfigs on that broker. Only the keys of
	// DynamicBrokerConfigDefs. A broker without any has no entry (never an
	// empty map).
	BrokerOverrides map[int32]map[string]string `json:"broker_overrides,omitempty"`
	// NextProducerID is the first producer id not yet handed out in a block.
	NextProducerID int64 `json:"next_producer_id"`
	// ACLs are the access control entries, in the order they were created.
	// A change makes a new slice (never appended to in place).
	ACLs []ACL `json:"acls,omitempty"`
}

// Controller is one Raft voter as brokers and admin clients see it.
type Controller struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// Broker is one registered data node.
type Broker struct {
	ID          int32  `json:"id"`
	Incarnation string `json:"incarnation"`
	// Epoch bumps on every registration; stale sessions are fenced by it.
	Epoch int64 `json:"epoch"`
	// Host and Port are the address of the broker's first listener
	// (Listeners[0]), the only one registrations made before brokers had
	// named listeners carry.
	Host string `json:"host"`
	Port int32  `json:"port"`
	// Listeners are the broker's advertised listeners, by name, as it
	// registered them (Kafka's advertised.listeners). Empty in
	// registrations made before named listeners: the broker then has one,
	// DefaultListenerName at Host:Port. Use Endpoint.
	Listeners []Endpoint `json:"listeners,omitempty"`
	Rack      string     `json:"rack,omitempty"`
	Fenced    bool       `json:"fenced"`
}

// Endpoint is one named listener of a broker: the address clients that
// reached any broker through the listener of that name are given for it.
type Endpoint struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// DefaultListenerName names a broker's listener when it has only one
// (`--listen`), as Kafka names its default listener.
const DefaultListenerName = "PLAINTEXT"

// Endpoint returns the broker's address on the listener named name (names
// compare case-insensitively, as Kafka's normalised listener names), and
// false when the broker has no such listener: Kafka's rule is that a
// client is given only the brokers, and the addresses, of the listener it
// connected through. The empty name is the first listener (a request that
// did not come through a named listener).
func (b *Broker) Endpoint(name string) (host string, port int32, ok bool) {
	if name == "" {
		return b.Host, b.Port, true
	}
	if len(b.Listeners) == 0 {
		return b.Host, b.Port, strings.EqualFold(name, DefaultListenerName)
	}
	for _, l := range b.Listeners {
		if strings.EqualFold(l.Name, name) {
			return l.Host, l.Port, true
		}
	}
	return "", 0, false
}

// Topic is one topic and its partitions.
type Topic struct {
	Name string   `json:"name"`
	ID   [16]byte `json:"id"`
	// Configs holds only the topic's explicitly set configs; defaults come
	// from TopicConfigDefs.
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []*Partition      `json:"partitions"`
}

// Partition is one partition's replica placement and leadership.
type Partition struct {
	Partition      int32   `json:"partition"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"` // -1: offline
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	// Adding and Removing are the replicas of an ongoing reassignment (KIP-455).
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
	// ELR are the eligible leader replicas (KIP-966): replicas out of the
	// ISR that still hold every record below the high watermark, because
	// they left the ISR while it was below min.insync.replicas (so the HW
	// could not move without them). Disjoint from ISR, within Replicas;
	// empty whenever len(ISR) >= min.insync.replicas. A broker that
	// restarts without its clean-shutdown marker leaves it.
	ELR []int32 `json:"elr,omitempty"`
	// LastKnownELR are replicas that were in the ISR or ELR while the ISR
	// was below min.insync.replicas and left by an unclean restart, the
	// last leader first. Used only when ISR and ELR are both empty: its
	// first member may then lead again (KIP-966's last known leader).
	// Cleared with the ELR.
	LastKnownELR []int32 `json:"last_known_elr,omitempty"`
}

// New returns an empty image.
func New() *Image {
	return &Image{
		Controllers:      map[int32]Controller{},
		ActiveController: -1,
		Brokers:          map[int32]*Broker{},
		Topics:           map[string]*Topic{},
		BrokerConfigs:    map[string]string{},
		BrokerOverrides:  map[int32]map[string]string{},
	}
}

// Clone returns a deep copy, which shares nothing with img.
func (img *Image) Clone() *Image {
	out := *img
	out.Controllers = make(map[int32]Controller, len(img.Controllers))
	for k, v := range img.Controllers {
		out.Controllers[k] = v
	}
	out.Brokers = make(map[int32]*Broker, len(img.Brokers))
	for k, v := range img.Brokers {
		b := *v
		b.Listeners = slices.Clone(v.Listeners)
		out.Brokers[k] = &b
	}
	out.Topics = make(map[string]*Topic, len(img.Topics))
	for k, v := range img.Topics {
		out.Topics[k] = v.Clone()
	}
	out.BrokerConfigs = cloneMap(img.BrokerConfigs)
	out.ACLs = slices.Clone(img.ACLs)
	if img.BrokerOverrides != nil {
		out.BrokerOverrides = make(map[int32]map[string]string, len(img.BrokerOverrides))
		for id, m := range img.BrokerOverrides {
			out.BrokerOverrides[id] = cloneMap(m)
		}
	}
	return &out
}

// Clone returns a deep copy of the topic.
func (t *Topic) Clone() *Topic {
	out := *t
	out.Configs = cloneMap(t.Configs)
	out.Partitions = make([]*Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		out.Partitions[i] = p.Clone()
	}
	return &out
}

// Clone returns a deep copy of the partition.
func (p *Partition) Clone() *Partition {
	out := *p
	out.Replicas = append([]int32(nil), p.Replicas...)
	out.ISR = append([]int32(nil), p.ISR...)
	out.Adding = append([]int32(nil), p.Adding...)
	out.Removing = append([]int32(nil), p.Removing...)
	out.ELR = append([]int32(nil), p.ELR...)
	out.LastKnownELR = append([]int32(nil), p.LastKnownELR...)
	return &out
}

// TopicByID finds a topic by id.
func (img *Image) TopicByID(id [16]byte) *Topic {
	for _, t := range img.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Partition returns one partition, or nil.
func (img *Image) Partition(topic string, partition int32) *Partition {
	t := img.Topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[partition]
}

// TopicNames returns the topic names sorted.
func (img *Image) TopicNames() []string {
	out := make([]string, 0, len(img.Topics))
	for n := range img.Topics {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// BrokerIDs returns the registered broker ids sorted.
func (img *Image) BrokerIDs() []int32 {
	out := make([]int32, 0, len(img.Brokers))
	for id := range img.Brokers {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TopicConfig returns the effective value of a topic config: the topic's own
// value, else the cluster-wide broker default, else the built-in default.
func (img *Image) TopicConfig(t *Topic, key string) (value string, source ConfigSource) {
	if t != nil {
		if v, ok := t.Configs[key]; ok {
			return v, SourceTopic
		}
	}
	def, ok := TopicConfigDefs[key]
	if !ok {
		return "", SourceUnknown
	}
	if def.BrokerKey != "" {
		if v, ok := img.BrokerConfigs[def.BrokerKey]; ok {
			return v, SourceDynamicBroker
		}
	}
	return def.Default, SourceDefault
}

// BrokerConfig returns the effective value of a dynamic broker config
// (DynamicBrokerConfigDefs) on broker id: its own value, else the
// cluster-wide default, else the built-in default (SourceDefault; ok false
// for a key that is not in DynamicBrokerConfigDefs).
func (img *Image) BrokerConfig(id int32, key string) (value string, source ConfigSource, ok bool) {
	def, known := DynamicBrokerConfigDefs[key]
	if !known {
		return "", SourceUnknown, false
	}
	if v, set := img.BrokerOverrides[id][key]; set {
		return v, SourceDynamicPerBroker, true
	}
	if v, set := img.BrokerConfigs[key]; set {
		return v, SourceDynamicBroker, true
	}
	return def.Default, SourceDefault, true
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
