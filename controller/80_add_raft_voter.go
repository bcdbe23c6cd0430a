package controller

// AddRaftVoter (key 80), v0-v1, served by the active controller (followers
// forward it, quorum.go).
//
// Listeners must hold one named "RAFT": the new server's Raft transport
// address. One named "CONTROLLER" (its Kafka listener) is optional: it lets
// the active controller watch the server's progress before the server has
// published its listener itself. VoterDirectoryID and AckWhenCommitted are
// ignored (the answer always comes after the change is committed).
//
// Steps, one voter change at a time (a concurrent one: REQUEST_TIMED_OUT):
//  1. ClusterID set and different: INCONSISTENT_CLUSTER_ID; the id already
//     a voter, or the address another server's: DUPLICATE_VOTER.
//  2. The server joins as a non-voter (raft.AddNonvoter): it receives the
//     log but does not count for commitment or elections.
//  3. Wait, within TimeoutMillis (default 15 s), until its applied index is
//     within maxCatchUpLag of the active controller's (quorum.go polls it).
//     Not caught up in time: it is removed again, REQUEST_TIMED_OUT.
//  4. Promote it (raft.AddVoter on the same id and address).
// Raft refuses a change while another is uncommitted; each step passes the
// configuration index it read, so a change made meanwhile fails the step.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

const (
	// maxCatchUpLag is how many metadata offsets a new server may still be
	// behind when it is promoted to voter.
	maxCatchUpLag = 10
	// defaultVoterChangeTimeout applies when a request has no timeout.
	defaultVoterChangeTimeout = 15 * time.Second
)

func (c *Controller) handleAddRaftVoter(ctx context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AddRaftVoterRequest)
	resp := r.ResponseKind().(*kmsg.AddRaftVoterResponse)
	fail := func(err error) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = kafkaError(err)
		c.log.Warn("add voter refused", "voter", r.VoterID, "error", err)
		return resp
	}
	if err := c.checkClusterID(r.ClusterID); err != nil {
		return fail(err)
	}
	var raftAddr, kafkaAddr string
	for _, l := range r.Listeners {
		addr := net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
		switch {
		case strings.EqualFold(l.Name, listenerNameRaft):
			raftAddr = addr
		case strings.EqualFold(l.Name, listenerNameController):
			kafkaAddr = addr
		}
	}
	if r.VoterID < 0 || raftAddr == "" {
		return fail(errf(kerr.InvalidRequest, "want a voter id >= 0 and a listener named %s with the Raft address", listenerNameRaft))
	}
	if !c.membershipMu.TryLock() {
		return fail(errf(kerr.RequestTimedOut, "another voter change is in progress"))
	}
	defer c.membershipMu.Unlock()
	timeout := defaultVoterChangeTimeout
	if r.TimeoutMillis > 0 {
		timeout = time.Duration(r.TimeoutMillis) * time.Millisecond
	}
	wctx, cancel := context.WithTimeout(ls.ctx, timeout)
	defer cancel()

	conf, confIndex, err := c.raftConfiguration()
	if err != nil {
		return fail(err)
	}
	id := raftServerID(r.VoterID)
	for _, s := range conf.Servers {
		switch {
		case s.ID == id && s.Suffrage == raft.Voter:
			return fail(errf(kerr.DuplicateVoter, "controller %d is already a voter (raft address %s)", r.VoterID, s.Address))
		case s.ID == id && string(s.Address) != raftAddr:
			return fail(errf(kerr.DuplicateVoter, "controller %d is already a non-voter at raft address %s", r.VoterID, s.Address))
		case s.ID != id && string(s.Address) == raftAddr:
			return fail(errf(kerr.DuplicateVoter, "raft address %s belongs to controller %s", raftAddr, s.ID))
		}
	}
	c.quorum.setHint(r.VoterID, kafkaAddr)
	c.log.Info("adding controller as a non-voter until it catches up", "voter", r.VoterID, "raft_address", raftAddr)
	f := c.raft.AddNonvoter(id, raft.ServerAddress(raftAddr), confIndex, timeout)
	if err := f.Error(); err != nil {
		return fail(fmt.Errorf("add controller %d as non-voter: %w", r.VoterID, err))
	}
	if err := c.waitCaughtUp(wctx, r.VoterID, time.Now()); err != nil {
		rf := c.raft.RemoveServer(id, f.Index(), c.cfg.ApplyTimeout)
		if rerr := rf.Error(); rerr != nil {
			c.log.Warn("could not remove the non-voter that did not catch up", "voter", r.VoterID, "error", rerr)
		}
		c.quorum.setHint(r.VoterID, "")
		if ls.ctx.Err() != nil {
			return fail(errf(kerr.NotController, "leadership lost while adding controller %d", r.VoterID))
		}
		return fail(errf(kerr.RequestTimedOut, "controller %d did not catch up within %v (is it running, with an empty data dir, its raft listener on %s?): %v",
			r.VoterID, timeout, raftAddr, err))
	}
	pf := c.raft.AddVoter(id, raft.ServerAddress(raftAddr), f.Index(), timeout)
	if err := pf.Error(); err != nil {
		return fail(fmt.Errorf("promote controller %d to voter: %w", r.VoterID, err))
	}
	c.log.Info("controller added to the quorum as a voter", "voter", r.VoterID, "raft_address", raftAddr,
		"configuration_index", pf.Index())
	return resp
}

// waitCaughtUp waits until the server id has answered a progress poll after
// since with an index within maxCatchUpLag of the active controller's.
func (c *Controller) waitCaughtUp(ctx context.Context, id int32, since time.Time) error {
	t := time.NewTicker(quorumPollInterval / 2)
	defer t.Stop()
	for {
		p, ok := c.quorum.get(id)
		if ok && p.Contact.After(since) && p.Index+maxCatchUpLag >= c.fsm.current().Index {
			c.log.Info("new controller caught up", "voter", id, "index", p.Index)
			return nil
		}
		select {
		case <-ctx.Done():
			if ok {
				return fmt.Errorf("its last applied index was %d, ours %d", p.Index, c.fsm.current().Index)
			}
			return fmt.Errorf("it never answered a progress poll")
		case <-t.C:
		}
	}
}

// checkClusterID refuses a request for another cluster.
func (c *Controller) checkClusterID(id *string) error {
	if id != nil && *id != "" && *id != c.fsm.current().ClusterID {
		return errf(kerr.InconsistentClusterID, "cluster id %q is not this cluster's (%q)", *id, c.fsm.current().ClusterID)
	}
	return nil
}
