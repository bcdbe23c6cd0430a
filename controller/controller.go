package controller

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/wire"
)

// Controller is one running controller node.
type Controller struct {
	cfg Config
	log hclog.Logger
	fsm *fsm
	now func() time.Time

	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	snaps     raft.SnapshotStore
	server    *wire.Server
	addr      string           // bound Kafka listener
	self      image.Controller // advertised Kafka listener
	notifyCh  chan bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// decideMu serializes decisions on the active controller: each one reads
	// the latest image, proposes its entry and waits for it to be applied
	// before the next decision reads the image.
	decideMu sync.Mutex
	// active is the state of the current leadership term once the term's
	// barrier has applied every earlier entry; nil when not the active
	// controller.
	active atomic.Pointer[leaderState]
	// served caches the encoded metadata batch of the latest image.
	served atomic.Pointer[servedImage]

	// peers are Kafka clients to the other voters' listeners (forwarding,
	// listener registration, progress polls); quorum is the active
	// controller's view of each voter's progress; membershipMu allows one
	// voter change at a time (quorum.go).
	peers        *peerClients
	quorum       *quorumTracker
	membershipMu sync.Mutex

	// started is set once Start succeeded: Ready and the metrics read
	// raft only then.
	started atomic.Bool
	// metrics are the controller's registered collectors.
	metrics *metrics.Registrations

	closeOnce sync.Once
	closeErr  error
}

