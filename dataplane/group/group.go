package group

import (
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a group's state (Kafka's names, as DescribeGroups and
// ListGroups report them).
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

type tp struct {
	topic     string
	partition int32
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	// logOffset is where the commit is in the offsets partition: of two
	// commits completing out of order, the later record wins.
	logOffset int64
}

// member is one group member.
type member struct {
	id          string
	instanceID  *string
	clientID    string
	clientHost  string
	session     time.Duration
	rebalance   time.Duration
	protocols   []kmsg.JoinGroupRequestProtocol
	assignment  []byte
	joinVersion int16
	// join is set while the member waits for the rebalance to complete;
	// sync while it waits for the leader's assignment.
	join chan *kmsg.JoinGroupResponse
	sync chan syncResult
	// deadline is when the session expires without a heartbeat.
	deadline time.Time
	timer    clockwork.Timer
	seq      uint64
	// pendingSync: joined the current generation, not synced yet.
	pendingSync bool
}

type syncResult struct {
	code       int16
	assignment []byte
}

func (m *member) instanceIDPtr() *string {
	if m.instanceID == nil {
		return nil
	}
	s := *m.instanceID
	return &s
}

// metadataFor is the member's metadata for a protocol (nil if it has none).
func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches says the member's protocols are these (same names, order and
// metadata).
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}

// group is one consumer group. Every field is guarded by the coordinator's
// mutex.
type group struct {
	c *Coordinator
	s *shard

	id           string
	state        state
	protocolType string
	protocol     string
	generation   int32
	leader       string
	stateSinceMs int64
	members      map[string]*member
	static       map[string]string          // instance id -> member id
	pending      map[string]clockwork.Timer // KIP-394 ids handed out, not yet joined
	offsets      map[tp]*offset
	// pendingTxn are offsets committed in transactions whose marker has
	// not reached this partition yet, by producer id (txn_offsets.go).
	pendingTxn map[int64]map[tp]*offset
	seq        uint64

	rebalanceTimer clockwork.Timer
	// syncTimer removes members that joined a generation but did not sync
	// within the rebalance timeout.
	syncTimer clockwork.Timer
	// initialDelay: the first rebalance of an empty group waits for more
	// members (group.initial.rebalance.delay.ms), extended while members
	// keep arriving, up to the rebalance timeout.
	initialDelay   bool
	initialBudget  time.Duration
	newMemberAdded bool
}

func newGroup(c *Coordinator, s *shard, id string) *group {
	return &group{c: c, s: s, id: id, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]clockwork.Timer{}, offsets: map[tp]*offset{}}
}

func (g *group) nowMs() int64 { return g.c.now().UnixMilli() }

func (g *group) setState(s state) {
	g.state = s
	g.stateSinceMs = g.nowMs()
}

// memberOrder lists member ids in join order.
func (g *group) memberOrder() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return g.members[ids[i]].seq < g.members[ids[j]].seq })
	return ids
}

// restore sets the group from its last metadata record: members come back
// Stable (Empty without members) with fresh session timers, as Kafka does.
func (g *group) restore(v *kmsg.GroupMetadataValue, now time.Time) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	g.stateSinceMs = v.CurrentStateTimestamp
	if len(v.Members) == 0 {
		g.state = stateEmpty
		return
	}
	for _, vm := range v.Members {
		// A record no coordinator wrote (empty or repeated member or
		// instance ids) must not break the invariants the handlers rely
		// on: every static entry names a member, every member once.
		if vm.MemberID == "" || g.members[vm.MemberID] != nil {
			continue
		}
		if vm.InstanceID != nil {
			if _, dup := g.static[*vm.InstanceID]; dup {
				continue
			}
		}
		g.seq++
		m := &member{id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			session:    time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalance:  time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:  []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment: vm.Assignment, seq: g.seq}
		if vm.InstanceID != nil {
			id := *vm.InstanceID
			m.instanceID = &id
			g.static[id] = m.id
		}
		g.members[m.id] = m
		g.heartbeat(m)
	}
	g.state = stateStable
	if len(g.members) == 0 {
		g.state = stateEmpty
	}
}

