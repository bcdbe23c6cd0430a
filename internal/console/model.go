package console

import (
	"time"
)

// Page is what every page shows besides its own data.
type Page struct {
	// Node names the node that serves the console ("broker 101").
	Node string `json:"node"`
	// ClusterID is from the node's metadata image ("" before it has one).
	ClusterID string `json:"cluster_id"`
	// Collected is when the data was collected, Took how long it took.
	Collected time.Time     `json:"collected"`
	Took      time.Duration `json:"took_ns"`
	// Errors are the parts that could not be collected, one line each.
	Errors []string `json:"errors,omitempty"`
}

// Overview is the cluster overview (/).
type Overview struct {
	Page
	// MetadataOffset is the Raft index of the node's image.
	MetadataOffset uint64 `json:"metadata_offset"`
	// ActiveController is the Raft leader as the image has it, -1 unknown.
	ActiveController int32       `json:"active_controller"`
	Brokers          []BrokerRow `json:"brokers"`
	// Quorum is nil when DescribeQuorum failed (see Errors).
	Quorum *Quorum `json:"quorum,omitempty"`
	Counts Counts  `json:"counts"`
}

// BrokerRow is one registered broker.
type BrokerRow struct {
	ID    int32  `json:"id"`
	Addr  string `json:"addr"`
	Rack  string `json:"rack,omitempty"`
	Epoch int64  `json:"epoch"`
	// Fenced is the controller's view; Reachable whether its listener
	// accepted a connection just now; Alive is both unfenced and reachable.
	Fenced    bool `json:"fenced"`
	Reachable bool `json:"reachable"`
	Alive     bool `json:"alive"`
	// Leaders and Replicas count the partitions it leads and hosts.
	Leaders  int `json:"leaders"`
	Replicas int `json:"replicas"`
}

// Quorum is the controller quorum as DescribeQuorum reports it.
type Quorum struct {
	LeaderID      int32   `json:"leader_id"`
	Term          int32   `json:"term"`
	HighWatermark int64   `json:"high_watermark"`
	Voters        []Voter `json:"voters"`
	Observers     []Voter `json:"observers,omitempty"`
}

// Voter is one member of the quorum (or an observer).
type Voter struct {
	ID       int32  `json:"id"`
	Role     string `json:"role"` // leader, follower, observer
	Listener string `json:"listener,omitempty"`
	// LogEndOffset and Lag (behind the high watermark) are -1 when unknown.
	LogEndOffset int64 `json:"log_end_offset"`
	Lag          int64 `json:"lag"`
	// LastContact is how long ago the leader last heard from it; -1: never
	// this term, 0 for the leader itself.
	LastContact time.Duration `json:"last_contact_ns"`
}

// Counts are the cluster's totals.
type Counts struct {
	Brokers         int `json:"brokers"`
	AliveBrokers    int `json:"alive_brokers"`
	Topics          int `json:"topics"`
	Partitions      int `json:"partitions"`
	UnderReplicated int `json:"under_replicated"`
	Offline         int `json:"offline"`
}

// TopicList is the topics page (/topics).
type TopicList struct {
	Page
	Topics []TopicRow `json:"topics"`
}

// TopicRow is one topic of the list.
type TopicRow struct {
	Name              string `json:"name"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	UnderReplicated   int    `json:"under_replicated"`
	Offline           int    `json:"offline"`
	// SizeBytes sums the partitions' sizes (one replica each: the
	// leader's when it answered); -1 when no broker reported any.
	SizeBytes int64 `json:"size_bytes"`
}

// TopicPage is one topic (/topics/NAME).
type TopicPage struct {
	Page
	Topic      TopicRow       `json:"topic"`
	ID         string         `json:"id"`
	Partitions []PartitionRow `json:"partitions"`
	// Configs are every config of the topic with its source, as
	// DescribeConfigs reports them, those set on the topic first (nil
	// when it failed).
	Configs []ConfigRow `json:"configs"`
}

// PartitionRow is one partition of a topic.
type PartitionRow struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"` // -1: offline
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	Adding          []int32 `json:"adding,omitempty"`
	Removing        []int32 `json:"removing,omitempty"`
	UnderReplicated bool    `json:"under_replicated"`
	Offline         bool    `json:"offline"`
	// DeadReplicas are replicas on brokers that are not alive.
	DeadReplicas []int32 `json:"dead_replicas,omitempty"`
	// LogStartOffset, LogEndOffset and SizeBytes are -1 when unknown.
	LogStartOffset int64 `json:"log_start_offset"`
	LogEndOffset   int64 `json:"log_end_offset"`
	SizeBytes      int64 `json:"size_bytes"`
}

// ConfigRow is one topic config.
type ConfigRow struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
	// Set is true when the config is set on the topic itself.
	Set bool `json:"set"`
}

// GroupList is the consumer groups page (/groups).
type GroupList struct {
	Page
	Groups []GroupRow `json:"groups"`
}

// GroupRow is one group of the list.
type GroupRow struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`
	Members      int    `json:"members"` // -1: not described
	Coordinator  int32  `json:"coordinator"`
}

// GroupPage is one group (/groups/NAME).
type GroupPage struct {
	Page
	Group   GroupRow    `json:"group"`
	Members []MemberRow `json:"members"`
	Offsets []OffsetRow `json:"offsets"`
	// TotalLag sums the known lags.
	TotalLag int64 `json:"total_lag"`
}

// MemberRow is one member of a group.
type MemberRow struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	// Assignment is "topic[0,1] other[2]".
	Assignment string `json:"assignment"`
	Partitions int    `json:"partitions"`
}

// OffsetRow is a group's position on one partition.
type OffsetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed, End and Lag are -1 when unknown (no commit yet, or the
	// leader did not answer).
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
}