// New creates the controller; Start runs it.
func New(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Controller{
		cfg:    cfg,
		log:    cfg.Logger,
		fsm:    newFSM(cfg.Logger.Named("fsm")),
		now:    time.Now,
		peers:  newPeerClients(peerDialer(cfg)),
		quorum: newQuorumTracker(),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// raftLogCacheSize is how many recent Raft log entries stay in memory.
const raftLogCacheSize = 256

// Start opens Raft state (bootstrapping on first start) and the Kafka listener.
func (c *Controller) Start() error {
	raftDir := filepath.Join(c.cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return fmt.Errorf("raft dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft store: %w", err)
	}
	c.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, c.log.Named("raft"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	c.snaps = snaps
	var advertise net.Addr
	var selfVoter *Voter
	for i, v := range c.cfg.InitialControllers {
		if v.ID == c.cfg.NodeID {
			selfVoter = &c.cfg.InitialControllers[i]
		}
	}
	if selfVoter != nil && !hasZeroPort(selfVoter.RaftAddr) {
		if advertise, err = net.ResolveTCPAddr("tcp", selfVoter.RaftAddr); err != nil {
			return fmt.Errorf("resolve raft address %s: %w", selfVoter.RaftAddr, err)
		}
	}
	var trans *raft.NetworkTransport
	if c.cfg.RaftProtocol.TLS() {
		trans, err = newTLSTransport(c.cfg.RaftListen, advertise, c.cfg.TLS, 3, 10*time.Second, c.log.Named("raft"))
	} else {
		trans, err = raft.NewTCPTransportWithLogger(c.cfg.RaftListen, advertise, 3, 10*time.Second, c.log.Named("raft"))
	}
	if err != nil {
		return fmt.Errorf("raft transport on %s: %w", c.cfg.RaftListen, err)
	}
	c.transport = trans

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.Itoa(int(c.cfg.NodeID)))
	rc.Logger = c.log.Named("raft")
	rc.HeartbeatTimeout = c.cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = c.cfg.RaftHeartbeatTimeout
	rc.LeaderLeaseTimeout = c.cfg.RaftHeartbeatTimeout / 2
	// Buffered so raft never blocks on us; watchLeadership drains it.
	c.notifyCh = make(chan bool, 16)
	rc.NotifyCh = c.notifyCh
	rc.SnapshotThreshold = c.cfg.SnapshotThreshold
	rc.SnapshotInterval = c.cfg.SnapshotInterval
	rc.TrailingLogs = c.cfg.SnapshotThreshold

	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	// The leader sends every follower an AppendEntries at least every
	// CommitTimeout, each naming the previous entry: without a cache that
	// is a bolt read and a msgpack decode of the last (possibly large)
	// entry many times a second on an idle cluster.
	logs, err := raft.NewLogCache(raftLogCacheSize, store)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, c.fsm, logs, store, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	switch {
	case hasState:
	case selfVoter == nil:
		// Not an initial voter: never bootstrap (that would start a second,
		// split quorum). Wait, as a Raft follower with an empty
		// configuration, until the active controller adds this node.
		c.log.Info("no raft state and not among the initial controllers: waiting to be added to the quorum",
			"node_id", c.cfg.NodeID, "raft_address", trans.LocalAddr(),
			"hint", "skein controller add-voter --node-id <id> --raft-address <host:port> --bootstrap-controller <controller>")
	default:
		var conf raft.Configuration
		for _, v := range c.cfg.InitialControllers {
			// Every voter bootstraps the same configuration, with the
			// addresses as --initial-controllers gives them: a host name
			// stays a name, dialled afresh each time, so a voter whose
			// address changes (a container restarted with another IP)
			// is still reached. Only a port-0 entry of this node takes
			// the bound address.
			addr := raft.ServerAddress(v.RaftAddr)
			if v.ID == c.cfg.NodeID && hasZeroPort(v.RaftAddr) {
				addr = trans.LocalAddr()
			}
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter, ID: raft.ServerID(strconv.Itoa(int(v.ID))), Address: addr,
			})
		}
		if err := r.BootstrapCluster(conf).Error(); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
		c.log.Info("bootstrapped controller quorum", "voters", len(conf.Servers))
	}

	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("kafka listener on %s: %w", c.cfg.Listen, err)
	}
	c.addr = ln.Addr().String()
	adv := c.cfg.AdvertisedListener
	if adv == "" {
		adv = c.cfg.Listen
		if hasZeroPort(adv) {
			host, _, _ := net.SplitHostPort(adv)
			adv = net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		}
	}
	host, portStr, _ := net.SplitHostPort(adv)
	port, _ := strconv.Atoi(portStr)
	c.self = image.Controller{ID: c.cfg.NodeID, Host: host, Port: int32(port)}

	registry := c.registry()
	var keys []int16
	for _, v := range registry.Versions() {
		keys = append(keys, v.ApiKey)
	}
	requests := metrics.NewRequests(keys)
	wcfg := wire.DefaultConfig()
	wcfg.Name = "controller"
	wcfg.Protocol = c.cfg.ListenerProtocol
	if wcfg.Protocol.TLS() {
		wcfg.TLS = c.cfg.TLS.ServerConfig()
	}
	wcfg.Logger = c.log.Named("wire")
	wcfg.Observer = requests
	srv, err := wire.NewServer(wcfg, registry)
	if err != nil {
		_ = ln.Close()
		return err
	}
	c.metrics = metrics.NewRegistrations(metrics.ForNode(c.cfg.Metrics, c.cfg.NodeID))
	if err := c.metrics.Register(append(requests.Collectors(), &controllerCollector{c: c})...); err != nil {
		_ = ln.Close()
		return fmt.Errorf("register metrics: %w", err)
	}
	c.server = srv
	srv.Serve(ln)
	c.started.Store(true)

	c.goTracked(c.watchLeadership)
	c.goTracked(c.publishListener)
	c.log.Info("controller started", "node_id", c.cfg.NodeID, "listen", c.addr, "advertised", adv,
		"raft_listen", trans.LocalAddr(), "existing_state", hasState)
	return nil
}

// Addr is the Kafka listener's address.
func (c *Controller) Addr() string { return c.addr }

// Close shuts down: leadership duties stop, Raft shuts down (failing pending
// proposals), the listener and its connections close, then the stores.
// Idempotent.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		if c.metrics != nil {
			c.metrics.UnregisterAll()
		}
		var errs []error
		if c.raft != nil {
			if err := c.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
			}
		}
		if c.server != nil {
			_ = c.server.Close()
		}
		c.wg.Wait()
		c.peers.close()
		if c.transport != nil {
			_ = c.transport.Close()
		}
		if c.store != nil {
			if err := c.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft store: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
		c.log.Info("controller stopped", "node_id", c.cfg.NodeID)
	})
	return c.closeErr
}

