package controller

// RemoveRaftVoter (key 81), v0, served by the active controller (followers
// forward it, quorum.go).
//
// ClusterID set and different: INCONSISTENT_CLUSTER_ID; the id not in the
// Raft configuration: VOTER_NOT_FOUND; the last voter: INVALID_REQUEST; a
// voter change in progress: REQUEST_TIMED_OUT. Otherwise raft.RemoveServer
// (a non-voter being added may be removed too) and, once committed, the
// controller's listener leaves the image. Removing the active controller
// itself is allowed: it steps down once the change commits and the next
// active controller drops the listener. VoterDirectoryID is ignored.

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleRemoveRaftVoter(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.RemoveRaftVoterRequest)
	resp := r.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
	fail := func(err error) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = kafkaError(err)
		c.log.Warn("remove voter refused", "voter", r.VoterID, "error", err)
		return resp
	}
	if err := c.checkClusterID(r.ClusterID); err != nil {
		return fail(err)
	}
	if !c.membershipMu.TryLock() {
		return fail(errf(kerr.RequestTimedOut, "another voter change is in progress"))
	}
	defer c.membershipMu.Unlock()
	conf, confIndex, err := c.raftConfiguration()
	if err != nil {
		return fail(err)
	}
	id := raftServerID(r.VoterID)
	found, voters := false, 0
	var suffrage raft.ServerSuffrage
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if s.ID == id {
			found, suffrage = true, s.Suffrage
		}
	}
	switch {
	case !found:
		return fail(errf(kerr.VoterNotFound, "controller %d is not in the quorum", r.VoterID))
	case suffrage == raft.Voter && voters == 1:
		return fail(errf(kerr.InvalidRequest, "controller %d is the last voter", r.VoterID))
	}
	f := c.raft.RemoveServer(id, confIndex, c.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return fail(fmt.Errorf("remove controller %d: %w", r.VoterID, err))
	}
	c.quorum.setHint(r.VoterID, "")
	c.log.Info("controller removed from the quorum", "voter", r.VoterID, "configuration_index", f.Index())
	if r.VoterID != c.cfg.NodeID {
		if conf, _, err := c.raftConfiguration(); err == nil {
			c.pruneListeners(ls, conf)
		}
	}
	return resp
}
