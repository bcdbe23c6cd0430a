package controller

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skein-io/skein/internal/security"
)

// Voter is one member of the initial quorum: "ID@host:port" of its Raft listener.
type Voter struct {
	ID       int32
	RaftAddr string
}

// ParseVoters parses "1@127.0.0.1:9193,2@127.0.0.1:9194".
func ParseVoters(s string) ([]Voter, error) {
	var out []Voter
	seen := make(map[int32]bool)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "@")
		if !ok {
			return nil, fmt.Errorf("voter %q: want ID@host:port", part)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(idStr), 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("voter %q: node id %q is not a non-negative int32", part, idStr)
		}
		addr = strings.TrimSpace(addr)
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("voter %q: %w", part, err)
		}
		if seen[int32(id)] {
			return nil, fmt.Errorf("voter id %d appears twice", id)
		}
		seen[int32(id)] = true
		out = append(out, Voter{ID: int32(id), RaftAddr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("no voters given: want ID@host:port[,ID@host:port...]")
	}
	return out, nil
}

// Config configures a controller.
type Config struct {
	NodeID  int32
	DataDir string
	// Listen is the Kafka listener (brokers and admin clients).
	Listen string
	// AdvertisedListener is what others dial; defaults to Listen (with the
	// bound port when Listen's port is 0).
	AdvertisedListener string
	// ListenerProtocol is the Kafka listener's security protocol
	// (PLAINTEXT when empty; SSL needs TLS with a certificate). The
	// controllers' requests to each other's listeners use it too.
	ListenerProtocol security.Protocol
	// RaftProtocol is the Raft transport's: PLAINTEXT (plain TCP, the
	// default) or SSL (TLS with TLS's material, mutual when it has a
	// client CA). Every voter must use the same.
	RaftProtocol security.Protocol
	// TLS is the controller's TLS material (certificate, client CA, the
	// CA it trusts when it dials a peer).
	TLS *security.TLS
	// RaftListen is the Raft transport's address. The address other voters
	// dial is this node's entry in InitialControllers when it has one with a
	// non-zero port, else the bound address.
	RaftListen string
	// InitialControllers bootstraps the quorum on first start only (when the
	// data dir holds no Raft state and the list includes NodeID); give the
	// same list to every initial voter. Later starts ignore it and reuse the
	// Raft state. A node with no Raft state that is not in the list (or
	// has no list) never bootstraps: it waits until the active controller
	// adds it (AddRaftVoter, `skein controller add-voter`), so a new node
	// cannot start a second, split quorum.
	InitialControllers []Voter
	// SessionTimeout fences a broker without heartbeats for that long.
	SessionTimeout time.Duration
	// DefaultNumPartitions (num.partitions) and DefaultReplicationFactor
	// (default.replication.factor) apply to CreateTopics asking for -1.
	// The default replication factor is capped at the number of unfenced
	// brokers (Kafka refuses instead), and a topic that gets 3 or more
	// replicas this way also gets min.insync.replicas=2 unless the request
	// sets it (Kafka's default is 1): see defaultReplication.
	DefaultNumPartitions     int32
	DefaultReplicationFactor int16
	// RaftHeartbeatTimeout is Raft's heartbeat and election timeout; the
	// leader lease is half of it. Lower it only in tests.
	RaftHeartbeatTimeout time.Duration
	// ApplyTimeout bounds how long a decision waits to enter the Raft log.
	ApplyTimeout time.Duration
	// SnapshotThreshold is how many Raft entries must follow the last
	// snapshot before the next is taken (checked every SnapshotInterval,
	// with up to as much again of random jitter, as hashicorp/raft does);
	// the Raft log before a snapshot is then compacted, keeping
	// SnapshotThreshold entries for followers that lag.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// AutoLeaderRebalanceEnable (auto.leader.rebalance.enable): every
	// LeaderImbalanceCheckInterval (leader.imbalance.check.interval.seconds)
	// the active controller moves leadership back to preferred replicas
	// (live and in the ISR) for each broker whose share of preferred
	// partitions led by another exceeds LeaderImbalancePerBrokerPercentage
	// (leader.imbalance.per.broker.percentage). The same periodic check
	// retries elections of offline partitions (rebalance.go).
	AutoLeaderRebalanceEnable          bool
	LeaderImbalanceCheckInterval       time.Duration
	LeaderImbalancePerBrokerPercentage int
	// Authorizer turns on ACL checks of the controller's APIs
	// (controllerauth.go); SuperUsers and AllowEveryoneIfNoACL are
	// super.users and allow.everyone.if.no.acl.found, as on the brokers.
	Authorizer           bool
	SuperUsers           []string
	AllowEveryoneIfNoACL bool
	// Metrics is where the controller registers its Prometheus metrics,
	// every series labelled with its node id (metrics.go); it unregisters
	// them when it closes. nil: nothing is registered.
	Metrics prometheus.Registerer
	Logger  hclog.Logger
}

