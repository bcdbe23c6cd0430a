// Package client is how a broker talks to the controller quorum: it
// registers the broker, heartbeats, follows the metadata log (long-polling
// the active controller for the records after the index it has applied, or a
// full image when far behind), forwards admin requests to the active
// controller, and allocates producer-id blocks. Everything goes over the Kafka
// protocol (kmsg), sent with a kgo client to the controllers' listeners.
//
// This file is the contract; bodies are stubs until the implementation lands.
package client

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// Config configures the broker's controller client.
type Config struct {
	// Controllers are the controllers' Kafka listeners, host:port.
	Controllers []string
	NodeID      int32
	// AdvertisedHost and AdvertisedPort are what clients are told to dial.
	AdvertisedHost string
	AdvertisedPort int32
	Rack           string
	// CleanShutdown says the broker's data dir had a clean-shutdown marker.
	CleanShutdown     bool
	HeartbeatInterval time.Duration
	// OnImage is called, from one goroutine and in order, with every new
	// image the broker applies. It must not block for long.
	OnImage func(*image.Image)
	Logger  hclog.Logger
}

// Client is a broker's session with the controller quorum.
type Client struct{}

// New returns a client; Start connects.
func New(cfg Config) (*Client, error) { panic("stub") }

// Start registers the broker (retrying until it succeeds or ctx ends) and
// starts the heartbeat and metadata loops.
func (c *Client) Start(ctx context.Context) error { panic("stub") }

// Image returns the latest applied image; never nil (empty before the first).
func (c *Client) Image() *image.Image { panic("stub") }

// WaitFor blocks until cond holds for the applied image or ctx ends.
func (c *Client) WaitFor(ctx context.Context, cond func(*image.Image) bool) (*image.Image, error) {
	panic("stub")
}

// BrokerEpoch is the epoch of the current registration.
func (c *Client) BrokerEpoch() int64 { panic("stub") }

// Forward sends an admin request (CreateTopics, DeleteTopics,
// CreatePartitions, IncrementalAlterConfigs, ...) to the active controller
// and returns its response; it retries on NOT_CONTROLLER / connection loss
// until ctx ends.
func (c *Client) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	panic("stub")
}

// AllocateProducerIDs asks the controller for a block of producer ids.
func (c *Client) AllocateProducerIDs(ctx context.Context) (first int64, count int32, err error) {
	panic("stub")
}

// Close stops the loops. Idempotent.
func (c *Client) Close() error { panic("stub") }
