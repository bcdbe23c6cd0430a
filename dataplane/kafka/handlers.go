// Package kafka holds the broker's Kafka API handlers, one file per API key
// (00_produce.go, 01_fetch.go, ...). Each file opens with the versions it
// supports; Register lists them, and the wire registry it fills is what
// ApiVersions advertises.
package kafka

import (
	"time"

	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/throttle"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

// Config is what the handlers need to know about the broker.
type Config struct {
	NodeID int32
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// NumPartitions and DefaultReplicationFactor are used for auto-created topics.
	NumPartitions            int32
	DefaultReplicationFactor int16
	// MessageMaxBytes is message.max.bytes (default max.message.bytes).
	MessageMaxBytes int32
	// FetchMaxBytes caps a fetch response (fetch.max.bytes upper bound).
	FetchMaxBytes int32
	// ReplicaFetchLinger is how long a follower's fetch that parked is
	// held once new records woke it, so that one answer carries what
	// arrives meanwhile (followerLinger); 0: answered at once.
	ReplicaFetchLinger time.Duration
}

// Handlers serves the broker's Kafka APIs.
type Handlers struct {
	Config     Config
	Partitions *partition.Manager
	Controller *client.Client
	Logger     hclog.Logger
	// Groups is the group coordinator; nil answers the group APIs with
	// COORDINATOR_NOT_AVAILABLE.
	Groups *group.Coordinator
	// Txns is the transaction coordinator; nil answers the transaction
	// APIs with COORDINATOR_NOT_AVAILABLE.
	Txns *txn.Coordinator
	// FetchSessions holds the fetch sessions (KIP-227); nil: every fetch
	// is sessionless.
	FetchSessions *FetchSessionCache
	// Throttles are the replication quotas (KIP-73); nil throttles
	// nothing. Fetch uses the leader side.
	Throttles *throttle.Throttles
	// Authorizer checks every request against the ACLs (authorize.go);
	// nil allows everything.
	Authorizer *authz.Authorizer

	// waiting counts the requests parked in purgatory (Purgatory).
	waiting struct{ produce, fetch atomic.Int64 }
	// producerIDs hands out InitProducerId ids (22_init_producer_id.go);
	// its zero value is ready.
	producerIDs producerIDAllocator
	// offsetsTopic serialises the creation of __consumer_offsets.
	offsetsTopic offsetsTopicCreator
}

// Purgatory returns how many requests wait in purgatory now: acks=all
// produces waiting for the ISR, and fetches waiting for MinBytes (long
// polls, followers' included).
func (h *Handlers) Purgatory() (produce, fetch int64) {
	return h.waiting.produce.Load(), h.waiting.fetch.Load()
}

// Register registers every API the broker implements, with its versions.
func (h *Handlers) Register(wr *wire.Registry) {
	r := guardedRegistry{h, wr}
	r.Register(0, 3, 12, h.handleProduce)
	r.Register(1, 4, 16, h.handleFetch)
	r.Register(2, 1, 8, h.handleListOffsets)
	r.Register(3, 0, 12, h.handleMetadata)
	r.Register(8, 0, 8, h.handleOffsetCommit)
	r.Register(9, 0, 8, h.handleOffsetFetch)
	r.Register(10, 0, 4, h.handleFindCoordinator)
	r.Register(11, 0, 9, h.handleJoinGroup)
	r.Register(12, 0, 4, h.handleHeartbeat)
	r.Register(13, 0, 5, h.handleLeaveGroup)
	r.Register(14, 0, 5, h.handleSyncGroup)
	r.Register(15, 0, 5, h.handleDescribeGroups)
	r.Register(16, 0, 4, h.handleListGroups)
	r.Register(19, 2, 7, h.handleCreateTopics)
	r.Register(20, 1, 6, h.handleDeleteTopics)
	r.Register(21, 0, 2, h.handleDeleteRecords)
	r.Register(22, 0, 5, h.handleInitProducerID)
	r.Register(23, 2, 4, h.handleOffsetForLeaderEpoch)
	r.Register(24, 0, 4, h.handleAddPartitionsToTxn)
	r.Register(25, 0, 4, h.handleAddOffsetsToTxn)
	r.Register(26, 0, 4, h.handleEndTxn)
	r.Register(27, 0, 1, h.handleWriteTxnMarkers)
	r.Register(28, 0, 4, h.handleTxnOffsetCommit)
	r.Register(29, 0, 3, h.handleDescribeACLs)
	r.Register(30, 0, 3, h.handleCreateACLs)
	r.Register(31, 0, 3, h.handleDeleteACLs)
	r.Register(32, 1, 4, h.handleDescribeConfigs)
	r.Register(33, 0, 2, h.handleAlterConfigs)
	r.Register(35, 1, 4, h.handleDescribeLogDirs)
	r.Register(37, 0, 3, h.handleCreatePartitions)
	r.Register(42, 0, 2, h.handleDeleteGroups)
	r.Register(43, 0, 2, h.handleElectLeaders)
	r.Register(44, 0, 1, h.handleIncrementalAlterConfigs)
	r.Register(45, 0, 1, h.handleAlterPartitionReassignments)
	r.Register(46, 0, 0, h.handleListPartitionReassignments)
	r.Register(47, 0, 0, h.handleOffsetDelete)
	r.Register(50, 0, 0, h.handleDescribeUserScramCredentials)
	r.Register(51, 0, 0, h.handleAlterUserScramCredentials)
	r.Register(55, 0, 2, h.handleDescribeQuorum)
	r.Register(60, 0, 2, h.handleDescribeCluster)
	r.Register(61, 0, 0, h.handleDescribeProducers)
	r.Register(65, 0, 0, h.handleDescribeTransactions)
	r.Register(66, 0, 1, h.handleListTransactions)
	r.Register(75, 0, 0, h.handleDescribeTopicPartitions)
}

// guardedRegistry registers each handler behind its API's authorization
// gate (authorize.go), if it has one.
type guardedRegistry struct {
	h *Handlers
	r *wire.Registry
}

func (g guardedRegistry) Register(key, minVersion, maxVersion int16, fn wire.HandlerFunc) {
	if gt := gates[key]; gt != nil {
		fn = g.h.guard(fn, gt)
	}
	g.r.Register(key, minVersion, maxVersion, fn)
}
