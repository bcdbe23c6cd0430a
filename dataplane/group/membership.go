package group

// The membership APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup. Each
// takes the decoded request and returns the response at the request's
// version; a join or a sync that must wait for other members parks on a
// channel, never holding the coordinator's mutex.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shardLocked is the loaded shard coordinating a group, or the error code
// to answer: NOT_COORDINATOR when this broker does not lead the group's
// partition, COORDINATOR_LOAD_IN_PROGRESS while it loads.
func (c *Coordinator) shardLocked(id string) (*shard, int16) {
	if c.closed || c.numPartitions == 0 {
		return nil, kerr.NotCoordinator.Code
	}
	s := c.shards[PartitionFor(id, c.numPartitions)]
	if s == nil {
		return nil, kerr.NotCoordinator.Code
	}
	if !s.loaded {
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return s, 0
}

// groupLocked is shardLocked and the group in the shard (nil when it has
// none of that id).
func (c *Coordinator) groupLocked(id string) (*shard, *group, int16) {
	s, code := c.shardLocked(id)
	if code != 0 {
		return nil, nil, code
	}
	return s, s.groups[id], 0
}

// Coordinates says whether this broker coordinates the group now (leads
// its partition and has loaded it).
func (c *Coordinator) Coordinates(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, code := c.shardLocked(id)
	return code == 0
}

func sameInstance(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// JoinGroup handles a JoinGroup request (v0-v9) from a client.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, clientHost string) *kmsg.JoinGroupResponse {
	fail := func(code int16, memberID string) *kmsg.JoinGroupResponse {
		r := errJoin(memberID, code)
		r.Version = req.Version
		return r
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, req.MemberID)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		rebalance = session
	}
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code, req.MemberID)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		req.InstanceID = nil
	}

	c.mu.Lock()
	s, g, code := c.groupLocked(req.Group)
	if code != 0 {
		c.mu.Unlock()
		return fail(code, req.MemberID)
	}
	if g == nil {
		if req.MemberID != "" {
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code, req.MemberID)
		}
		g = newGroup(c, s, req.Group)
		s.groups[req.Group] = g
	}
	resp, wait := g.join(req, clientID, clientHost, session, rebalance)
	c.mu.Unlock()
	if resp != nil {
		resp.Version = req.Version
		return resp
	}
	select {
	case r := <-wait:
		r.Version = req.Version
		return r
	case <-ctx.Done():
		return fail(kerr.RebalanceInProgress.Code, req.MemberID)
	}
}

// join runs under the mutex: an immediate answer, or a channel the answer
// will come on.
func (g *group) join(req *kmsg.JoinGroupRequest, clientID, clientHost string, session, rebalance time.Duration) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	if g.state == stateDead {
		return errJoin(req.MemberID, kerr.CoordinatorNotAvailable.Code), nil
	}
	if !g.supports(req.MemberID, req.ProtocolType, req.Protocols) {
		return errJoin(req.MemberID, kerr.InconsistentGroupProtocol.Code), nil
	}
	full := g.c.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= g.c.cfg.MaxSize

	if req.MemberID == "" {
		newID := newMemberID(clientID)
		if req.InstanceID != nil {
			if oldID, ok := g.static[*req.InstanceID]; ok {
				return g.replaceStatic(g.members[oldID], newID, req, clientID, clientHost, session, rebalance)
			}
		}
		if full {
			return errJoin("", kerr.GroupMaxSizeReached.Code), nil
		}
		if req.InstanceID == nil && req.Version >= 4 {
			// KIP-394: the client must come back with this id.
			t := g.c.clock.AfterFunc(session, func() { g.c.pendingExpired(g, newID) })
			g.pending[newID] = t
			return errJoin(newID, kerr.MemberIDRequired.Code), nil
		}
		return nil, g.addMember(newID, req, clientID, clientHost, session, rebalance)
	}

	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		if g.c.cfg.MaxSize > 0 && len(g.members) >= g.c.cfg.MaxSize {
			return errJoin(req.MemberID, kerr.GroupMaxSizeReached.Code), nil
		}
		return nil, g.addMember(req.MemberID, req, clientID, clientHost, session, rebalance)
	}
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return errJoin(req.MemberID, kerr.FencedInstanceID.Code), nil
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return errJoin(req.MemberID, kerr.UnknownMemberID.Code), nil
	}
	if !sameInstance(m.instanceID, req.InstanceID) {
		return errJoin(req.MemberID, kerr.FencedInstanceID.Code), nil
	}
	switch g.state {
	case statePreparingRebalance:
		ch := g.updateMember(m, req, clientID, clientHost, session, rebalance)
		g.tryCompleteJoin()
		return nil, ch
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// A retry of the join that completed: same answer.
			return g.joinResponse(m), nil
		}
		ch := g.updateMember(m, req, clientID, clientHost, session, rebalance)
		g.prepareRebalance("member " + m.id + " rejoined with new metadata")
		return nil, ch
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			ch := g.updateMember(m, req, clientID, clientHost, session, rebalance)
			g.prepareRebalance("member " + m.id + " rejoined")
			return nil, ch
		}
		g.heartbeat(m)
		return g.joinResponse(m), nil
	}
	return errJoin(req.MemberID, kerr.UnknownMemberID.Code), nil
}