// shutdown stops the group's timers and answers its waiting requests with
// code (the group is being unloaded or deleted).
func (g *group) shutdown(code int16) {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		g.answerJoin(m, errJoin(m.id, code))
		g.answerSync(m, syncResult{code: code})
	}
}

func errJoin(memberID string, code int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ErrorCode = code
	r.Generation = -1
	r.MemberID = memberID
	return r
}

func (g *group) answerJoin(m *member, r *kmsg.JoinGroupResponse) {
	if m.join != nil {
		m.join <- r
		m.join = nil
	}
}

func (g *group) answerSync(m *member, r syncResult) {
	if m.sync != nil {
		m.sync <- r
		m.sync = nil
	}
}

// live says the group is still the one in its shard (not unloaded or
// deleted); timers check it.
func (g *group) live() bool {
	return !g.s.gone && g.s.groups[g.id] == g && g.state != stateDead
}

// heartbeat restarts the member's session.
func (g *group) heartbeat(m *member) {
	m.deadline = g.c.now().Add(m.session)
	if m.timer == nil {
		m.timer = g.c.clock.AfterFunc(m.session, func() { g.c.sessionCheck(g, m) })
		return
	}
	m.timer.Reset(m.session)
}

func (c *Coordinator) sessionCheck(g *group, m *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() || g.members[m.id] != m {
		return
	}
	now := c.now()
	if m.join != nil || m.sync != nil {
		// Waiting in a join or a sync keeps a member alive; the rebalance
		// timeout bounds the join.
		m.deadline = now.Add(m.session)
		m.timer.Reset(m.session)
		return
	}
	if left := m.deadline.Sub(now); left > 0 {
		m.timer.Reset(left)
		return
	}
	c.log.Info("group member removed: session expired", "group", g.id, "member", m.id,
		"session_timeout", m.session, "generation", g.generation, "state", g.state.String())
	g.removeMember(m, "session expired")
}

