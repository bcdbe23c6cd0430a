// Package dataplane is the broker: the Kafka listener, the handlers, the
// partition replicas and their logs.
//
// A Broker wires the pieces together and owns their lifecycle:
//
//	storage.Manager    the data directory (partition logs, checkpoints,
//	                   the clean-shutdown marker)
//	partition.Manager  the hosted replicas, driven by metadata images
//	replica.Manager    the follower fetchers, one per leader broker, driven
//	                   by partition.Manager's follower assignments
//	client.Client      the session with the controller quorum; every image
//	                   it applies goes to partition.Manager.ApplyImage
//	wire.Server        the Kafka listener, dispatching to kafka.Handlers
//
// Start opens them in that order, but binds the listener first so that the
// broker registers with its real port (Listen may be port 0); it serves
// requests only once the controller client has applied an image in which
// this broker is registered and unfenced (or after unfenceWait). Close undoes
// it in reverse.
//
// Metrics (metrics.go) and readiness (Ready) read the components' state
// when asked; the request path only bumps counters.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	ksasl "github.com/twmb/franz-go/pkg/sasl"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/kafka"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/replica"
	"github.com/skein-io/skein/dataplane/throttle"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/internal/security/sasl"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
)

// Config configures a broker.
type Config struct {
	NodeID  int32
	DataDir string
	// Listen is the Kafka listener address when Listeners is empty: the
	// broker's one listener, named image.DefaultListenerName.
	Listen string
	// AdvertisedListener is host:port given to clients of Listen; defaults
	// to Listen.
	AdvertisedListener string
	// Listeners are the broker's named Kafka listeners (Kafka's listeners
	// and advertised.listeners), at least one when set; Listen and
	// AdvertisedListener are then unused. A client gets the brokers'
	// addresses on the listener it connected through (Metadata,
	// FindCoordinator, DescribeCluster, Produce's leader hints), and
	// brokers without that listener are left out of the answer.
	Listeners []Listener
	// InterBrokerListenerName names the listener followers dial leaders
	// on (Kafka's inter.broker.listener.name): every broker of the
	// cluster needs a listener of that name. "" means the first of
	// Listeners (image.DefaultListenerName with Listen).
	InterBrokerListenerName string
	// ListenerProtocols is Kafka's listener.security.protocol.map: each
	// listener's security protocol. A listener not in it speaks the
	// protocol its name names (a listener called SSL speaks SSL), else
	// ListenerProtocol (PLAINTEXT when empty). Followers dial leaders with
	// the inter-broker listener's protocol.
	ListenerProtocols security.ProtocolMap
	ListenerProtocol  security.Protocol
	// SASLEnabledMechanisms are the mechanisms SASL listeners offer
	// (sasl.enabled.mechanisms); empty: all of sasl.Mechanisms.
	SASLEnabledMechanisms []sasl.Mechanism
	// ConnectionsMaxReauth is connections.max.reauth.ms: how long a SASL
	// session lasts before the client must re-authenticate (KIP-368);
	// 0 (the default): forever.
	ConnectionsMaxReauth time.Duration
	// InterBrokerSASL is how followers (and the broker's own admin
	// client) log in when the inter-broker listener is SASL_*, and how the
	// broker logs in to SASL_* controllers
	// (sasl.mechanism.inter.broker.protocol and the broker's JAAS login).
	InterBrokerSASL sasl.Login
	// TLS is the broker's TLS material: the server certificate of its
	// SSL and SASL_SSL listeners (and their client CA for mutual TLS), and
	// what it trusts and presents when it dials a TLS leader or
	// controller. Required when a listener or ControllerProtocol is TLS.
	TLS  *security.TLS
	Rack string
	// Controllers are the controllers' Kafka listeners.
	Controllers []string
	// ControllerProtocol is the security protocol of the controllers'
	// listener (PLAINTEXT when empty); with SASL_* the broker logs in to
	// them with InterBrokerSASL.
	ControllerProtocol security.Protocol

	AutoCreateTopics bool  // auto.create.topics.enable, default true
	NumPartitions    int32 // num.partitions, default 1
	// DefaultReplicationFactor (default.replication.factor) of auto-created
	// topics; 0 (the default) leaves it to the controller, which uses 3
	// capped at the number of unfenced brokers.
	DefaultReplicationFactor int16
	MessageMaxBytes          int32 // message.max.bytes, default 1048588
	HeartbeatInterval        time.Duration
	// ReplicaLagTimeMax is replica.lag.time.max.ms (default 30 s): an
	// in-sync follower not caught up for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// ReplicaFetchWaitMax is replica.fetch.wait.max.ms (default 500 ms):
	// how long a leader may hold this broker's follower fetch when there
	// is nothing new to replicate.
	ReplicaFetchWaitMax time.Duration
	// ReplicaFetchLinger: how long this broker, as leader, holds a
	// follower's fetch that parked once new records woke it, when records
	// arrive often, so one answer carries more (kafka.Config
	// .ReplicaFetchLinger); 0: answered at once (Kafka's behaviour).
	ReplicaFetchLinger time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms (storage.Config;
	// 0: the default, a day; negative: never).
	ProducerIDExpiration time.Duration
	// LogRetentionCheckInterval is log.retention.check.interval.ms: how
	// often retention looks for segments to delete (0: storage's default).
	LogRetentionCheckInterval time.Duration
	// LogCleanerBackoff is log.cleaner.backoff.ms: how often the log
	// cleaner looks for compacted logs to clean; 0: storage's default.
	LogCleanerBackoff time.Duration
	// LogWritebackBytes: a segment's new bytes are handed to the disk
	// every this many (storage.Config.WritebackBytes); 0: storage's
	// default (1 MiB), negative: off (the kernel's own writeback alone).
	LogWritebackBytes int64
	// FetchSessionCacheSlots is max.incremental.fetch.session.cache.slots:
	// how many fetch sessions (KIP-227) the broker keeps (default 1000);
	// 0 turns sessions off (every fetch is a full one).
	FetchSessionCacheSlots int
	// RecoveryThreads is num.recovery.threads.per.data.dir: how many
	// partition logs storage opens (recovers), creates or closes at once;
	// 0: storage.DefaultRecoveryThreads().
	RecoveryThreads int
	// Groups configures the group coordinator (offsets.topic.*, group.*,
	// offsets.retention.*); the broker sets its NodeID and Logger.
	Groups group.Config
	// Txns configures the transaction coordinator (transaction.state.log.*,
	// transaction.max.timeout.ms, ...); the broker sets its NodeID and
	// Logger.
	Txns txn.Config
	// Metrics is where the broker registers its Prometheus metrics, every
	// series labelled with its node id (metrics.go, internal/metrics); the
	// broker unregisters them when it closes. nil: it counts but registers
	// nothing.
	Metrics prometheus.Registerer
	// MetricsPerPartition adds per-partition series (log size and
	// segments, offsets, under-replication) for every hosted replica.
	MetricsPerPartition bool
	// Authorizer turns on ACL checks of every request (Kafka's
	// authorizer.class.name set to its StandardAuthorizer); SuperUsers
	// and AllowEveryoneIfNoACL are super.users and
	// allow.everyone.if.no.acl.found.
	Authorizer           bool
	SuperUsers           []string
	AllowEveryoneIfNoACL bool
	Logger               hclog.Logger
}

// Listener is one named Kafka listener of a broker.
type Listener struct {
	// Name is the listener's name, such as INTERNAL or EXTERNAL (compared
	// case-insensitively; registered in upper case).
	Name string
	// Addr is the host:port to bind; port 0 takes a free port.
	Addr string
	// Advertised is the host:port given to clients that connect through a
	// listener of this name (port 0: the bound port). "" advertises Addr (the bound port when
	// Addr's is 0; this host's name when Addr binds every interface).
	Advertised string
}

// Kafka's defaults.
const (
	defaultListen            = "127.0.0.1:9092"
	defaultMessageMaxBytes   = 1048588
	defaultHeartbeatInterval = 2 * time.Second
	// DefaultReplicaFetchLinger is ReplicaFetchLinger's default: at 20,000
	// records/s of 1 KiB on two cores it cut the brokers' CPU per GB by a
	// third and lowered p99 produce latency, for about 0.9 ms more p50
	// (issue 13, README).
	DefaultReplicaFetchLinger = time.Millisecond
	// maxReplicaFetchLinger bounds it: it adds to acks=all latency.
	maxReplicaFetchLinger = 100 * time.Millisecond
	// defaultFetchMaxBytes is Kafka's fetch.max.bytes (55 MiB), the cap of
	// one fetch response.
	defaultFetchMaxBytes = 55 << 20
	// unfenceWait bounds Start's wait for the controller to unfence this
	// broker after registering (normally one heartbeat).
	unfenceWait = 30 * time.Second
	// controlledShutdownWait bounds Close's controlled shutdown.
	controlledShutdownWait = 10 * time.Second
)

// DefaultConfig returns working values. NodeID, DataDir and Controllers have
// no useful default and must be set.
func DefaultConfig() Config {
	return Config{
		NodeID:                   0,
		Listen:                   defaultListen,
		AutoCreateTopics:         true,
		NumPartitions:            1,
		DefaultReplicationFactor: 0,
		MessageMaxBytes:          defaultMessageMaxBytes,
		HeartbeatInterval:        defaultHeartbeatInterval,
		ReplicaLagTimeMax:        partition.DefaultReplicaLagTimeMax,
		ReplicaFetchWaitMax:      replica.DefaultConfig(0).MaxWait,
		ReplicaFetchLinger:       DefaultReplicaFetchLinger,
		FetchSessionCacheSlots:   kafka.DefaultFetchSessionSlots,
		Groups:                   group.DefaultConfig(0),
		Txns:                     txn.DefaultConfig(0),
		Logger:                   hclog.NewNullLogger(),
	}
}

// Validate checks the config and names the first wrong field.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("broker: NodeID %d must be >= 0", c.NodeID)
	}
	if c.DataDir == "" {
		return errors.New("broker: DataDir is empty")
	}
	if c.RecoveryThreads < 0 {
		return fmt.Errorf("broker: RecoveryThreads %d must be >= 0", c.RecoveryThreads)
	}
	if len(c.Listeners) == 0 {
		if _, _, err := splitHostPort(c.Listen); err != nil {
			return fmt.Errorf("broker: Listen %q: %w", c.Listen, err)
		}
		if c.AdvertisedListener != "" {
			host, _, err := splitHostPort(c.AdvertisedListener)
			if err != nil {
				return fmt.Errorf("broker: AdvertisedListener %q: %w", c.AdvertisedListener, err)
			}
			if host == "" || isUnspecified(host) {
				return fmt.Errorf("broker: AdvertisedListener %q needs a host clients can dial", c.AdvertisedListener)
			}
		}
	}
	seen := map[string]bool{}
	for _, l := range c.Listeners {
		name := strings.ToUpper(l.Name)
		if !validListenerName(name) {
			return fmt.Errorf("broker: listener name %q: use letters, digits, '_' and '-'", l.Name)
		}
		if seen[name] {
			return fmt.Errorf("broker: listener %s is given twice", name)
		}
		seen[name] = true
		if _, _, err := splitHostPort(l.Addr); err != nil {
			return fmt.Errorf("broker: listener %s address %q: %w", name, l.Addr, err)
		}
		if l.Advertised != "" {
			host, _, err := splitHostPort(l.Advertised)
			if err != nil {
				return fmt.Errorf("broker: listener %s advertised address %q: %w", name, l.Advertised, err)
			}
			if host == "" || isUnspecified(host) {
				return fmt.Errorf("broker: listener %s advertised address %q needs a host clients can dial", name, l.Advertised)
			}
		}
	}
	for _, l := range c.listeners() {
		p := c.listenerProtocol(l.Name)
		if err := supportedProtocol(p); err != nil {
			return fmt.Errorf("broker: listener %s: %w", l.Name, err)
		}
		if p.TLS() && !c.TLS.HasCert() {
			return fmt.Errorf("broker: listener %s speaks %s: it needs a certificate and key (--tls-cert, --tls-key)", l.Name, p)
		}
	}
	if err := supportedProtocol(c.ControllerProtocol); err != nil {
		return fmt.Errorf("broker: controller protocol: %w", err)
	}
	if c.ControllerProtocol.TLS() && c.TLS == nil {
		return fmt.Errorf("broker: controller protocol %s needs TLS material (--tls-ca, and --tls-cert/--tls-key for mutual TLS)", c.ControllerProtocol)
	}
	if c.ConnectionsMaxReauth < 0 {
		return fmt.Errorf("broker: ConnectionsMaxReauth %s is negative", c.ConnectionsMaxReauth)
	}
	if c.ControllerProtocol.SASL() {
		if err := c.InterBrokerSASL.Validate(); err != nil {
			return fmt.Errorf("broker: controller protocol %s: InterBrokerSASL: %w", c.ControllerProtocol, err)
		}
	}
	if c.listenerProtocol(c.interBrokerListener()).SASL() {
		s := c.InterBrokerSASL
		if err := s.Validate(); err != nil {
			return fmt.Errorf("broker: the inter-broker listener %s is %s: InterBrokerSASL: %w",
				c.interBrokerListener(), c.listenerProtocol(c.interBrokerListener()), err)
		}
		if len(c.SASLEnabledMechanisms) > 0 && !slices.Contains(c.SASLEnabledMechanisms, s.Mechanism) {
			return fmt.Errorf("broker: the inter-broker SASL mechanism %s is not among the enabled mechanisms %v", s.Mechanism, c.SASLEnabledMechanisms)
		}
	}
	for name := range c.ListenerProtocols {
		if !seen[name] && (len(c.Listeners) > 0 || name != image.DefaultListenerName) {
			return fmt.Errorf("broker: the security protocol map names %s, which is not one of the listeners", name)
		}
	}
	if c.InterBrokerListenerName != "" {
		if !seen[strings.ToUpper(c.InterBrokerListenerName)] &&
			(len(c.Listeners) > 0 || !strings.EqualFold(c.InterBrokerListenerName, image.DefaultListenerName)) {
			return fmt.Errorf("broker: inter-broker listener %q is not one of the listeners", c.InterBrokerListenerName)
		}
	}
	if c.FetchSessionCacheSlots < 0 {
		return fmt.Errorf("broker: FetchSessionCacheSlots %d must be >= 0", c.FetchSessionCacheSlots)
	}
	if len(c.Controllers) == 0 {
		return errors.New("broker: Controllers is empty")
	}
	for _, addr := range c.Controllers {
		host, port, err := splitHostPort(addr)
		if err != nil {
			return fmt.Errorf("broker: Controllers entry %q: %w", addr, err)
		}
		if host == "" || port == 0 {
			return fmt.Errorf("broker: Controllers entry %q needs a host and a port", addr)
		}
	}
	if c.NumPartitions < 1 {
		return fmt.Errorf("broker: NumPartitions %d must be >= 1", c.NumPartitions)
	}
	if c.DefaultReplicationFactor < 0 {
		return fmt.Errorf("broker: DefaultReplicationFactor %d must be >= 0 (0: the controller's default)", c.DefaultReplicationFactor)
	}
	if c.MessageMaxBytes < 1 {
		return fmt.Errorf("broker: MessageMaxBytes %d must be >= 1", c.MessageMaxBytes)
	}
	if c.MessageMaxBytes > wire.DefaultMaxRequestBytes {
		return fmt.Errorf("broker: MessageMaxBytes %d exceeds the largest request (%d bytes)", c.MessageMaxBytes, wire.DefaultMaxRequestBytes)
	}
	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("broker: HeartbeatInterval %v must be > 0", c.HeartbeatInterval)
	}
	if c.ReplicaLagTimeMax < 0 {
		return fmt.Errorf("broker: ReplicaLagTimeMax %v must be >= 0 (0: the default)", c.ReplicaLagTimeMax)
	}
	if c.ReplicaFetchLinger < 0 || c.ReplicaFetchLinger > maxReplicaFetchLinger {
		return fmt.Errorf("broker: ReplicaFetchLinger %v must be between 0 and %v", c.ReplicaFetchLinger, maxReplicaFetchLinger)
	}
	if c.ReplicaFetchWaitMax <= 0 {
		return fmt.Errorf("broker: ReplicaFetchWaitMax %v must be > 0", c.ReplicaFetchWaitMax)
	}
	if c.Logger == nil {
		return errors.New("broker: Logger is nil")
	}
	gc := c.Groups
	gc.Logger = c.Logger
	if err := gc.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	tc := c.Txns
	tc.Logger = c.Logger
	if err := tc.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