func (c *Coordinator) pendingExpired(g *group, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() {
		return
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		g.tryCompleteJoin()
	}
}

// addMember adds a new member waiting to join and moves the rebalance on.
func (g *group) addMember(id string, req *kmsg.JoinGroupRequest, clientID, clientHost string, session, rebalance time.Duration) chan *kmsg.JoinGroupResponse {
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.seq++
	m := &member{id: id, seq: g.seq}
	if req.InstanceID != nil {
		inst := *req.InstanceID
		m.instanceID = &inst
		g.static[inst] = id
	}
	g.members[id] = m
	ch := g.updateMember(m, req, clientID, clientHost, session, rebalance)
	g.heartbeat(m)
	g.newMemberAdded = true
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalance("member " + id + " joined")
	default:
		g.tryCompleteJoin()
	}
	return ch
}

// updateMember records a member's join and parks it until the rebalance
// completes; the caller then moves the rebalance on.
func (g *group) updateMember(m *member, req *kmsg.JoinGroupRequest, clientID, clientHost string, session, rebalance time.Duration) chan *kmsg.JoinGroupResponse {
	m.clientID, m.clientHost = clientID, clientHost
	m.session, m.rebalance = session, rebalance
	m.protocols = cloneProtocols(req.Protocols)
	m.joinVersion = req.Version
	if m.join != nil {
		// An earlier join of the same member is superseded.
		g.answerJoin(m, errJoin(m.id, kerr.RebalanceInProgress.Code))
	}
	m.join = make(chan *kmsg.JoinGroupResponse, 1)
	return m.join
}

func cloneProtocols(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: append([]byte(nil), p.Metadata...)}
	}
	return out
}

// replaceStatic lets a static member (KIP-345) rejoin under a new member
// id: the old id is fenced. In a stable group with unchanged protocols the
// member keeps its assignment without a rebalance.
func (g *group) replaceStatic(old *member, newID string, req *kmsg.JoinGroupRequest, clientID, clientHost string, session, rebalance time.Duration) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	g.c.log.Info("static group member replaced", "group", g.id, "instance_id", *req.InstanceID, "old_member", old.id, "new_member", newID)
	g.answerJoin(old, errJoin(old.id, kerr.FencedInstanceID.Code))
	g.answerSync(old, syncResult{code: kerr.FencedInstanceID.Code})
	delete(g.members, old.id)
	oldID := old.id
	old.id = newID
	g.members[newID] = old
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	switch g.state {
	case stateStable:
		if old.matches(req.Protocols) {
			old.clientID, old.clientHost, old.session, old.rebalance = clientID, clientHost, session, rebalance
			g.heartbeat(old)
			r := g.joinResponse(old)
			// Not asked to assign: the group's assignment stands (KIP-814).
			r.Members = nil
			if req.Version >= 9 && old.id == g.leader {
				r.SkipAssignment = true
			}
			g.c.writeAsync(g.s, []kv{groupRecord(g)}, "group metadata")
			return r, nil
		}
		ch := g.updateMember(old, req, clientID, clientHost, session, rebalance)
		g.prepareRebalance("static member " + *req.InstanceID + " rejoined with new metadata")
		return nil, ch
	case stateCompletingRebalance:
		ch := g.updateMember(old, req, clientID, clientHost, session, rebalance)
		g.prepareRebalance("static member " + *req.InstanceID + " rejoined")
		return nil, ch
	default: // PreparingRebalance
		ch := g.updateMember(old, req, clientID, clientHost, session, rebalance)
		g.tryCompleteJoin()
		return nil, ch
	}
}

