// Package controller is Skein's metadata quorum member: a hashicorp/raft voter
// whose FSM holds the cluster metadata image, and, when it is the Raft
// leader, the active controller that makes every decision.
//
// This file is the contract; bodies are stubs until the implementation lands.
package controller

import (
	"time"

	"github.com/hashicorp/go-hclog"
)

// Voter is one member of the initial quorum: "ID@host:port" of its Raft listener.
type Voter struct {
	ID       int32
	RaftAddr string
}

// ParseVoters parses "1@127.0.0.1:9193,2@127.0.0.1:9194".
func ParseVoters(s string) ([]Voter, error) { panic("stub") }

// Config configures a controller.
type Config struct {
	NodeID  int32
	DataDir string
	// Listen is the Kafka listener (brokers and admin clients).
	Listen string
	// AdvertisedListener is what others dial; defaults to Listen.
	AdvertisedListener string
	// RaftListen is the Raft transport's address.
	RaftListen string
	// InitialControllers bootstraps the quorum on first start only.
	InitialControllers []Voter
	// SessionTimeout fences a broker without heartbeats for that long.
	SessionTimeout time.Duration
	Logger         hclog.Logger
}

// DefaultConfig returns working values.
func DefaultConfig() Config { panic("stub") }

// Validate checks the config.
func (c Config) Validate() error { panic("stub") }

// Controller is one running controller node.
type Controller struct{}

// New creates the controller; Start runs it.
func New(cfg Config) (*Controller, error) { panic("stub") }

// Start opens Raft state (bootstrapping on first start) and the Kafka listener.
func (c *Controller) Start() error { panic("stub") }

// Addr is the Kafka listener's address.
func (c *Controller) Addr() string { panic("stub") }

// Close shuts down. Idempotent.
func (c *Controller) Close() error { panic("stub") }
