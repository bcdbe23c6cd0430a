package console

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/image"
)

// Config configures a Console.
type Config struct {
	// Node names the node serving the console, as the pages say it
	// ("broker 101", "controller 1").
	Node string
	// Image returns the node's current metadata image (nil or an empty
	// image before it has one). Required.
	Image func() *image.Image
	// Bootstrap returns Kafka listeners to try first for the cluster
	// client (a broker: its own); the brokers of the image follow them.
	// Optional.
	Bootstrap func() []string
	// QuorumAddr is a controller's Kafka listener to send DescribeQuorum
	// to (a controller: its own); empty: through the brokers, which
	// forward it to the controllers.
	QuorumAddr func() string
	// Dial and QuorumDial, when set, connect to the brokers and to
	// QuorumAddr instead of plain TCP (their listeners speak SSL).
	Dial, QuorumDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds the collection of one page.
	Timeout time.Duration
	// ProbeTimeout bounds the dial that tells whether a broker is alive.
	ProbeTimeout time.Duration
	// ReadOnly leaves out the create-topic form (POST /topics).
	ReadOnly bool
	// RefreshPeriod is how often an open page fetches itself again.
	RefreshPeriod time.Duration
	Logger        hclog.Logger
}

// DefaultConfig returns working values; Image must still be set.
func DefaultConfig() Config {
	return Config{
		Timeout:       4 * time.Second,
		ProbeTimeout:  700 * time.Millisecond,
		RefreshPeriod: 2 * time.Second,
	}
}

// Validate names the first wrong field.
func (c Config) Validate() error {
	switch {
	case c.Image == nil:
		return errors.New("console: Image is required")
	case c.Timeout <= 0:
		return errors.New("console: Timeout must be > 0")
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.Timeout:
		return errors.New("console: ProbeTimeout must be > 0 and < Timeout")
	case c.RefreshPeriod < 500*time.Millisecond:
		return errors.New("console: RefreshPeriod must be at least 500ms")
	}
	return nil
}
