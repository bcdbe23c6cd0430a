package controller

// The quorum as the controllers see it: Kafka clients to the other voters,
// each voter publishing its Kafka listener through the active controller,
// requests forwarded from followers to the active controller, and the
// active controller's view of every voter's progress.
//
// # Listeners
//
// The active controller writes its own listener when its term starts
// (initCluster). Every other voter (and a non-voter being added) sends
// ControllerRegistration (key 70) to the active controller whenever the
// image it has applied lacks its listener or holds a different one; it
// finds the active controller's listener in that same image (Raft tells it
// who leads). So after the first election every voter's listener is in the
// image and brokers, admin clients and followers can reach any of them. A
// voter removed from the Raft configuration loses its entry (the active
// controller prunes listeners of ids not in the configuration).
//
// # Forwarding
//
// A follower that receives a request only the active controller serves
// forwards it to the active controller's listener and relays the answer (at
// the caller's version). It answers NOT_CONTROLLER itself, so the sender
// retries elsewhere, when it knows no active controller or its listener, when
// forwarding fails, and for a request that was itself forwarded (peer client
// id): two voters that each believe the other leads never bounce a request.
//
// # Progress
//
// hashicorp/raft does not expose each follower's match index, so the active
// controller measures progress in metadata offsets instead: every
// quorumPollInterval it asks each other server of the Raft configuration for
// its applied image index with a zero-wait metadata Fetch (the answer's high
// watermark is that voter's index + 1). The last answer, when it came (last
// contact) and when it was last caught up with the active controller's index
// are what DescribeQuorum reports and what AddRaftVoter waits on.

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/internal/wire"
)

const (
	// peerClientID is the client id of requests a controller sends to
	// another; a forwarded request carrying it is never forwarded again.
	peerClientID = "skein-controller-peer"
	// quorumPollInterval is how often the active controller asks every other
	// server for its applied index, and how often a voter checks that its
	// listener is published.
	quorumPollInterval = 250 * time.Millisecond
	// peerRequestTimeout bounds one progress poll or listener registration.
	peerRequestTimeout = 2 * time.Second
	// listenerNameController and listenerNameRaft name the endpoints in
	// AddRaftVoter, ControllerRegistration and DescribeQuorum: the Kafka
	// listener and the Raft transport address.
	listenerNameController = "CONTROLLER"
	listenerNameRaft       = "RAFT"
)

// peerClients holds one franz-go client per peer listener address, created
// on first use and closed by close.
type peerClients struct {
	dial security.Dialer // connects to peers over TLS when set
	mu   struct {
		sync.Mutex
		clients map[string]*kgo.Client // by host:port; protected by mu
		closed  bool                   // protected by mu
	}
}

func newPeerClients(dial security.Dialer) *peerClients {
	p := &peerClients{dial: dial}
	p.mu.clients = map[string]*kgo.Client{}
	return p
}

// request sends req to the Kafka listener at addr and returns the answer.
// kgo sends it at the highest version both sides support.
func (p *peerClients) request(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	cl := p.mu.clients[addr]
	if cl == nil {
		var err error
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(peerClientID),
			kgo.DialTimeout(time.Second), kgo.RequestRetries(0)}
		if p.dial != nil {
			opts = append(opts, kgo.Dialer(p.dial))
		}
		cl, err = kgo.NewClient(opts...)
		if err != nil {
			p.mu.Unlock()
			return nil, fmt.Errorf("client for controller %s: %w", addr, err)
		}
		p.mu.clients[addr] = cl
	}
	p.mu.Unlock()
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("client for controller %s has no seed", addr)
	}
	return seeds[0].Request(ctx, req)
}

// peerDialer connects controllers to each other's listeners, which speak
// the protocol this one's does: over TLS for SSL, nil (plain TCP) else.
func peerDialer(cfg Config) security.Dialer {
	if !cfg.ListenerProtocol.TLS() || cfg.TLS == nil {
		return nil
	}
	return cfg.TLS.Dial()
}

func (p *peerClients) close() {
	p.mu.Lock()
	clients := p.mu.clients
	p.mu.clients, p.mu.closed = nil, true
	p.mu.Unlock()
	for _, cl := range clients {
		cl.Close()
	}
}

// ErrClosed is returned by work attempted on a closed controller.
var ErrClosed = fmt.Errorf("controller closed")

// listenerAddr is host:port of a published controller listener.
func (c *Controller) listenerAddr(id int32) (string, bool) {
	l, ok := c.fsm.current().Controllers[id]
	if !ok {
		return "", false
	}
	return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), true
}

