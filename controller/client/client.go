// Package client is how a broker talks to the controller quorum: it
// registers the broker, heartbeats, follows the metadata (long-polling the
// controllers' "__cluster_metadata" partition for the records after the image
// it has applied: deltas it applies with metalog, or a snapshot), forwards admin requests to the active controller, and
// allocates producer-id blocks. Everything goes over the Kafka protocol
// (kmsg), sent with a kgo client straight to the controllers' listeners (the
// seeds; kgo's own metadata routing is not used, controllers do not serve
// Metadata).
//
// Goroutines: Start runs two, stopped by Close: the heartbeat loop (which
// also re-registers when the controller no longer knows this registration)
// and the metadata loop (which alone applies images and calls OnImage, in
// index order). Every other method may be called from any goroutine.
package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// Defaults.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	// DefaultMetadataMaxWait is how long one metadata long poll may wait
	// on the controller for a newer image.
	DefaultMetadataMaxWait = 5 * time.Second
)

// metadataPollSlack is how much longer than MetadataMaxWait a metadata poll
// may take before it is given up and the next controller asked.
const metadataPollSlack = 2 * time.Second

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("controller client closed")

// Config configures the broker's controller client.
type Config struct {
	// Controllers are the controllers' Kafka listeners, host:port.
	Controllers []string
	// Dial, when set, connects to the controllers instead of plain TCP:
	// over TLS when their listener's protocol is SSL (security.TLS.Dial).
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	NodeID int32
	// Listeners are the broker's advertised listeners, registered with the
	// controller in this order (the first is also the registration's
	// legacy Host and Port). When empty, AdvertisedHost and AdvertisedPort
	// are its one listener, named image.DefaultListenerName.
	Listeners []image.Endpoint
	// AdvertisedHost and AdvertisedPort are what clients are told to dial
	// when Listeners is empty.
	AdvertisedHost string
	AdvertisedPort int32
	Rack           string
	// PreviousBrokerEpoch is the broker epoch this broker had when it last
	// shut down cleanly, read from its clean-shutdown marker; 0 or -1 when
	// there was no marker, or one without an epoch. The first registration
	// sends it as BrokerRegistration's PreviousBrokerEpoch (KIP-966); the
	// controller counts a registration whose PreviousBrokerEpoch is not the
	// epoch of the broker's current registration as an unclean restart (it
	// leaves every ISR and ELR). Later registrations of the same process
	// (after a lost session) send the epoch they had: still clean.
	PreviousBrokerEpoch int64
	// HeartbeatInterval defaults to DefaultHeartbeatInterval when zero.
	HeartbeatInterval time.Duration
	// MetadataMaxWait bounds one metadata long poll; DefaultMetadataMaxWait
	// when zero.
	MetadataMaxWait time.Duration
	// OnImage is called, from one goroutine and in order, with every new
	// image the broker applies: once per metadata answer (one snapshot, or
	// all the deltas of the answer applied), not once per delta, and when
	// only the active controller changed (same Index). Consecutive images
	// share what did not change (package image, "Sharing"), except across
	// a snapshot. It must not block for long. The image is published
	// (Image, WaitFor, the offset reported in heartbeats) only after
	// OnImage returns.
	OnImage func(*image.Image)
	Logger  hclog.Logger
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case len(c.Controllers) == 0:
		return errors.New("Controllers is empty")
	case c.NodeID < 0:
		return fmt.Errorf("NodeID %d: must be >= 0", c.NodeID)
	case len(c.Listeners) == 0 && c.AdvertisedHost == "":
		return errors.New("AdvertisedHost is empty")
	case len(c.Listeners) == 0 && (c.AdvertisedPort < 1 || c.AdvertisedPort > 65535):
		return fmt.Errorf("AdvertisedPort %d: must be 1..65535", c.AdvertisedPort)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("HeartbeatInterval %v: must be >= 0", c.HeartbeatInterval)
	case c.MetadataMaxWait < 0:
		return fmt.Errorf("MetadataMaxWait %v: must be >= 0", c.MetadataMaxWait)
	}
	for _, l := range c.Listeners {
		switch {
		case l.Name == "":
			return errors.New("a listener has no name")
		case l.Host == "":
			return fmt.Errorf("listener %s: host is empty", l.Name)
		case l.Port < 1 || l.Port > 65535:
			return fmt.Errorf("listener %s: port %d must be 1..65535", l.Name, l.Port)
		}
	}
	return nil
}