func (c *Controller) goTracked(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// watchLeadership starts a leadership term when raft makes this node leader
// and stops it when leadership is lost.
func (c *Controller) watchLeadership() {
	var term *leaderState
	stop := func() {
		if term != nil {
			c.active.CompareAndSwap(term, nil)
			term.stop()
			term = nil
			c.log.Info("no longer the active controller", "node_id", c.cfg.NodeID)
		}
	}
	defer stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case isLeader := <-c.notifyCh:
			stop()
			if isLeader {
				term = newLeaderState(c.ctx)
				term.goTracked(func() { c.runTerm(term) })
			}
		}
	}
}

// runTerm is the active controller's duty for one leadership term: wait until
// every earlier entry is applied, then serve decisions and watch sessions.
func (c *Controller) runTerm(ls *leaderState) {
	// The term is read before the barrier: if leadership changed since the
	// notification, it is an older term than the log's, and every decision
	// of this leaderState is discarded (NOT_CONTROLLER) until
	// watchLeadership starts the new one.
	ls.term = c.raft.CurrentTerm()
	for {
		err := c.raft.Barrier(c.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		if ls.ctx.Err() != nil {
			return
		}
		c.log.Warn("raft barrier failed; retrying", "error", err)
		select {
		case <-ls.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	img := c.fsm.current()
	ls.resetSessions(img, c.now())
	c.active.Store(ls)
	c.log.Info("became the active controller", "node_id", c.cfg.NodeID, "index", img.Index,
		"brokers", len(img.Brokers), "topics", len(img.Topics))
	c.initCluster(ls)
	ls.goTracked(func() { c.trackQuorum(ls) })
	ls.goTracked(func() { c.runLeaderBalance(ls) })
	c.runSessions(ls)
}

// initCluster fixes the cluster id on the first leadership and publishes
// this voter's Kafka listener when the image does not have it yet.
func (c *Controller) initCluster(ls *leaderState) {
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	var recs []record
	if img.ClusterID == "" {
		id := uuid.New()
		recs = append(recs, record{Type: typeInitCluster, InitCluster: &initClusterRecord{
			ClusterID: base64.RawURLEncoding.EncodeToString(id[:])}})
	}
	if cur, ok := img.Controllers[c.self.ID]; !ok || cur != c.self {
		recs = append(recs, record{Type: typeRegisterController, RegisterController: &registerControllerRecord{
			ID: c.self.ID, Host: c.self.Host, Port: c.self.Port}})
	}
	if len(recs) == 0 {
		return
	}
	if _, err := c.propose(ls, recs); err != nil {
		if ls.ctx.Err() == nil {
			c.log.Warn("could not record cluster id / controller listener", "error", err)
		}
		return
	}
	c.log.Info("cluster metadata initialized", "cluster_id", c.fsm.current().ClusterID,
		"controller", c.self.ID, "host", c.self.Host, "port", c.self.Port)
}

// propose writes one decision of term ls to the Raft log and waits until it
// is applied here; it returns the entry's index. The caller holds decideMu
// and read the image it decided from during ls. The entry carries ls.term:
// if this controller lost and regained leadership since (so its image may
// lack entries of other terms), the FSM discards it and the error maps to
// NOT_CONTROLLER.
func (c *Controller) propose(ls *leaderState, recs []record) (uint64, error) {
	b, err := encodeEntry(ls.term, recs)
	if err != nil {
		return 0, err
	}
	f := c.raft.Apply(b, c.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return 0, err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return 0, fmt.Errorf("entry %d was discarded: %w", f.Index(), err)
	}
	return f.Index(), nil
}

// activeControllerID is the node id of the Raft leader as this node knows it.
// Image is the controller's current metadata image, with
// ActiveController filled in (-1 before Start or while no leader is
// known). Immutable, like every image; the web console reads it.
func (c *Controller) Image() *image.Image {
	img := *c.fsm.current() // shallow: the maps are only read
	img.ActiveController = -1
	if c.started.Load() {
		img.ActiveController = c.activeControllerID()
	}
	return &img
}

func (c *Controller) activeControllerID() int32 {
	_, id := c.raft.LeaderWithID()
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

func hasZeroPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