// listeners are the listeners the broker binds: Listeners, or Listen as
// image.DefaultListenerName. Names are in upper case.
func (c Config) listeners() []Listener {
	if len(c.Listeners) == 0 {
		return []Listener{{Name: image.DefaultListenerName, Addr: c.Listen, Advertised: c.AdvertisedListener}}
	}
	out := make([]Listener, len(c.Listeners))
	for i, l := range c.Listeners {
		out[i] = l
		out[i].Name = strings.ToUpper(l.Name)
	}
	return out
}

// supportedProtocol refuses the protocols not implemented yet.
func supportedProtocol(p security.Protocol) error {
	switch p {
	case "", security.Plaintext, security.SSL, security.SASLPlaintext, security.SASLSSL:
	default:
		return fmt.Errorf("security protocol %s is not supported yet", p)
	}
	return nil
}

// saslOpts are the client options that log in to a listener of protocol
// p with login: none unless p is SASL_*.
func saslOpts(p security.Protocol, login sasl.Login) []kgo.Opt {
	if !p.SASL() {
		return nil
	}
	return []kgo.Opt{kgo.SASL(login.ClientMechanism())}
}

// ListenerDialer connects to the listener named name ("": the first) of
// this broker or its peers: over TLS when it speaks SSL, nil (plain TCP)
// otherwise. For the broker's own tools (the web console).
func (c Config) ListenerDialer(name string) security.Dialer {
	if name == "" {
		name = c.listeners()[0].Name
	}
	return c.dialer(c.listenerProtocol(name))
}