// removeMember removes m and moves the group on: a rebalance, or the end
// of the one in progress.
func (g *group) removeMember(m *member, reason string) {
	if m.timer != nil {
		m.timer.Stop()
	}
	g.answerJoin(m, errJoin(m.id, kerr.UnknownMemberID.Code))
	g.answerSync(m, syncResult{code: kerr.UnknownMemberID.Code})
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance("member left: " + reason)
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

// maxRebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// prepareRebalance starts a rebalance: members must rejoin within the
// rebalance timeout.
func (g *group) prepareRebalance(reason string) {
	if g.state == stateCompletingRebalance {
		// The assignment being synced is void.
		for _, m := range g.members {
			m.assignment = nil
			g.answerSync(m, syncResult{code: kerr.RebalanceInProgress.Code})
		}
	}
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
	wasEmpty := g.state == stateEmpty
	g.setState(statePreparingRebalance)
	g.c.log.Info("group rebalance started", "group", g.id, "generation", g.generation, "members", len(g.members), "reason", reason)
	timeout := g.maxRebalanceTimeout()
	if wasEmpty && g.c.cfg.InitialRebalanceDelay > 0 {
		delay := min(g.c.cfg.InitialRebalanceDelay, timeout)
		g.initialDelay = true
		g.initialBudget = max(timeout-delay, 0)
		g.newMemberAdded = false
		g.rebalanceTimer = g.c.clock.AfterFunc(delay, func() { g.c.initialDelayExpired(g) })
		return
	}
	g.initialDelay = false
	g.rebalanceTimer = g.c.clock.AfterFunc(timeout, func() { g.c.rebalanceExpired(g) })
	g.tryCompleteJoin()
}

func (c *Coordinator) initialDelayExpired(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() || g.state != statePreparingRebalance || !g.initialDelay {
		return
	}
	if g.newMemberAdded && g.initialBudget > 0 {
		delay := min(c.cfg.InitialRebalanceDelay, g.initialBudget)
		g.initialBudget -= delay
		g.newMemberAdded = false
		g.rebalanceTimer = c.clock.AfterFunc(delay, func() { c.initialDelayExpired(g) })
		return
	}
	g.initialDelay = false
	g.rebalanceTimer = c.clock.AfterFunc(g.maxRebalanceTimeout(), func() { c.rebalanceExpired(g) })
	g.tryCompleteJoin()
}

// syncExpired removes the members that joined generation gen but did not
// sync within the rebalance timeout (a leader that never sends the
// assignment would otherwise hold the group in CompletingRebalance).
func (c *Coordinator) syncExpired(g *group, gen int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() || g.generation != gen || (g.state != stateCompletingRebalance && g.state != stateStable) {
		return
	}
	for _, id := range g.memberOrder() {
		m := g.members[id]
		if m == nil || !m.pendingSync {
			continue
		}
		c.log.Info("group member removed: did not sync within the rebalance timeout", "group", g.id, "member", id, "generation", gen)
		g.removeMember(m, "no sync")
	}
}

func (c *Coordinator) rebalanceExpired(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !g.live() || g.state != statePreparingRebalance || g.initialDelay {
		return
	}
	g.completeJoin()
}

// tryCompleteJoin completes the rebalance once every member has rejoined
// and no member id handed out is still pending.
func (g *group) tryCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialDelay {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	if len(g.pending) > 0 {
		return
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation moves on, and every member gets its answer (the
// leader with the members' metadata).
func (g *group) completeJoin() {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	g.c.rebalances.Add(1)
	for _, m := range g.members {
		if m.join == nil {
			g.c.log.Info("group member removed: did not rejoin within the rebalance timeout", "group", g.id, "member", m.id, "generation", g.generation)
			if m.timer != nil {
				m.timer.Stop()
			}
			g.answerSync(m, syncResult{code: kerr.UnknownMemberID.Code})
			delete(g.members, m.id)
			if m.instanceID != nil && g.static[*m.instanceID] == m.id {
				delete(g.static, *m.instanceID)
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(stateEmpty)
		g.c.log.Info("group rebalance completed: group is empty", "group", g.id, "generation", g.generation)
		g.c.writeAsync(g.s, []kv{groupRecord(g)}, "group metadata")
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.memberOrder()[0]
	}
	g.setState(stateCompletingRebalance)
	ids := g.memberOrder()
	for _, id := range ids {
		m := g.members[id]
		r := g.joinResponse(m)
		g.answerJoin(m, r)
		g.heartbeat(m)
		m.pendingSync = true
	}
	gen := g.generation
	g.syncTimer = g.c.clock.AfterFunc(g.maxRebalanceTimeout(), func() { g.c.syncExpired(g, gen) })
	g.c.log.Info("group rebalance completed", "group", g.id, "generation", g.generation, "members", len(ids),
		"protocol", g.protocol, "leader", g.leader)
}

// joinResponse is the answer to a member for the current generation.
func (g *group) joinResponse(m *member) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	r.ProtocolType = &pt
	r.Protocol = &p
	r.LeaderID = g.leader
	r.MemberID = m.id
	if m.id == g.leader {
		for _, id := range g.memberOrder() {
			o := g.members[id]
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = o.instanceIDPtr()
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			r.Members = append(r.Members, jm)
		}
	}
	return r
}

// candidates are the protocols every member (but except) supports, in the
// order of the first member's preference; nil when there is no member.
func (g *group) candidates(except string) []string {
	var ids []string
	for _, id := range g.memberOrder() {
		if id != except {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var out []string
	for _, p := range g.members[ids[0]].protocols {
		all := true
		for _, id := range ids[1:] {
			if !hasProtocol(g.members[id].protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			out = append(out, p.Name)
		}
	}
	return out
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the candidate with the most votes, each member
// voting for the first candidate in its own preference order.
func (g *group) selectProtocol() string {
	cands := g.candidates("")
	if len(cands) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(cands, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// supports says member memberID (new or rejoining) with these protocols
// may join: same protocol type, and a protocol every other member supports.
func (g *group) supports(memberID, protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	others := len(g.members)
	if _, ok := g.members[memberID]; ok {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidates(memberID)
	for _, p := range ps {
		if slices.Contains(cands, p.Name) {
			return true
		}
	}
	return false
}

// newMemberID is Kafka's form: the client id, a dash, a UUID.
func newMemberID(clientID string) string {
	return clientID + "-" + uuid.NewString()
}
