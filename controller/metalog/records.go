package metalog

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skein-io/skein/controller/image"
)

// ChangeType tags a Change in the Raft log. The strings are part of the
// on-disk format (the controllers' Raft log and snapshots) and of the
// deltas brokers fetch: never rename one.
type ChangeType string

// The change types.
const (
	TypeInitCluster        ChangeType = "InitCluster"
	TypeRegisterController ChangeType = "RegisterController"
	TypeRegisterBroker     ChangeType = "RegisterBroker"
	TypeFenceBroker        ChangeType = "FenceBroker"
	TypeUnfenceBroker      ChangeType = "UnfenceBroker"
	TypeCreateTopic        ChangeType = "CreateTopic"
	TypeCreatePartition    ChangeType = "CreatePartition"
	TypeChangePartition    ChangeType = "ChangePartition"
	TypeDeleteTopic        ChangeType = "DeleteTopic"
	TypeConfigChange       ChangeType = "ConfigChange"
	TypeProducerIDBlock    ChangeType = "ProducerIDBlock"
	// TypeUnregisterController drops a removed voter's Kafka listener.
	TypeUnregisterController ChangeType = "UnregisterController"
	// TypeCreateACL and TypeDeleteACL add and remove access control
	// entries (CreateAcls, DeleteAcls).
	TypeCreateACL ChangeType = "CreateACL"
	TypeDeleteACL ChangeType = "DeleteACL"
)

// Config resource types of ConfigChange, numbered as Kafka's ConfigResource.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// Entry is the payload of one Raft log entry: the changes of one decision,
// applied all or nothing.
type Entry struct {
	// Term is the Raft term of the leadership that decided the entry, read
	// together with the image the decision was computed from. The FSM
	// discards an entry whose Term is not the term of its log entry (the
	// controller lost and regained leadership in between, so its image may
	// lack the other terms' entries). 0 (entries written before the field
	// existed, and deltas, which carry only applied changes) is not checked.
	Term    uint64   `json:"term,omitempty"`
	Records []Change `json:"records"`
}

// Change is one metadata change (a "record" of the Raft log). Type names the
// one non-nil field.
type Change struct {
	Type               ChangeType                `json:"type"`
	InitCluster        *InitClusterRecord        `json:"init_cluster,omitempty"`
	RegisterController *RegisterControllerRecord `json:"register_controller,omitempty"`
	RegisterBroker     *RegisterBrokerRecord     `json:"register_broker,omitempty"`
	FenceBroker        *BrokerEpochRecord        `json:"fence_broker,omitempty"`
	UnfenceBroker      *BrokerEpochRecord        `json:"unfence_broker,omitempty"`
	CreateTopic        *CreateTopicRecord        `json:"create_topic,omitempty"`
	CreatePartition    *CreatePartitionRecord    `json:"create_partition,omitempty"`
	ChangePartition    *ChangePartitionRecord    `json:"change_partition,omitempty"`
	DeleteTopic        *DeleteTopicRecord        `json:"delete_topic,omitempty"`
	ConfigChange       *ConfigChangeRecord       `json:"config_change,omitempty"`
	ProducerIDBlock    *ProducerIDBlockRecord    `json:"producer_id_block,omitempty"`

	UnregisterController *UnregisterControllerRecord `json:"unregister_controller,omitempty"`
	CreateACL            *image.ACL                  `json:"create_acl,omitempty"`
	DeleteACL            *DeleteACLRecord            `json:"delete_acl,omitempty"`
}

// DeleteACLRecord removes the access control entry with that id.
type DeleteACLRecord struct {
	ID string `json:"id"`
}

// UnregisterControllerRecord removes a voter that left the quorum from the
// published controller listeners.
type UnregisterControllerRecord struct {
	ID int32 `json:"id"`
}

// InitClusterRecord fixes the cluster id; written once by the first leader.
type InitClusterRecord struct {
	ClusterID string `json:"cluster_id"`
}

