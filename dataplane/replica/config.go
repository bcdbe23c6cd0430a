package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/dataplane/throttle"
)

// Config configures a Manager.
type Config struct {
	// NodeID is this broker's id, sent as the fetch's replica id.
	NodeID int32
	// BrokerEpoch returns this broker's registration epoch, sent as
	// ReplicaState.ReplicaEpoch (Fetch v15+); nil sends -1.
	BrokerEpoch func() int64
	// MaxWait is how long the leader may hold a fetch without new data
	// (replica.fetch.wait.max.ms).
	MaxWait time.Duration
	// MinBytes is replica.fetch.min.bytes.
	MinBytes int32
	// MaxBytes caps one fetch response (replica.fetch.response.max.bytes).
	MaxBytes int32
	// PartitionMaxBytes caps one partition's data in a response
	// (replica.fetch.max.bytes); the leader still sends one whole batch.
	PartitionMaxBytes int32
	// BackoffInitial and BackoffMax bound the exponential backoff after a
	// failed fetch (replica.fetch.backoff.ms is the initial one).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// NoFetchSessions sends sessionless full fetches (every partition in
	// every request) instead of using a fetch session (KIP-227).
	NoFetchSessions bool
	// Throttle is the follower side of the replication quotas (KIP-73);
	// nil throttles nothing.
	Throttle *throttle.Side
	// Dial, when set, connects to leaders instead of plain TCP: over TLS
	// when the inter-broker listener's protocol is SSL
	// (security.TLS.Dial). Its context bounds the dial.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger hclog.Logger
}

// DefaultConfig returns Kafka's replica fetcher defaults for a broker id.
func DefaultConfig(nodeID int32) Config {
	return Config{
		NodeID:            nodeID,
		MaxWait:           500 * time.Millisecond,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		PartitionMaxBytes: 1 << 20,
		BackoffInitial:    50 * time.Millisecond,
		BackoffMax:        time.Second,
		Logger:            hclog.NewNullLogger(),
	}
}

// Validate checks the config and names the first wrong field.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("replica: NodeID %d must be >= 0", c.NodeID)
	case c.MaxWait <= 0 || c.MaxWait.Milliseconds() > math.MaxInt32:
		return fmt.Errorf("replica: MaxWait %v must be > 0 and at most %d ms", c.MaxWait, math.MaxInt32)
	case c.MinBytes < 1:
		return fmt.Errorf("replica: MinBytes %d must be >= 1", c.MinBytes)
	case c.PartitionMaxBytes < 1:
		return fmt.Errorf("replica: PartitionMaxBytes %d must be >= 1", c.PartitionMaxBytes)
	case c.MaxBytes < c.PartitionMaxBytes:
		return fmt.Errorf("replica: MaxBytes %d must be >= PartitionMaxBytes %d", c.MaxBytes, c.PartitionMaxBytes)
	case c.BackoffInitial <= 0:
		return fmt.Errorf("replica: BackoffInitial %v must be > 0", c.BackoffInitial)
	case c.BackoffMax < c.BackoffInitial:
		return fmt.Errorf("replica: BackoffMax %v must be >= BackoffInitial %v", c.BackoffMax, c.BackoffInitial)
	case c.Logger == nil:
		return errors.New("replica: Logger is nil")
	}
	return nil
}
