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
	// OnFollowers, when set, is called at the end of every ApplyImage, from
	// its goroutine and in image order, with every partition this broker
	// now follows (a live leader elsewhere), so the replica fetchers can
	// follow the leaders. It must not block for long nor call ApplyImage.
	OnFollowers func([]Follower)
}

// DefaultConfig returns working values for a broker id.
func DefaultConfig(nodeID int32) Config {
	return Config{NodeID: nodeID, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return errors.New("partition: NodeID must be >= 0")
	}
	if c.Logger == nil {
		return errors.New("partition: Logger is nil")
	}
	return nil
}