// RegisterControllerRecord publishes a voter's Kafka listener.
type RegisterControllerRecord struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// RegisterBrokerRecord (re)registers a broker, fenced. Its epoch is the Raft
// index of the entry holding this record (as in KRaft), so it is not carried.
// Host and Port are the first listener's address (all that records written
// before named listeners hold); Listeners are all of them, in the order
// the broker gave them, absent in those older records.
type RegisterBrokerRecord struct {
	ID          int32            `json:"id"`
	Incarnation string           `json:"incarnation"`
	Host        string           `json:"host"`
	Port        int32            `json:"port"`
	Listeners   []image.Endpoint `json:"listeners,omitempty"`
	Rack        string           `json:"rack,omitempty"`
}

// BrokerEpochRecord fences or unfences the registration with that epoch.
type BrokerEpochRecord struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// CreateTopicRecord creates a topic without partitions.
type CreateTopicRecord struct {
	Name    string            `json:"name"`
	TopicID [16]byte          `json:"topic_id"`
	Configs map[string]string `json:"configs,omitempty"`
}

// CreatePartitionRecord appends partition Partition (== the current count).
type CreatePartitionRecord struct {
	TopicID        [16]byte `json:"topic_id"`
	Partition      int32    `json:"partition"`
	Replicas       []int32  `json:"replicas"`
	ISR            []int32  `json:"isr"`
	Leader         int32    `json:"leader"`
	LeaderEpoch    int32    `json:"leader_epoch"`
	PartitionEpoch int32    `json:"partition_epoch"`
}

// ChangePartitionRecord changes the set fields (nil: unchanged). Applying it
// bumps the partition epoch, and the leader epoch when the leader changes.
// The lists that may become empty (ISR, ELR, LastKnownELR: KIP-966) are
// pointers: nil (absent in JSON, as in records written before ELR) leaves
// the field unchanged, a pointer to an empty list (JSON []) empties it.
// Adding and Removing (a reassignment, KIP-455) are such pointers too; they
// must lie within the replicas after the change and be disjoint.
type ChangePartitionRecord struct {
	TopicID      [16]byte `json:"topic_id"`
	Partition    int32    `json:"partition"`
	Leader       *int32   `json:"leader,omitempty"`
	ISR          *[]int32 `json:"isr,omitempty"`
	Replicas     []int32  `json:"replicas,omitempty"`
	ELR          *[]int32 `json:"elr,omitempty"`
	LastKnownELR *[]int32 `json:"last_known_elr,omitempty"`
	Adding       *[]int32 `json:"adding,omitempty"`
	Removing     *[]int32 `json:"removing,omitempty"`
}

// DeleteTopicRecord deletes a topic and its partitions.
type DeleteTopicRecord struct {
	TopicID [16]byte `json:"topic_id"`
}

// ConfigChangeRecord sets (Value non-nil) or deletes one dynamic config.
// ResourceName is the topic name; for a broker config, "" for the
// cluster-wide default (image.BrokerConfigs) or a broker id in decimal for
// that broker's own value (image.BrokerOverrides).
type ConfigChangeRecord struct {
	ResourceType int8    `json:"resource_type"`
	ResourceName string  `json:"resource_name"`
	Key          string  `json:"key"`
	Value        *string `json:"value"`
}

// ProducerIDBlockRecord hands [First, First+Size) to a broker.
type ProducerIDBlockRecord struct {
	Broker int32 `json:"broker"`
	First  int64 `json:"first"`
	Size   int32 `json:"size"`
}

// EncodeEntry encodes the changes of one decision taken in Raft term term
// (0: unchecked) as the payload of a Raft log entry.
func EncodeEntry(term uint64, changes []Change) ([]byte, error) {
	if len(changes) == 0 {
		return nil, errors.New("empty entry")
	}
	return json.Marshal(Entry{Term: term, Records: changes})
}

// DecodeEntry decodes the payload of a Raft log entry.
func DecodeEntry(b []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode entry: %w", err)
	}
	return e, nil
}
