package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// recordType tags a record in the Raft log. The strings are part of the
// on-disk format: never rename one.
type recordType string

const (
	typeInitCluster        recordType = "InitCluster"
	typeRegisterController recordType = "RegisterController"
	typeRegisterBroker     recordType = "RegisterBroker"
	typeFenceBroker        recordType = "FenceBroker"
	typeUnfenceBroker      recordType = "UnfenceBroker"
	typeCreateTopic        recordType = "CreateTopic"
	typeCreatePartition    recordType = "CreatePartition"
	typeChangePartition    recordType = "ChangePartition"
	typeDeleteTopic        recordType = "DeleteTopic"
	typeConfigChange       recordType = "ConfigChange"
	typeProducerIDBlock    recordType = "ProducerIDBlock"
	// typeUnregisterController drops a removed voter's Kafka listener.
	typeUnregisterController recordType = "UnregisterController"
)

// Config resource types of ConfigChange, numbered as Kafka's ConfigResource.
const (
	resourceTopic  int8 = 2
	resourceBroker int8 = 4
)

// entry is the payload of one Raft log entry: the records of one decision,
// applied all or nothing.
type entry struct {
	// Term is the Raft term of the leadership that decided the entry, read
	// together with the image the decision was computed from. The FSM
	// discards an entry whose Term is not the term of its log entry (the
	// controller lost and regained leadership in between, so its image may
	// lack the other terms' entries). 0 (entries written before the field
	// existed) is not checked.
	Term    uint64   `json:"term,omitempty"`
	Records []record `json:"records"`
}

// record is one metadata change. Type names the one non-nil field.
type record struct {
	Type               recordType                `json:"type"`
	InitCluster        *initClusterRecord        `json:"init_cluster,omitempty"`
	RegisterController *registerControllerRecord `json:"register_controller,omitempty"`
	RegisterBroker     *registerBrokerRecord     `json:"register_broker,omitempty"`
	FenceBroker        *brokerEpochRecord        `json:"fence_broker,omitempty"`
	UnfenceBroker      *brokerEpochRecord        `json:"unfence_broker,omitempty"`
	CreateTopic        *createTopicRecord        `json:"create_topic,omitempty"`
	CreatePartition    *createPartitionRecord    `json:"create_partition,omitempty"`
	ChangePartition    *changePartitionRecord    `json:"change_partition,omitempty"`
	DeleteTopic        *deleteTopicRecord        `json:"delete_topic,omitempty"`
	ConfigChange       *configChangeRecord       `json:"config_change,omitempty"`
	ProducerIDBlock    *producerIDBlockRecord    `json:"producer_id_block,omitempty"`

	UnregisterController *unregisterControllerRecord `json:"unregister_controller,omitempty"`
}

// unregisterControllerRecord removes a voter that left the quorum from the
// published controller listeners.
type unregisterControllerRecord struct {
	ID int32 `json:"id"`
}

// initClusterRecord fixes the cluster id; written once by the first leader.
type initClusterRecord struct {
	ClusterID string `json:"cluster_id"`
}

// registerControllerRecord publishes a voter's Kafka listener.
type registerControllerRecord struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// registerBrokerRecord (re)registers a broker, fenced. Its epoch is the Raft
// index of the entry holding this record (as in KRaft), so it is not carried.
type registerBrokerRecord struct {
	ID          int32  `json:"id"`
	Incarnation string `json:"incarnation"`
	Host        string `json:"host"`
	Port        int32  `json:"port"`
	Rack        string `json:"rack,omitempty"`
}

// brokerEpochRecord fences or unfences the registration with that epoch.
type brokerEpochRecord struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

type createTopicRecord struct {
	Name    string            `json:"name"`
	TopicID [16]byte          `json:"topic_id"`
	Configs map[string]string `json:"configs,omitempty"`
}

// createPartitionRecord appends partition Partition (== the current count).
type createPartitionRecord struct {
	TopicID        [16]byte `json:"topic_id"`
	Partition      int32    `json:"partition"`
	Replicas       []int32  `json:"replicas"`
	ISR            []int32  `json:"isr"`
	Leader         int32    `json:"leader"`
	LeaderEpoch    int32    `json:"leader_epoch"`
	PartitionEpoch int32    `json:"partition_epoch"`
}