// SyncGroup handles a SyncGroup request (v0-v5).
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = req.Version
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	c.mu.Lock()
	_, g, code := c.groupLocked(req.Group)
	if code != 0 {
		c.mu.Unlock()
		return fail(code)
	}
	var m *member
	if g != nil {
		m = g.members[req.MemberID]
	}
	switch {
	case g == nil || g.state == stateDead:
		code = kerr.UnknownMemberID.Code
	case req.InstanceID != nil && g.static[*req.InstanceID] != req.MemberID:
		code = kerr.FencedInstanceID.Code
	case m == nil:
		code = kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		code = kerr.InconsistentGroupProtocol.Code
	case g.state == stateEmpty:
		code = kerr.UnknownMemberID.Code
	case g.state == statePreparingRebalance:
		code = kerr.RebalanceInProgress.Code
	}
	if code != 0 {
		c.mu.Unlock()
		return fail(code)
	}
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	g.heartbeat(m)
	m.pendingSync = false
	if g.state == stateStable {
		resp.MemberAssignment = m.assignment
		c.mu.Unlock()
		return resp
	}
	// CompletingRebalance: wait for the leader's assignment.
	if m.sync != nil {
		g.answerSync(m, syncResult{code: kerr.RebalanceInProgress.Code})
	}
	m.sync = make(chan syncResult, 1)
	wait := m.sync
	if m.id == g.leader {
		c.leaderSync(ctx, g, req)
	} else {
		c.mu.Unlock()
	}
	select {
	case r := <-wait:
		resp.ErrorCode = r.code
		if r.code == 0 {
			resp.MemberAssignment = r.assignment
		}
		return resp
	case <-ctx.Done():
		return fail(kerr.RebalanceInProgress.Code)
	}
}

// leaderSync stores the leader's assignment: written to the offsets
// partition first, then handed to every member. Called with the mutex held;
// returns with it released.
func (c *Coordinator) leaderSync(ctx context.Context, g *group, req *kmsg.SyncGroupRequest) {
	assign := map[string][]byte{}
	for _, a := range req.GroupAssignment {
		assign[a.MemberID] = a.MemberAssignment
	}
	for id, m := range g.members {
		m.assignment = assign[id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
	}
	gen := g.generation
	s := g.s
	res, err := c.appendLocked(s, []kv{groupRecord(g)})
	c.mu.Unlock()
	if err == nil {
		err = c.waitCommitted(ctx, s, res)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() || g.generation != gen || g.state != stateCompletingRebalance {
		return
	}
	if err != nil {
		code := writeErrorCode(err)
		c.log.Warn("group metadata write failed; rebalancing again", "group", g.id, "generation", gen, "error", err)
		for _, m := range g.members {
			m.assignment = nil
			g.answerSync(m, syncResult{code: code})
		}
		g.prepareRebalance("group metadata write failed")
		return
	}
	g.setState(stateStable)
	for _, m := range g.members {
		g.answerSync(m, syncResult{assignment: m.assignment})
	}
	c.log.Info("group stable", "group", g.id, "generation", gen, "members", len(g.members), "protocol", g.protocol)
}

// Heartbeat handles a Heartbeat request (v0-v4).
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	resp.ErrorCode = c.heartbeat(req)
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, g, code := c.groupLocked(req.Group)
	if code != 0 {
		return code
	}
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	switch g.state {
	case stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case stateEmpty:
		return kerr.UnknownMemberID.Code
	}
	if req.InstanceID != nil && g.static[*req.InstanceID] != req.MemberID {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[req.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.heartbeat(m)
	if g.state == statePreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveGroup handles a LeaveGroup request (v0-v5; v3+ batches members).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	members := req.Members
	if req.Version < 3 {
		members = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, g, code := c.groupLocked(req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if g == nil || g.state == stateDead {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if req.Version < 3 {
			return resp
		}
	}
	for _, lm := range members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if g == nil || g.state == stateDead {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			rm.ErrorCode = g.leave(lm)
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 && len(resp.Members) == 1 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	} else if resp.ErrorCode == kerr.UnknownMemberID.Code && g != nil {
		resp.ErrorCode = 0
	}
	return resp
}

func (g *group) leave(lm kmsg.LeaveGroupRequestMember) int16 {
	id := lm.MemberID
	if lm.InstanceID != nil && *lm.InstanceID != "" {
		cur, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if id != "" && id != cur {
			return kerr.FencedInstanceID.Code
		}
		id = cur
	}
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		g.tryCompleteJoin()
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	reason := "left the group"
	if lm.Reason != nil && *lm.Reason != "" {
		reason += " (" + *lm.Reason + ")"
	}
	g.c.log.Info("group member left", "group", g.id, "member", id, "generation", g.generation)
	g.removeMember(m, reason)
	return 0
}