// ListenerLogin is how the broker logs in to its own listener named name
// ("": the first): InterBrokerSASL when that listener is SASL_*, else nil
// (the web console's client).
func (c Config) ListenerLogin(name string) ksasl.Mechanism {
	if name == "" {
		name = c.listeners()[0].Name
	}
	if !c.listenerProtocol(name).SASL() || !c.InterBrokerSASL.Set() {
		return nil
	}
	return c.InterBrokerSASL.ClientMechanism()
}

// dialer connects to a peer whose listener speaks p: over TLS with the
// broker's material, nil (plain TCP) when p is not TLS.
func (c Config) dialer(p security.Protocol) security.Dialer {
	if !p.TLS() || c.TLS == nil {
		return nil
	}
	return c.TLS.Dial()
}

// listenerProtocol is the security protocol of the listener named name.
// The one listener of Listen is named PLAINTEXT only for want of a name:
// its protocol is ListenerProtocol's (a map entry for it still wins), so
// --listen with --listener-protocol SSL serves TLS.
func (c Config) listenerProtocol(name string) security.Protocol {
	if len(c.Listeners) == 0 {
		if p, ok := c.ListenerProtocols[strings.ToUpper(name)]; ok {
			return p
		}
		if c.ListenerProtocol != "" {
			return c.ListenerProtocol
		}
		return security.Plaintext
	}
	return c.ListenerProtocols.For(name, c.ListenerProtocol)
}

