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
