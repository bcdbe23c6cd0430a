// Package dataplane is the broker: the Kafka listener, the handlers, the
// partition replicas and their logs.
//
// This file is the contract; bodies are stubs until the implementation lands.
package dataplane

import (
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a broker.
type Config struct {
	NodeID  int32
	DataDir string
	// Listen is the Kafka listener address.
	Listen string
	// AdvertisedListener is host:port given to clients; defaults to Listen.
	AdvertisedListener string
	Rack               string
	// Controllers are the controllers' Kafka listeners.
	Controllers []string

	AutoCreateTopics         bool  // auto.create.topics.enable, default true
	NumPartitions            int32 // num.partitions, default 1
	DefaultReplicationFactor int16 // default.replication.factor, default 1
	MessageMaxBytes          int32 // message.max.bytes, default 1048588
	HeartbeatInterval        time.Duration
	Logger                   hclog.Logger
}

// DefaultConfig returns working values.
func DefaultConfig() Config { panic("stub") }

// Validate checks the config.
func (c Config) Validate() error { panic("stub") }

// Broker is one running data node.
type Broker struct{}

// NewBroker creates a broker; Start runs it.
func NewBroker(cfg Config) (*Broker, error) { panic("stub") }

// Start opens storage, registers with the controllers and starts listening.
func (b *Broker) Start() error { panic("stub") }

// Addr is the Kafka listener's address.
func (b *Broker) Addr() string { panic("stub") }

// Close shuts down cleanly (leaving the clean-shutdown marker). Idempotent.
func (b *Broker) Close() error { panic("stub") }