// interBrokerListener is the name of the listener followers dial.
func (c Config) interBrokerListener() string {
	if c.InterBrokerListenerName != "" {
		return strings.ToUpper(c.InterBrokerListenerName)
	}
	return c.listeners()[0].Name
}

// validListenerName accepts what Kafka's listener names use in practice.
func validListenerName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// splitHostPort parses host:port with a numeric port in 0-65535.
func splitHostPort(addr string) (string, uint16, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, uint16(port), nil
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// Broker is one running data node.
type Broker struct {
	cfg Config
	log hclog.Logger
	// ctx ends at Close; it bounds registration, which otherwise retries
	// until the controllers answer.
	ctx    context.Context
	cancel context.CancelFunc

	// starting tracks a running Start so Close can wait for it.
	starting sync.WaitGroup
	// release closes the components once, whether Start failed or Close ran.
	release  sync.Once
	closeErr error

	mu struct {
		sync.Mutex
		started bool
		closed  bool
	}

	// lns are the bound listeners, in Config.listeners() order; set by
	// Start under mu (Addr reads them meanwhile).
	lns []net.Listener
	// Set by Start before it returns; read by shutdown after starting.Wait
	// (or by Start itself when it fails).
	store      *storage.Manager
	partitions *partition.Manager
	replicas   *replica.Manager
	groups     *group.Coordinator
	txns       *txn.Coordinator
	markers    *txn.Sender
	peers      *interBrokerClients
	controller *client.Client
	servers    []*wire.Server // one per listener
	// serving is set once the listeners serve (Start is about to return).
	serving atomic.Bool
	// ctl is controller, published for Ready (which may run during Start).
	ctl atomic.Pointer[client.Client]
	// metrics are the broker's registered collectors; endOffsets the
	// client the group lag asks other brokers with.
	metrics    *metrics.Registrations
	endOffsets *endOffsetsClient
	// sasl authenticates the SASL listeners' connections.
	sasl *sasl.Server
}

// NewBroker creates a broker; Start runs it.
func NewBroker(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: cfg.Logger}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Start opens storage, registers with the controllers and starts listening.
// It returns once the broker serves requests with metadata that includes
// itself, or with the error that stopped it (the broker is then closed).
func (b *Broker) Start() error {
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return errors.New("broker: closed")
	}
	if b.mu.started {
		b.mu.Unlock()
		return errors.New("broker: already started")
	}
	b.mu.started = true
	b.starting.Add(1)
	b.mu.Unlock()
	defer b.starting.Done()

	if err := b.start(); err != nil {
		b.log.Error("broker failed to start", "node_id", b.cfg.NodeID, "error", err)
		b.shutdown()
		return err
	}
	return nil
}