// listeners are the listeners to register.
func (c Config) listeners() []image.Endpoint {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []image.Endpoint{{Name: image.DefaultListenerName, Host: c.AdvertisedHost, Port: c.AdvertisedPort}}
}

// Client is a broker's session with the controller quorum.
type Client struct {
	cfg         Config
	log         hclog.Logger
	kcl         *kgo.Client
	incarnation [16]byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	started   atomic.Bool
	closeOnce sync.Once

	// activeSeed is the index of the seed believed to be the active controller.
	activeSeed atomic.Int32
	epoch      atomic.Int64
	fenced     atomic.Bool
	state      atomic.Pointer[published]
	// lastAnswer is the last metadata poll answered (MetadataCaughtUp).
	lastAnswer atomic.Pointer[metadataAnswer]

	heartbeatKick chan struct{}
	wantShutdown  atomic.Bool
	shutdownOnce  sync.Once
	shutdownDone  chan struct{}
}

// published is one applied image and a channel closed when it is replaced.
type published struct {
	img     *image.Image
	changed chan struct{}
}

// New returns a client; Start connects.
func New(cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.MetadataMaxWait == 0 {
		cfg.MetadataMaxWait = DefaultMetadataMaxWait
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("controller client: %w", err)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Controllers...),
		kgo.ClientID("skein-broker-" + strconv.Itoa(int(cfg.NodeID))),
	}
	if cfg.Dial != nil {
		opts = append(opts, kgo.Dialer(cfg.Dial))
	}
	kcl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("controller client: %w", err)
	}
	c := &Client{
		cfg:           cfg,
		log:           cfg.Logger,
		kcl:           kcl,
		heartbeatKick: make(chan struct{}, 1),
		shutdownDone:  make(chan struct{}),
	}
	if _, err := rand.Read(c.incarnation[:]); err != nil {
		kcl.Close()
		return nil, fmt.Errorf("incarnation id: %w", err)
	}
	c.incarnation[6] = c.incarnation[6]&0x0f | 0x40 // a version-4 UUID
	c.incarnation[8] = c.incarnation[8]&0x3f | 0x80
	c.epoch.Store(-1)
	c.fenced.Store(true)
	c.state.Store(&published{img: image.New(), changed: make(chan struct{})})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start registers the broker (retrying until it succeeds or ctx ends),
// starts the heartbeat and metadata loops, and returns once an image that
// holds this registration has been applied (passed to OnImage), so the
// broker serves correct metadata from the start. The broker is still fenced
// then; the next heartbeat (sent at once) unfences it. ctx bounds only the
// start; the loops run until Close.
func (c *Client) Start(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("controller client already started")
	}
	if err := c.register(ctx); err != nil {
		return err
	}
	c.goTracked(c.heartbeatLoop)
	c.goTracked(c.metadataLoop)
	epoch := c.BrokerEpoch()
	_, err := c.WaitFor(ctx, func(img *image.Image) bool {
		b := img.Brokers[c.cfg.NodeID]
		return b != nil && b.Epoch >= epoch
	})
	if err != nil {
		return fmt.Errorf("wait for metadata with this broker's registration: %w", err)
	}
	return nil
}

// Image returns the latest applied image; never nil (empty before the first).
func (c *Client) Image() *image.Image { return c.state.Load().img }

// WaitFor blocks until cond holds for the applied image or ctx ends, and
// returns that image. cond is evaluated on every new image, no polling.
func (c *Client) WaitFor(ctx context.Context, cond func(*image.Image) bool) (*image.Image, error) {
	for {
		st := c.state.Load()
		if cond(st.img) {
			return st.img, nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return st.img, ctx.Err()
		case <-c.ctx.Done():
			return st.img, ErrClosed
		}
	}
}

// BrokerEpoch is the epoch of the current registration (-1 before the first).
func (c *Client) BrokerEpoch() int64 { return c.epoch.Load() }

// Fenced says whether the controller last reported this broker fenced.
func (c *Client) Fenced() bool { return c.fenced.Load() }

