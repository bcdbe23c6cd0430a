package partition

import (
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Manager.
type Config struct {
	// NodeID is this broker's id; replicas and leaders in the image are
	// matched against it.
	NodeID int32
	// Logger receives role changes and log creation/deletion (Info), never
	// anything per record.
	Logger hclog.Logger
	// Now is the clock used for LogAppendTime; nil means time.Now.
	Now func() time.Time
	// OnFollowers, when set, is called at the end of an ApplyImage that
	// changed what this broker follows (a hosted replica with a live
	// leader elsewhere), from its goroutine and in image order, with the
	// changes, so the replica fetchers can follow the leaders. Folding the
	// changes of every call gives the full set. It must not block for
	// long nor call ApplyImage.
	OnFollowers func(FollowerChanges)
	// AlterPartition, when set, sends this broker's ISR changes (as
	// partition leader) to the active controller (isr.go); nil: the ISR
	// changes only by metadata.
	AlterPartition AlterPartitionFunc
	// BrokerEpoch returns this broker's registration epoch, sent for the
	// leader in AlterPartition; nil sends -1.
	BrokerEpoch func() int64
	// ReplicaLagTimeMax is replica.lag.time.max.ms: an ISR follower not
	// caught up for this long is dropped from the ISR. Zero means
	// DefaultReplicaLagTimeMax.
	ReplicaLagTimeMax time.Duration
	// InterBrokerListener names the listener of the leaders that this
	// broker's followers dial (Kafka's inter.broker.listener.name); ""
	// takes each broker's first listener. A leader without a listener of
	// that name is not followed (its partitions wait for one that has).
	InterBrokerListener string
}

// DefaultConfig returns working values for a broker id.
func DefaultConfig(nodeID int32) Config {
	return Config{NodeID: nodeID, Logger: hclog.NewNullLogger(), Now: time.Now, ReplicaLagTimeMax: DefaultReplicaLagTimeMax}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return errors.New("partition: NodeID must be >= 0")
	}
	if c.Logger == nil {
		return errors.New("partition: Logger is nil")
	}
	if c.ReplicaLagTimeMax < 0 {
		return errors.New("partition: ReplicaLagTimeMax must be >= 0")
	}
	return nil
}