func (b *Broker) start() error {
	cfg := b.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Bind first: the registration carries the real ports.
	listeners := cfg.listeners()
	var endpoints []image.Endpoint
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s (listener %s): %w", l.Addr, l.Name, err)
		}
		b.mu.Lock()
		b.lns = append(b.lns, ln)
		b.mu.Unlock()
		host, port, err := advertised(l, ln.Addr())
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.Name, err)
		}
		endpoints = append(endpoints, image.Endpoint{Name: l.Name, Host: host, Port: port})
	}

	scfg := storage.DefaultConfig(cfg.DataDir)
	scfg.Logger = b.log.Named("storage")
	if cfg.LogRetentionCheckInterval > 0 {
		scfg.RetentionCheckInterval = cfg.LogRetentionCheckInterval
	}
	if cfg.LogCleanerBackoff > 0 {
		scfg.CleanerInterval = cfg.LogCleanerBackoff
	}
	switch {
	case cfg.LogWritebackBytes > 0:
		scfg.WritebackBytes = cfg.LogWritebackBytes
	case cfg.LogWritebackBytes < 0:
		scfg.WritebackBytes = 0
	}
	if cfg.RecoveryThreads > 0 {
		scfg.RecoveryThreads = cfg.RecoveryThreads
	}
	switch {
	case cfg.ProducerIDExpiration > 0:
		scfg.ProducerIDExpiration = cfg.ProducerIDExpiration
		scfg.ProducerIDExpirationCheckInterval = min(scfg.ProducerIDExpirationCheckInterval, cfg.ProducerIDExpiration)
	case cfg.ProducerIDExpiration < 0:
		scfg.ProducerIDExpiration = 0
	}
	store, err := storage.OpenManager(scfg)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	b.store = store
	// The fetchers need the broker epoch, known once ctl registered; ctl
	// is set before any image (and so any fetcher) exists.
	var ctl *client.Client
	// The replication quotas (KIP-73) follow every image, before the
	// partitions (and so the fetchers) do.
	throttles := throttle.New(cfg.NodeID, b.log.Named("throttle"), nil)
	rcfg := replica.DefaultConfig(cfg.NodeID)
	rcfg.Throttle = throttles.Follower()
	rcfg.MaxWait = cfg.ReplicaFetchWaitMax
	rcfg.BrokerEpoch = func() int64 { return ctl.BrokerEpoch() }
	rcfg.Logger = b.log
	rcfg.Dial = cfg.dialer(cfg.listenerProtocol(cfg.interBrokerListener()))
	if cfg.listenerProtocol(cfg.interBrokerListener()).SASL() {
		rcfg.SASL = cfg.InterBrokerSASL.ClientMechanism()
	}
	if b.replicas, err = replica.New(rcfg); err != nil {
		return fmt.Errorf("replica fetchers: %w", err)
	}
	pcfg := partition.DefaultConfig(cfg.NodeID)
	pcfg.Logger = b.log
	pcfg.OnFollowers = b.replicas.Update
	pcfg.ReplicaLagTimeMax = cfg.ReplicaLagTimeMax
	pcfg.InterBrokerListener = cfg.interBrokerListener()
	pcfg.BrokerEpoch = func() int64 { return ctl.BrokerEpoch() }
	pcfg.AlterPartition = func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
		return ctl.AlterPartition(ctx, req)
	}
	if b.partitions, err = partition.New(pcfg, store); err != nil {
		return fmt.Errorf("partitions: %w", err)
	}
	gcfg := cfg.Groups
	gcfg.NodeID = cfg.NodeID
	gcfg.Logger = b.log.Named("group")
	if b.groups, err = group.New(gcfg); err != nil {
		return fmt.Errorf("group coordinator: %w", err)
	}
	b.partitions.SetOnLeaders(group.OffsetsTopic, b.groups.OnLeaders)
	b.peers = &interBrokerClients{listener: pcfg.InterBrokerListener, image: b.partitions.Image,
		dial: cfg.dialer(cfg.listenerProtocol(cfg.interBrokerListener())),
		opts: saslOpts(cfg.listenerProtocol(cfg.interBrokerListener()), cfg.InterBrokerSASL)}
	b.markers = txn.NewSender(txn.SenderConfig{
		Leader:  markerLeader(b.partitions.Image),
		Send:    b.peers.sendMarkers,
		Backoff: cfg.Txns.MarkerRetryBackoff,
		Logger:  b.log.Named("txn-markers"),
	})
	tcfg := cfg.Txns
	tcfg.NodeID = cfg.NodeID
	tcfg.Logger = b.log.Named("txn")
	if b.txns, err = txn.New(tcfg, b.markers); err != nil {
		return fmt.Errorf("transaction coordinator: %w", err)
	}
	b.partitions.SetOnLeaders(txn.StateTopic, b.txns.OnLeaders)
	if cfg.Txns.PartitionVerification {
		b.partitions.SetTxnVerifier(b.verifyTxn)
	}

	var controllerLogin ksasl.Mechanism
	if cfg.ControllerProtocol.SASL() {
		controllerLogin = cfg.InterBrokerSASL.ClientMechanism()
	}
	ctl, err = client.New(client.Config{
		Controllers: cfg.Controllers,
		Dial:        cfg.dialer(cfg.ControllerProtocol),
		NodeID:      cfg.NodeID,
		Listeners:   endpoints,
		Rack:        cfg.Rack,
		// The epoch of the last clean shutdown: the controller counts the
		// registration as an unclean restart unless it matches (KIP-966).
		PreviousBrokerEpoch: store.PreviousBrokerEpoch(),
		HeartbeatInterval:   cfg.HeartbeatInterval,
		OnImage: func(img *image.Image) {
			throttles.ApplyImage(img)
			b.partitions.ApplyImage(img)
		},
		SASL:   controllerLogin,
		Logger: b.log.Named("controller-client"),
	})
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	b.controller = ctl
	b.ctl.Store(ctl)

	handlers := &kafka.Handlers{
		Config: kafka.Config{
			NodeID:                   cfg.NodeID,
			AutoCreateTopics:         cfg.AutoCreateTopics,
			NumPartitions:            cfg.NumPartitions,
			DefaultReplicationFactor: cfg.DefaultReplicationFactor,
			MessageMaxBytes:          cfg.MessageMaxBytes,
			FetchMaxBytes:            defaultFetchMaxBytes,
			ReplicaFetchLinger:       cfg.ReplicaFetchLinger,
		},
		Partitions: b.partitions,
		Throttles:  throttles,
		Controller: ctl,
		Logger:     b.log.Named("kafka"),
		Groups:     b.groups,
		Txns:       b.txns,
		FetchSessions: kafka.NewFetchSessionCache(cfg.FetchSessionCacheSlots,
			kafka.DefaultFetchSessionEvictAfter, nil),
	}
	mechs := cfg.SASLEnabledMechanisms
	if len(mechs) == 0 {
		mechs = sasl.Mechanisms
	}
	// Credentials come from the newest image the controller client
	// applied: a change is in force for the next authentication.
	b.sasl, err = sasl.NewServer(mechs, func(user string, m sasl.Mechanism) (sasl.Credential, bool) {
		c, ok := ctl.Image().ScramUsers[user][m.ScramType()]
		return sasl.Credential{Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}, ok
	})
	if err != nil {
		return err
	}
	if cfg.Authorizer {
		handlers.Authorizer = authz.New(authz.Config{SuperUsers: cfg.SuperUsers, AllowIfNoACL: cfg.AllowEveryoneIfNoACL},
			func() []image.ACL { return b.partitions.Image().ACLs })
		b.log.Info("authorizer on", "super_users", cfg.SuperUsers, "allow_everyone_if_no_acl_found", cfg.AllowEveryoneIfNoACL)
	}
	registry := wire.NewRegistry()
	handlers.Register(registry)
	requests := metrics.NewRequests(registeredKeys(registry))
	for _, l := range listeners {
		wcfg := wire.DefaultConfig()
		wcfg.Name = "broker"
		wcfg.Listener = l.Name
		wcfg.Protocol = cfg.listenerProtocol(l.Name)
		if wcfg.Protocol.TLS() {
			wcfg.TLS = cfg.TLS.ServerConfig()
		}
		if wcfg.Protocol.SASL() {
			wcfg.SASL = b.sasl
			wcfg.MaxReauth = cfg.ConnectionsMaxReauth
		}
		wcfg.Logger = b.log.Named("wire")
		wcfg.Observer = requests
		server, err := wire.NewServer(wcfg, registry)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, server)
	}
	// The group lag metric asks the leaders through the inter-broker
	// listener, with its protocol, at its advertised address (the name
	// its certificate carries, which peers dial too).
	interBroker := cfg.interBrokerListener()
	var interBrokerAddr string
	for _, e := range endpoints {
		if e.Name == interBroker {
			interBrokerAddr = net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
		}
	}
	b.endOffsets = &endOffsetsClient{
		addr: func() string { return interBrokerAddr },
		dial: cfg.dialer(cfg.listenerProtocol(interBroker)),
		opts: saslOpts(cfg.listenerProtocol(interBroker), cfg.InterBrokerSASL),
	}
	collector := &brokerCollector{
		nodeID: cfg.NodeID, perPartition: cfg.MetricsPerPartition,
		partitions: b.partitions, replicas: b.replicas, groups: b.groups, handlers: handlers,
		metadata:   func() (uint64, bool) { return ctl.Image().Index, ctl.Fenced() },
		endOffsets: b.endOffsets,
		sasl:       b.sasl,
	}
	b.metrics = metrics.NewRegistrations(metrics.ForNode(cfg.Metrics, cfg.NodeID))
	if err := b.metrics.Register(append(requests.Collectors(), collector, &txnCollector{txns: b.txns, markers: b.markers})...); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}

	b.log.Info("broker registering", "node_id", cfg.NodeID, "advertised", endpointsString(endpoints),
		"inter_broker_listener", pcfg.InterBrokerListener,
		"controllers", cfg.Controllers, "clean_shutdown", store.CleanShutdown(), "previous_broker_epoch", store.PreviousBrokerEpoch())
	if err := ctl.Start(b.ctx); err != nil {
		return fmt.Errorf("register with the controllers: %w", err)
	}
	// A registered broker starts fenced; clients would not see it in
	// Metadata. Wait (bounded) for the controller to unfence it.
	uctx, cancel := context.WithTimeout(b.ctx, unfenceWait)
	_, err = ctl.WaitFor(uctx, func(img *image.Image) bool {
		me := img.Brokers[cfg.NodeID]
		return me != nil && !me.Fenced
	})
	cancel()
	if b.ctx.Err() != nil {
		return fmt.Errorf("register with the controllers: %w", b.ctx.Err())
	}
	if err != nil {
		b.log.Warn("still fenced by the controller; serving anyway", "node_id", cfg.NodeID, "waited", unfenceWait)
	}
	store.Start()
	bound := make([]string, len(b.servers))
	for i, server := range b.servers {
		server.Serve(b.lns[i])
		bound[i] = listeners[i].Name + "://" + b.lns[i].Addr().String()
	}
	b.serving.Store(true)
	b.log.Info("broker started", "node_id", cfg.NodeID, "listen", strings.Join(bound, ","), "data_dir", cfg.DataDir)
	return nil
}