// changePartitionRecord changes the set fields (nil: unchanged). Applying it
// bumps the partition epoch, and the leader epoch when the leader changes.
// The lists that may become empty (ISR, ELR, LastKnownELR: KIP-966) are
// pointers: nil (absent in JSON, as in records written before ELR) leaves
// the field unchanged, a pointer to an empty list (JSON []) empties it.
type changePartitionRecord struct {
	TopicID      [16]byte `json:"topic_id"`
	Partition    int32    `json:"partition"`
	Leader       *int32   `json:"leader,omitempty"`
	ISR          *[]int32 `json:"isr,omitempty"`
	Replicas     []int32  `json:"replicas,omitempty"`
	ELR          *[]int32 `json:"elr,omitempty"`
	LastKnownELR *[]int32 `json:"last_known_elr,omitempty"`
}

type deleteTopicRecord struct {
	TopicID [16]byte `json:"topic_id"`
}

// configChangeRecord sets (Value non-nil) or deletes one dynamic config.
// ResourceName is the topic name, or "" for the cluster-wide broker default.
type configChangeRecord struct {
	ResourceType int8    `json:"resource_type"`
	ResourceName string  `json:"resource_name"`
	Key          string  `json:"key"`
	Value        *string `json:"value"`
}

// producerIDBlockRecord hands [First, First+Size) to a broker.
type producerIDBlockRecord struct {
	Broker int32 `json:"broker"`
	First  int64 `json:"first"`
	Size   int32 `json:"size"`
}

// encodeEntry encodes the records of one decision taken in Raft term term
// (0: unchecked).
func encodeEntry(term uint64, recs []record) ([]byte, error) {
	if len(recs) == 0 {
		return nil, errors.New("empty entry")
	}
	return json.Marshal(entry{Term: term, Records: recs})
}

func decodeEntry(b []byte) (entry, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode entry: %w", err)
	}
	return e, nil
}

// applyEntry returns the image after the entry at Raft index index: a new
// image, img itself is not modified. It is a pure function of its input. An
// entry with an invalid record is discarded whole (the returned image then
// differs from img only by its Index) and the error says why.
func applyEntry(img *image.Image, index uint64, e entry) (*image.Image, error) {
	next := img.Clone()
	a := applier{img: next, index: index}
	for i := range e.Records {
		if err := a.apply(&e.Records[i]); err != nil {
			skipped := *img // the maps are immutable: sharing them is safe
			skipped.Index = index
			return &skipped, fmt.Errorf("entry %d record %d (%s): %w", index, i, e.Records[i].Type, err)
		}
	}
	next.Index = index
	checkApplied(img, next)
	return next, nil
}

type applier struct {
	img   *image.Image
	index uint64
}