// publishListener keeps this node's Kafka listener in the image: while the
// applied image lacks it (or holds another one) and another voter leads, it
// registers with that voter. The active controller publishes its own.
func (c *Controller) publishListener() {
	t := time.NewTicker(quorumPollInterval)
	defer t.Stop()
	failing := false
	for {
		if cur, ok := c.fsm.current().Controllers[c.self.ID]; !ok || cur != c.self {
			leader := c.activeControllerID()
			if addr, ok := c.listenerAddr(leader); ok && leader != c.cfg.NodeID {
				err := c.registerWith(addr)
				switch {
				case err != nil && !failing && c.ctx.Err() == nil:
					c.log.Warn("could not publish this controller's listener; retrying", "active_controller", leader, "error", err)
					failing = true
				case err == nil:
					c.log.Info("published this controller's listener", "active_controller", leader,
						"host", c.self.Host, "port", c.self.Port)
					failing = false
				}
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registerWith sends ControllerRegistration for this node to addr.
func (c *Controller) registerWith(addr string) error {
	ctx, cancel := context.WithTimeout(c.ctx, peerRequestTimeout)
	defer cancel()
	req := kmsg.NewPtrControllerRegistrationRequest()
	req.ControllerID = c.cfg.NodeID
	l := kmsg.NewControllerRegistrationRequestListener()
	l.Name, l.Host, l.Port = listenerNameController, c.self.Host, uint16(c.self.Port)
	req.Listeners = []kmsg.ControllerRegistrationRequestListener{l}
	kresp, err := c.peers.request(ctx, addr, req)
	if err != nil {
		return err
	}
	resp, ok := kresp.(*kmsg.ControllerRegistrationResponse)
	if !ok {
		return fmt.Errorf("unexpected response %T", kresp)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if resp.ErrorMessage != nil {
			return fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
		}
		return err
	}
	return nil
}

// forwardToActive serves a request only the active controller may serve on
// a voter that is not it (see the package comment of this file).
func (c *Controller) forwardToActive(ctx context.Context, req *wire.Request) kmsg.Response {
	if req.Header.ClientID == peerClientID {
		return notControllerResponse(req.Body)
	}
	leader := c.activeControllerID()
	addr, ok := c.listenerAddr(leader)
	if leader < 0 || leader == c.cfg.NodeID || !ok {
		return notControllerResponse(req.Body)
	}
	cp, err := forwardCopy(req.Body)
	if err != nil {
		return notControllerResponse(req.Body)
	}
	timeout := c.cfg.ApplyTimeout
	if tr, ok := req.Body.(kmsg.TimeoutRequest); ok && tr.Timeout() > 0 {
		timeout += time.Duration(tr.Timeout()) * time.Millisecond
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.peers.request(fctx, addr, cp)
	if err != nil {
		c.log.Debug("forwarding to the active controller failed", "active_controller", leader,
			"request", kmsg.NameForKey(req.Body.Key()), "error", err)
		return notControllerResponse(req.Body)
	}
	if resp.Key() != req.Body.Key() {
		return notControllerResponse(req.Body)
	}
	resp.SetVersion(req.Body.GetVersion())
	return resp
}

// forwardCopy copies a request through its encoding, so it can be sent at
// another version; DeleteTopics names of v0-v5 move to Topics (v6).
func forwardCopy(req kmsg.Request) (kmsg.Request, error) {
	cp := kmsg.RequestForKey(req.Key())
	if cp == nil {
		return nil, fmt.Errorf("unknown api key %d", req.Key())
	}
	cp.SetVersion(req.GetVersion())
	if err := cp.ReadFrom(req.AppendTo(nil)); err != nil {
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
	return cp, nil
}

// peerProgress is what the active controller last learned of one server.
type peerProgress struct {
	// Index is the server's applied metadata index (valid when Contact is
	// not zero).
	Index uint64
	// Contact is when the server last answered; CaughtUp is when it last
	// answered with an index >= the active controller's at the time.
	Contact, CaughtUp time.Time
}

// quorumTracker is the active controller's view of the other servers'
// progress, reset when a term starts. Listener hints are Kafka listeners of
// servers being added that have not published theirs yet.
type quorumTracker struct {
	mu struct {
		sync.Mutex
		progress map[int32]peerProgress // protected by mu
		hints    map[int32]string       // protected by mu
	}
}

func newQuorumTracker() *quorumTracker {
	q := &quorumTracker{}
	q.mu.progress = map[int32]peerProgress{}
	q.mu.hints = map[int32]string{}
	return q
}

func (q *quorumTracker) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.progress = map[int32]peerProgress{}
}

func (q *quorumTracker) get(id int32) (peerProgress, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.mu.progress[id]
	return p, ok
}

func (q *quorumTracker) update(id int32, index, leaderIndex uint64, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.mu.progress[id]
	p.Index, p.Contact = index, now
	if index >= leaderIndex {
		p.CaughtUp = now
	}
	q.mu.progress[id] = p
}

func (q *quorumTracker) setHint(id int32, addr string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if addr == "" {
		delete(q.mu.hints, id)
	} else {
		q.mu.hints[id] = addr
	}
}

func (q *quorumTracker) hint(id int32) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.hints[id]
}

// raftConfiguration returns the latest Raft configuration and its index.
func (c *Controller) raftConfiguration() (raft.Configuration, uint64, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, err
	}
	return f.Configuration(), f.Index(), nil
}

// serverNodeID parses a Raft server id (the node id in decimal).
func serverNodeID(id raft.ServerID) (int32, bool) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	return int32(n), err == nil
}

func raftServerID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// trackQuorum is the active controller's progress poller for one term; it
// also prunes the listeners of controllers no longer in the configuration.
func (c *Controller) trackQuorum(ls *leaderState) {
	c.quorum.reset()
	t := time.NewTicker(quorumPollInterval)
	defer t.Stop()
	for {
		conf, _, err := c.raftConfiguration()
		if err == nil {
			c.pruneListeners(ls, conf)
			c.pollServers(ls.ctx, conf)
		}
		select {
		case <-ls.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollServers asks every other server of conf for its applied index, in
// parallel, and records the answers.
func (c *Controller) pollServers(ctx context.Context, conf raft.Configuration) {
	var wg sync.WaitGroup
	for _, s := range conf.Servers {
		id, ok := serverNodeID(s.ID)
		if !ok || id == c.cfg.NodeID {
			continue
		}
		addr, ok := c.listenerAddr(id)
		if !ok {
			if addr = c.quorum.hint(id); addr == "" {
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			leaderIndex := c.fsm.current().Index
			index, err := c.pollIndex(ctx, addr)
			if err == nil {
				c.quorum.update(id, index, leaderIndex, c.now())
			}
		}()
	}
	wg.Wait()
}

// pollIndex returns the applied metadata index of the controller at addr,
// from a metadata Fetch that does not wait.
func (c *Controller) pollIndex(ctx context.Context, addr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, peerRequestTimeout)
	defer cancel()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MaxBytes = 1
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = metalog.Topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.FetchOffset = math.MaxInt64 // beyond any index: answered at once, without records
	p.PartitionMaxBytes = 1
	t.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{t}
	kresp, err := c.peers.request(ctx, addr, req)
	if err != nil {
		return 0, err
	}
	resp, ok := kresp.(*kmsg.FetchResponse)
	if !ok {
		return 0, fmt.Errorf("unexpected response %T", kresp)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == metalog.Topic && rp.Partition == 0 && rp.HighWatermark > 0 {
				return uint64(rp.HighWatermark - 1), nil
			}
		}
	}
	return 0, fmt.Errorf("controller %s did not report its metadata index", addr)
}

// pruneListeners drops the published listeners of controllers that are not
// in the Raft configuration any more (removed voters).
func (c *Controller) pruneListeners(ls *leaderState, conf raft.Configuration) {
	member := map[int32]bool{}
	for _, s := range conf.Servers {
		if id, ok := serverNodeID(s.ID); ok {
			member[id] = true
		}
	}
	var stale []int32
	for id := range c.fsm.current().Controllers {
		if !member[id] {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 || len(member) == 0 {
		return
	}
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	if ls.ctx.Err() != nil {
		return
	}
	img := c.fsm.current()
	var recs []record
	for _, id := range stale {
		if _, ok := img.Controllers[id]; ok {
			recs = append(recs, record{Type: typeUnregisterController, UnregisterController: &unregisterControllerRecord{ID: id}})
		}
	}
	if len(recs) == 0 {
		return
	}
	if _, err := c.propose(ls, recs); err != nil {
		if ls.ctx.Err() == nil {
			c.log.Warn("could not drop listeners of removed controllers", "controllers", stale, "error", err)
		}
		return
	}
	c.log.Info("dropped listeners of controllers no longer in the quorum", "controllers", stale)
}