// endpointsString is NAME://host:port,... for logs.
func endpointsString(es []image.Endpoint) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Name + "://" + net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	}
	return strings.Join(parts, ",")
}

// advertised is the host and port clients of listener l are told to dial:
// its advertised address, else the bound address (with the bound port when
// the listener asked for port 0, and this host's name when it bound every
// interface).
func advertised(l Listener, bound net.Addr) (string, int32, error) {
	boundHost, boundPort, err := splitHostPort(bound.String())
	if err != nil {
		return "", 0, fmt.Errorf("bound address %s: %w", bound, err)
	}
	addr := l.Advertised
	if addr == "" {
		addr = l.Addr
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		port = boundPort
	}
	if host == "" || isUnspecified(host) {
		if l.Advertised == "" && !isUnspecified(boundHost) {
			host = boundHost
		} else if host, err = os.Hostname(); err != nil {
			return "", 0, fmt.Errorf("advertised host: %w", err)
		}
	}
	return host, int32(port), nil
}

// registeredKeys are the API keys a registry serves.
func registeredKeys(r *wire.Registry) []int16 {
	var keys []int16
	for _, v := range r.Versions() {
		keys = append(keys, v.ApiKey)
	}
	return keys
}

// metadataStaleAfter is how long a broker stays ready without an answer
// to its metadata long poll (each answers within the poll's 5 s wait).
const metadataStaleAfter = 3 * client.DefaultMetadataMaxWait