// Forward sends an admin request (CreateTopics, DeleteTopics,
// CreatePartitions, IncrementalAlterConfigs, ...) to the active controller
// and returns its response; it retries on NOT_CONTROLLER / connection loss
// until ctx ends. req is not modified: a copy is sent at the version the
// controller supports (the response is at that version; fields common to all
// versions are filled). DeleteTopics names given in TopicNames (v0-v5) are
// sent as Topics (v6).
func (c *Client) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	cp, err := copyRequest(req)
	if err != nil {
		return nil, err
	}
	if dt, ok := cp.(*kmsg.DeleteTopicsRequest); ok && len(dt.TopicNames) > 0 {
		for _, name := range dt.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			dt.Topics = append(dt.Topics, t)
		}
		dt.TopicNames = nil
	}
	return c.send(ctx, cp)
}

// AlterPartition sends an ISR change (AlterPartition) to the active
// controller, as this broker (BrokerID and BrokerEpoch are set from the
// current registration; req is not modified), retrying on NOT_CONTROLLER and
// connection loss until ctx ends. Per-partition errors are the caller's.
func (c *Client) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	cp, err := copyRequest(req)
	if err != nil {
		return nil, err
	}
	ap := cp.(*kmsg.AlterPartitionRequest)
	ap.BrokerID, ap.BrokerEpoch = c.cfg.NodeID, c.BrokerEpoch()
	resp, err := c.send(ctx, ap)
	if err != nil {
		return nil, err
	}
	out, ok := resp.(*kmsg.AlterPartitionResponse)
	if !ok {
		return nil, fmt.Errorf("alter partition: unexpected response %T", resp)
	}
	if out.ErrorCode == kerr.StaleBrokerEpoch.Code || out.ErrorCode == kerr.BrokerIDNotRegistered.Code {
		c.kickHeartbeat()
	}
	return out, nil
}