func (a *applier) apply(r *record) error {
	switch r.Type {
	case typeInitCluster:
		if r.InitCluster == nil {
			return errMissingBody
		}
		if a.img.ClusterID != "" {
			return fmt.Errorf("cluster id already set to %q", a.img.ClusterID)
		}
		a.img.ClusterID = r.InitCluster.ClusterID
	case typeRegisterController:
		x := r.RegisterController
		if x == nil {
			return errMissingBody
		}
		a.img.Controllers[x.ID] = image.Controller{ID: x.ID, Host: x.Host, Port: x.Port}
	case typeUnregisterController:
		x := r.UnregisterController
		if x == nil {
			return errMissingBody
		}
		if _, ok := a.img.Controllers[x.ID]; !ok {
			return fmt.Errorf("controller %d is not registered", x.ID)
		}
		delete(a.img.Controllers, x.ID)
	case typeRegisterBroker:
		x := r.RegisterBroker
		if x == nil {
			return errMissingBody
		}
		if x.ID < 0 {
			return fmt.Errorf("broker id %d", x.ID)
		}
		a.img.Brokers[x.ID] = &image.Broker{ID: x.ID, Incarnation: x.Incarnation, Epoch: int64(a.index),
			Host: x.Host, Port: x.Port, Rack: x.Rack, Fenced: true}
	case typeFenceBroker, typeUnfenceBroker:
		x := r.FenceBroker
		if r.Type == typeUnfenceBroker {
			x = r.UnfenceBroker
		}
		if x == nil {
			return errMissingBody
		}
		b := a.img.Brokers[x.ID]
		if b == nil || b.Epoch != x.Epoch {
			return fmt.Errorf("broker %d epoch %d is not registered", x.ID, x.Epoch)
		}
		b.Fenced = r.Type == typeFenceBroker
	case typeCreateTopic:
		x := r.CreateTopic
		if x == nil {
			return errMissingBody
		}
		if a.img.Topics[x.Name] != nil {
			return fmt.Errorf("topic %q exists", x.Name)
		}
		if x.TopicID == ([16]byte{}) || a.img.TopicByID(x.TopicID) != nil {
			return fmt.Errorf("topic id of %q is zero or taken", x.Name)
		}
		a.img.Topics[x.Name] = &image.Topic{Name: x.Name, ID: x.TopicID, Configs: cloneConfigs(x.Configs)}
	case typeCreatePartition:
		x := r.CreatePartition
		if x == nil {
			return errMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return errUnknownTopicID
		}
		if int(x.Partition) != len(t.Partitions) || len(x.Replicas) == 0 {
			return fmt.Errorf("topic %q: cannot add partition %d with %d replicas", t.Name, x.Partition, len(x.Replicas))
		}
		t.Partitions = append(t.Partitions, &image.Partition{
			Partition: x.Partition, Replicas: slices.Clone(x.Replicas), ISR: slices.Clone(x.ISR),
			Leader: x.Leader, LeaderEpoch: x.LeaderEpoch, PartitionEpoch: x.PartitionEpoch,
		})
	case typeChangePartition:
		x := r.ChangePartition
		if x == nil {
			return errMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return errUnknownTopicID
		}
		if x.Partition < 0 || int(x.Partition) >= len(t.Partitions) {
			return fmt.Errorf("topic %q has no partition %d", t.Name, x.Partition)
		}
		p := t.Partitions[x.Partition]
		if x.Leader != nil && *x.Leader != p.Leader {
			p.Leader = *x.Leader
			p.LeaderEpoch++
		}
		if x.ISR != nil {
			p.ISR = slices.Clone(*x.ISR)
		}
		if x.Replicas != nil {
			p.Replicas = slices.Clone(x.Replicas)
		}
		if x.ELR != nil {
			p.ELR = slices.Clone(*x.ELR)
		}
		if x.LastKnownELR != nil {
			p.LastKnownELR = slices.Clone(*x.LastKnownELR)
		}
		for _, r := range p.ELR {
			if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR, r) {
				return fmt.Errorf("topic %q partition %d: ELR %v not disjoint from ISR %v within replicas %v",
					t.Name, p.Partition, p.ELR, p.ISR, p.Replicas)
			}
		}
		p.PartitionEpoch++
	case typeDeleteTopic:
		x := r.DeleteTopic
		if x == nil {
			return errMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return errUnknownTopicID
		}
		delete(a.img.Topics, t.Name)
	case typeConfigChange:
		x := r.ConfigChange
		if x == nil {
			return errMissingBody
		}
		var m map[string]string
		switch x.ResourceType {
		case resourceTopic:
			t := a.img.Topics[x.ResourceName]
			if t == nil {
				return fmt.Errorf("unknown topic %q", x.ResourceName)
			}
			if t.Configs == nil {
				t.Configs = map[string]string{}
			}
			m = t.Configs
		case resourceBroker:
			if x.ResourceName != "" {
				return fmt.Errorf("per-broker config for %q", x.ResourceName)
			}
			if a.img.BrokerConfigs == nil {
				a.img.BrokerConfigs = map[string]string{}
			}
			m = a.img.BrokerConfigs
		default:
			return fmt.Errorf("resource type %d", x.ResourceType)
		}
		if x.Value == nil {
			delete(m, x.Key)
		} else {
			m[x.Key] = *x.Value
		}
	case typeProducerIDBlock:
		x := r.ProducerIDBlock
		if x == nil {
			return errMissingBody
		}
		if x.First != a.img.NextProducerID || x.Size <= 0 {
			return fmt.Errorf("block [%d,+%d) does not start at the next producer id %d", x.First, x.Size, a.img.NextProducerID)
		}
		a.img.NextProducerID = x.First + int64(x.Size)
	default:
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	return nil
}

var (
	errMissingBody    = errors.New("record body missing")
	errUnknownTopicID = errors.New("unknown topic id")
)

func cloneConfigs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Record constructors keep the call sites short.

// changeTo is the ChangePartition record taking p to st, and whether
// anything changes.
func changeTo(t *image.Topic, p *image.Partition, st partitionState) (record, bool) {
	x := &changePartitionRecord{TopicID: t.ID, Partition: p.Partition}
	changed := false
	if st.leader != p.Leader {
		x.Leader = &st.leader
		changed = true
	}
	list := func(to, from []int32) *[]int32 {
		if slices.Equal(to, from) {
			return nil
		}
		changed = true
		v := slices.Clone(to)
		if v == nil {
			v = []int32{}
		}
		return &v
	}
	x.ISR = list(st.isr, p.ISR)
	x.ELR = list(st.elr, p.ELR)
	x.LastKnownELR = list(st.lastKnownELR, p.LastKnownELR)
	return record{Type: typeChangePartition, ChangePartition: x}, changed
}