// Ready says whether the broker serves with current metadata: it is
// registered with the controllers, unfenced, and caught up with the
// metadata log (its last poll answered within metadataStaleAfter, and
// everything that answer carried applied). Otherwise it says why not.
func (b *Broker) Ready() (bool, string) {
	b.mu.Lock()
	closed, started := b.mu.closed, b.mu.started
	b.mu.Unlock()
	ctl := b.ctl.Load()
	switch {
	case closed:
		return false, "shutting down"
	case !started:
		return false, "not started"
	case ctl == nil || ctl.BrokerEpoch() < 0:
		return false, "not registered with the controllers yet"
	case ctl.Fenced():
		return false, "fenced by the controller"
	}
	caughtUp, answered := ctl.MetadataCaughtUp()
	switch {
	case answered.IsZero():
		return false, "no metadata from the controllers yet"
	case time.Since(answered) > metadataStaleAfter:
		return false, fmt.Sprintf("no metadata from the controllers for %v", time.Since(answered).Round(time.Second))
	case !caughtUp:
		return false, fmt.Sprintf("catching up with the metadata log (applied offset %d)", ctl.Image().Index)
	case !b.serving.Load():
		return false, "not serving yet"
	}
	return true, ""
}

// Image is the metadata image the broker applied last, nil before its
// controller session exists. Immutable; the web console reads it.
func (b *Broker) Image() *image.Image {
	if ctl := b.ctl.Load(); ctl != nil {
		return ctl.Image()
	}
	return nil
}