// DefaultConfig returns working values; NodeID, DataDir, the listeners and
// InitialControllers are left for the caller.
func DefaultConfig() Config {
	return Config{
		SessionTimeout:           9 * time.Second,
		DefaultNumPartitions:     1,
		DefaultReplicationFactor: 3,
		RaftHeartbeatTimeout:     time.Second,
		ApplyTimeout:             10 * time.Second,
		SnapshotThreshold:        8192, // hashicorp/raft's defaults
		SnapshotInterval:         120 * time.Second,
		// Kafka's defaults.
		AutoLeaderRebalanceEnable:          true,
		LeaderImbalanceCheckInterval:       300 * time.Second,
		LeaderImbalancePerBrokerPercentage: 10,
		Logger:                             hclog.NewNullLogger(),
	}
}

// Validate checks the config and names the field that is wrong.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("NodeID %d: must be >= 0", c.NodeID)
	}
	if c.DataDir == "" {
		return errors.New("DataDir is empty")
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("Listen: %w", err)
	}
	if c.AdvertisedListener != "" {
		if err := checkHostPort(c.AdvertisedListener); err != nil {
			return fmt.Errorf("AdvertisedListener: %w", err)
		}
	}
	switch c.ListenerProtocol {
	case "", security.Plaintext:
	case security.SSL:
	default:
		return fmt.Errorf("ListenerProtocol %s: not supported yet", c.ListenerProtocol)
	}
	switch c.RaftProtocol {
	case "", security.Plaintext, security.SSL:
	default:
		return fmt.Errorf("RaftProtocol %s: use PLAINTEXT or SSL", c.RaftProtocol)
	}
	if (c.ListenerProtocol.TLS() || c.RaftProtocol.TLS()) && !c.TLS.HasCert() {
		return errors.New("TLS needs a certificate and key (--tls-cert, --tls-key)")
	}
	if err := checkHostPort(c.RaftListen); err != nil {
		return fmt.Errorf("RaftListen: %w", err)
	}
	if c.Listen == c.RaftListen && !strings.HasSuffix(c.Listen, ":0") {
		return fmt.Errorf("Listen and RaftListen are both %s: they need different ports", c.Listen)
	}
	if len(c.InitialControllers) > 0 {
		seen := make(map[int32]bool)
		for _, v := range c.InitialControllers {
			if seen[v.ID] {
				return fmt.Errorf("InitialControllers: voter id %d appears twice", v.ID)
			}
			seen[v.ID] = true
			if err := checkHostPort(v.RaftAddr); err != nil {
				return fmt.Errorf("InitialControllers: voter %d: %w", v.ID, err)
			}
		}
	}
	if c.SessionTimeout <= 0 {
		return fmt.Errorf("SessionTimeout %v: must be > 0", c.SessionTimeout)
	}
	if c.DefaultNumPartitions < 1 {
		return fmt.Errorf("DefaultNumPartitions %d: must be >= 1", c.DefaultNumPartitions)
	}
	if c.DefaultReplicationFactor < 1 {
		return fmt.Errorf("DefaultReplicationFactor %d: must be >= 1", c.DefaultReplicationFactor)
	}
	if c.RaftHeartbeatTimeout < 10*time.Millisecond {
		return fmt.Errorf("RaftHeartbeatTimeout %v: must be >= 10ms", c.RaftHeartbeatTimeout)
	}
	if c.SessionTimeout <= c.RaftHeartbeatTimeout {
		return fmt.Errorf("SessionTimeout %v must exceed RaftHeartbeatTimeout %v, or a controller failover fences every broker", c.SessionTimeout, c.RaftHeartbeatTimeout)
	}
	if c.SnapshotThreshold < 1 {
		return fmt.Errorf("SnapshotThreshold %d: must be >= 1", c.SnapshotThreshold)
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		return fmt.Errorf("SnapshotInterval %v: must be >= 5ms", c.SnapshotInterval)
	}
	if c.ApplyTimeout <= 0 {
		return fmt.Errorf("ApplyTimeout %v: must be > 0", c.ApplyTimeout)
	}
	if c.LeaderImbalanceCheckInterval <= 0 {
		return fmt.Errorf("LeaderImbalanceCheckInterval %v: must be > 0", c.LeaderImbalanceCheckInterval)
	}
	if c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100 {
		return fmt.Errorf("LeaderImbalancePerBrokerPercentage %d: must be 0..100", c.LeaderImbalancePerBrokerPercentage)
	}
	return nil
}

func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("empty address: want host:port")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}