// AllocateProducerIDs asks the controller for a block of producer ids,
// retrying (while the heartbeat loop re-registers) on a stale epoch until ctx
// ends.
func (c *Client) AllocateProducerIDs(ctx context.Context) (first int64, count int32, err error) {
	bo := newBackoff()
	for {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = c.cfg.NodeID, c.BrokerEpoch()
		kresp, err := c.send(ctx, req)
		if err != nil {
			return 0, 0, err
		}
		resp := kresp.(*kmsg.AllocateProducerIDsResponse)
		switch resp.ErrorCode {
		case 0:
			return resp.ProducerIDStart, resp.ProducerIDLen, nil
		case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
			c.kickHeartbeat()
			if err := sleep(ctx, bo.NextBackOff()); err != nil {
				return 0, 0, fmt.Errorf("allocate producer ids: %w (last error: %v)", err, kerr.ErrorForCode(resp.ErrorCode))
			}
		default:
			return 0, 0, fmt.Errorf("allocate producer ids: %w", kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}

// Shutdown asks the controller for a controlled shutdown: heartbeats say
// WantShutdown, the controller moves this broker's leaderships away and
// takes it out of ISRs, and Shutdown returns once the controller says
// ShouldShutdown (or with ctx's error). Close afterwards.
func (c *Client) Shutdown(ctx context.Context) error {
	if !c.started.Load() {
		return nil
	}
	c.wantShutdown.Store(true)
	c.kickHeartbeat()
	select {
	case <-c.shutdownDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("controlled shutdown: %w", ctx.Err())
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// Close stops the loops and closes connections. Idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
		c.kcl.Close()
	})
	return nil
}

func (c *Client) goTracked(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

func (c *Client) kickHeartbeat() {
	select {
	case c.heartbeatKick <- struct{}{}:
	default:
	}
}

// register sends BrokerRegistration until it succeeds or ctx ends.
func (c *Client) register(ctx context.Context) error {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = c.cfg.NodeID
	req.ClusterID = c.Image().ClusterID
	req.IncarnationID = c.incarnation
	for _, e := range c.cfg.listeners() {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port = e.Name, e.Host, uint16(e.Port)
		l.SecurityProtocol = 0 // PLAINTEXT: the only protocol
		req.Listeners = append(req.Listeners, l)
	}
	if c.cfg.Rack != "" {
		req.Rack = kmsg.StringPtr(c.cfg.Rack)
	}
	req.PreviousBrokerEpoch = c.BrokerEpoch()
	if req.PreviousBrokerEpoch == -1 && c.cfg.PreviousBrokerEpoch > 0 {
		req.PreviousBrokerEpoch = c.cfg.PreviousBrokerEpoch
	}
	bo := newBackoff()
	for {
		kresp, err := c.send(ctx, req)
		if err != nil {
			return fmt.Errorf("register broker %d: %w", c.cfg.NodeID, err)
		}
		resp := kresp.(*kmsg.BrokerRegistrationResponse)
		if resp.ErrorCode == 0 {
			c.epoch.Store(resp.BrokerEpoch)
			c.fenced.Store(true)
			c.log.Info("registered with the controller", "broker", c.cfg.NodeID, "epoch", resp.BrokerEpoch,
				"previous_broker_epoch", req.PreviousBrokerEpoch)
			return nil
		}
		rerr := kerr.ErrorForCode(resp.ErrorCode)
		c.log.Warn("broker registration refused; retrying", "broker", c.cfg.NodeID, "error", rerr)
		if err := sleep(ctx, bo.NextBackOff()); err != nil {
			return fmt.Errorf("register broker %d: %w (last error: %v)", c.cfg.NodeID, err, rerr)
		}
	}
}

// send sends req to the active controller, moving to the next seed on
// NOT_CONTROLLER or a connection error, with backoff, until ctx ends. A
// seed that did not answer before ctx ended is left too: the next request
// goes to the next seed. A controller whose host dropped off the network
// answers nothing and resets nothing; franz-go gives such a connection up
// only after its read timeout (10 s), and until then every heartbeat
// would wait on it again, while another controller leads.
func (c *Client) send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	bo := newBackoff()
	start, warned := time.Now(), false
	for attempt := 1; ; attempt++ {
		seeds := c.kcl.SeedBrokers()
		if len(seeds) == 0 {
			return nil, errors.New("no controllers configured")
		}
		i := int(c.activeSeed.Load()) % len(seeds)
		resp, err := seeds[i].Request(ctx, req)
		if err == nil && !notController(resp) {
			return resp, nil
		}
		if err == nil {
			err = kerr.NotController
		}
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if ctx.Err() != nil {
			c.activeSeed.CompareAndSwap(int32(i), int32((i+1)%len(seeds)))
			if errors.Is(err, ctx.Err()) {
				return nil, err
			}
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		if !warned && attempt >= failingAttempts && time.Since(start) >= failingFor {
			warned = true
			c.log.Warn("controller request keeps failing; still retrying", "request", kmsg.NameForKey(req.Key()),
				"controllers", c.cfg.Controllers, "error", err)
		}
		c.activeSeed.CompareAndSwap(int32(i), int32((i+1)%len(seeds)))
		if serr := sleep(ctx, bo.NextBackOff()); serr != nil {
			return nil, fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}

// failingAttempts and failingFor are how many attempts of one request, and
// how long, before send logs that the controllers are unreachable (once per
// request): a quorum electing its first leader (a second or two) is not
// worth a warning.
const (
	failingAttempts = 8
	failingFor      = 3 * time.Second
)

// notController says whether the controller answered NOT_CONTROLLER.
func notController(resp kmsg.Response) bool {
	nc := kerr.NotController.Code
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode == nc
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode == nc
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode == nc
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.ElectLeadersResponse:
		if r.ErrorCode == nc {
			return true
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == nc {
					return true
				}
			}
		}
	case *kmsg.DescribeQuorumResponse:
		return r.ErrorCode == nc
	case *kmsg.AlterPartitionResponse:
		return r.ErrorCode == nc
	case *kmsg.AlterPartitionAssignmentsResponse:
		if r.ErrorCode == nc {
			return true
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == nc {
					return true
				}
			}
		}
	case *kmsg.ListPartitionReassignmentsResponse:
		return r.ErrorCode == nc
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, res := range r.Resources {
			if res.ErrorCode == nc {
				return true
			}
		}
	}
	return false
}

// copyRequest deep-copies a request through its own encoding.
func copyRequest(req kmsg.Request) (kmsg.Request, error) {
	cp := kmsg.RequestForKey(req.Key())
	if cp == nil {
		return nil, fmt.Errorf("forward: unknown api key %d", req.Key())
	}
	cp.SetVersion(req.GetVersion())
	if err := cp.ReadFrom(req.AppendTo(nil)); err != nil {
		return nil, fmt.Errorf("forward %s: copy request: %w", kmsg.NameForKey(req.Key()), err)
	}
	return cp, nil
}

func newBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