// Addr is the first Kafka listener's bound address ("" before Start).
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lns) == 0 {
		return ""
	}
	return b.lns[0].Addr().String()
}

// ListenerAddr is the bound address of the listener named name ("" before
// Start or for an unknown name).
func (b *Broker) ListenerAddr(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, l := range b.cfg.listeners() {
		if i < len(b.lns) && strings.EqualFold(l.Name, name) {
			return b.lns[i].Addr().String()
		}
	}
	return ""
}

// Close shuts down cleanly (leaving the clean-shutdown marker): a
// controlled shutdown through the controller (bounded by
// controlledShutdownWait), then it stops accepting requests, closes the
// controller session, stops the replicas and closes storage. It waits for a Start in progress (ending its
// registration attempts first). Idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.mu.closed = true
	b.mu.Unlock()
	b.cancel()
	b.starting.Wait()
	b.shutdown()
	return b.closeErr
}

// shutdown releases whatever Start opened, once, in reverse order.
func (b *Broker) shutdown() {
	b.release.Do(func() {
		var errs []error
		serving := b.serving.Load()
		if serving {
			// Controlled shutdown first, while still serving (as Kafka
			// does): the controller moves leaderships away and takes this
			// broker out of ISRs, and clients are redirected meanwhile.
			ctx, cancel := context.WithTimeout(context.Background(), controlledShutdownWait)
			if err := b.controller.Shutdown(ctx); err != nil {
				b.log.Warn("controlled shutdown did not complete; stopping anyway", "node_id", b.cfg.NodeID, "error", err)
			}
			cancel()
		}
		if b.metrics != nil {
			b.metrics.UnregisterAll()
		}
		if b.endOffsets != nil {
			b.endOffsets.close()
		}
		for _, server := range b.servers {
			errs = append(errs, server.Close()) // also closes the listener once served
		}
		if !serving {
			for _, ln := range b.lns {
				_ = ln.Close()
			}
		}
		if b.controller != nil {
			errs = append(errs, b.controller.Close())
		}
		if b.replicas != nil {
			errs = append(errs, b.replicas.Close())
		}
		if b.groups != nil {
			b.groups.Close()
		}
		if b.txns != nil {
			b.txns.Close()
		}
		if b.markers != nil {
			b.markers.Close()
		}
		if b.peers != nil {
			b.peers.close()
		}
		if b.partitions != nil {
			errs = append(errs, b.partitions.Close())
		}
		if b.store != nil {
			if b.controller != nil {
				// The marker records this registration's epoch, so the next
				// start registers as a clean restart.
				b.store.SetBrokerEpoch(b.controller.BrokerEpoch())
			}
			errs = append(errs, b.store.Close())
		}
		b.closeErr = errors.Join(errs...)
		if serving {
			b.log.Info("broker stopped", "node_id", b.cfg.NodeID, "error", b.closeErr)
		}
	})
}
