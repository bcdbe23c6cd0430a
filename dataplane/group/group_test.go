package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

const testNode = 1

// testStart is where every env's fake clock starts.
var testStart = time.UnixMilli(1_700_000_000_000)

// env is a coordinator over a real partition manager and storage in a temp
// dir, leading every partition of a 2-partition __consumer_offsets. Its
// time is a fake clock that moves only when a test advances it: no timer
// (session, rebalance, initial delay, expiry) fires on its own.
type env struct {
	t     testing.TB
	store *storage.Manager
	parts *partition.Manager
	c     *Coordinator
	cfg   Config
	epoch int32
	clock *clockwork.FakeClock
	// rebalance is the rebalance timeout of joins that do not set one.
	rebalance time.Duration
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, store, mod)
}

// newEnvOn is newEnv over an open storage manager (which it closes).
func newEnvOn(t testing.TB, store *storage.Manager, mod func(*Config)) *env {
	t.Helper()
	t.Cleanup(func() { _ = store.Close() })
	parts, err := partition.New(partition.DefaultConfig(testNode), store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parts.Close() })
	e := &env{t: t, store: store, parts: parts, epoch: 1, clock: clockwork.NewFakeClockAt(testStart)}
	cfg := DefaultConfig(testNode)
	cfg.MinSessionTimeout = 10 * time.Millisecond
	cfg.InitialRebalanceDelay = 0
	cfg.Clock = e.clock
	if mod != nil {
		mod(&cfg)
	}
	e.cfg = cfg
	e.startCoordinator()
	e.apply(testNode)
	return e
}

func (e *env) startCoordinator() {
	c, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
	e.t.Cleanup(c.Close)
	e.parts.SetOnLeaders(OffsetsTopic, c.OnLeaders)
}

// apply publishes an image where leader leads both offsets partitions at
// a new epoch.
func (e *env) apply(leader int32) {
	e.epoch++
	img := image.New()
	img.Index = uint64(e.epoch)
	for _, b := range []int32{1, 2} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "127.0.0.1", Port: 9090 + b, Epoch: 1}
	}
	t := &image.Topic{Name: OffsetsTopic, ID: [16]byte{7}, Configs: map[string]string{"cleanup.policy": "compact"}}
	for i := range int32(2) {
		t.Partitions = append(t.Partitions, &image.Partition{Partition: i, Replicas: []int32{1, 2}, ISR: []int32{leader},
			Leader: leader, LeaderEpoch: e.epoch, PartitionEpoch: e.epoch})
	}
	img.Topics[OffsetsTopic] = t
	e.parts.ApplyImage(img)
	if leader == testNode {
		e.waitLoaded()
	}
}

func (e *env) waitLoaded() {
	e.t.Helper()
	waitUntil(e.t, "offsets partitions loaded", func() bool {
		e.c.mu.Lock()
		defer e.c.mu.Unlock()
		if len(e.c.shards) != 2 {
			return false
		}
		for _, s := range e.c.shards {
			if !s.loaded {
				return false
			}
		}
		return true
	})
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// advanceUntil moves the fake clock forward by step until cond holds.
// Timers fire in their own goroutines (and may arm the next timer there),
// so each step gives them a moment before cond is checked again; the
// fake time this takes is returned.
func (e *env) advanceUntil(what string, step time.Duration, cond func() bool) time.Duration {
	e.t.Helper()
	start := e.clock.Now()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s (fake clock advanced %v)", what, e.clock.Since(start))
		}
		e.clock.Advance(step)
		time.Sleep(time.Millisecond)
	}
	return e.clock.Since(start)
}

// parked says member id of group waits in a JoinGroup (join) or a
// SyncGroup (!join).
func (e *env) parked(group, id string, join bool) bool {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	for _, s := range e.c.shards {
		if g := s.groups[group]; g != nil {
			if m := g.members[id]; m != nil {
				return (join && m.join != nil) || (!join && m.sync != nil)
			}
		}
	}
	return false
}

// joining is how many members of group wait in a JoinGroup.
func (e *env) joining(group string) int {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	n := 0
	for _, s := range e.c.shards {
		if g := s.groups[group]; g != nil {
			for _, m := range g.members {
				if m.join != nil {
					n++
				}
			}
		}
	}
	return n
}

func protocols(names ...string) []kmsg.JoinGroupRequestProtocol {
	var out []kmsg.JoinGroupRequestProtocol
	for _, n := range names {
		out = append(out, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte("meta-" + n)})
	}
	return out
}

type joinOpts struct {
	memberID  string
	instance  string
	session   time.Duration
	rebalance time.Duration
	protos    []string
	version   int16
}

func (e *env) joinReq(group string, o joinOpts) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = o.version
	if r.Version == 0 {
		r.Version = 9
	}
	r.Group = group
	r.MemberID = o.memberID
	if o.session == 0 {
		o.session = 10 * time.Second
	}
	if o.rebalance == 0 {
		o.rebalance = e.rebalance
	}
	if o.rebalance == 0 {
		o.rebalance = 5 * time.Second
	}
	r.SessionTimeoutMillis = int32(o.session.Milliseconds())
	r.RebalanceTimeoutMillis = int32(o.rebalance.Milliseconds())
	if o.instance != "" {
		r.InstanceID = &o.instance
	}
	r.ProtocolType = "consumer"
	if len(o.protos) == 0 {
		o.protos = []string{"range"}
	}
	r.Protocols = protocols(o.protos...)
	return r
}

// join runs a JoinGroup in the background.
func (e *env) join(group string, o joinOpts) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	req := e.joinReq(group, o)
	go func() { ch <- e.c.JoinGroup(context.Background(), req, "client", "/127.0.0.1") }()
	return ch
}

func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for an answer")
	}
	var zero T
	return zero
}

// memberID gets a member id through KIP-394's MEMBER_ID_REQUIRED.
func (e *env) memberID(group string) string {
	e.t.Helper()
	r := recv(e.t, e.join(group, joinOpts{}))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		e.t.Fatalf("first join: code %v member %q, want MEMBER_ID_REQUIRED with an id", kerr.ErrorForCode(r.ErrorCode), r.MemberID)
	}
	return r.MemberID
}

func (e *env) sync(group, member string, gen int32, assign map[string]string) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- e.c.SyncGroup(context.Background(), req) }()
	return ch
}

func (e *env) heartbeat(group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	return e.c.Heartbeat(req).ErrorCode
}

func code(t testing.TB, got int16, want *kerr.Error) {
	t.Helper()
	if (want == nil && got != 0) || (want != nil && got != want.Code) {
		t.Fatalf("error %v, want %v", kerr.ErrorForCode(got), want)
	}
}

// stableGroup forms a group of n members and returns their ids (leader
// first) and the generation.
func (e *env) stableGroup(group string, n int) ([]string, int32) {
	e.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.memberID(group)
	}
	chans := make([]<-chan *kmsg.JoinGroupResponse, n)
	for i, id := range ids {
		chans[i] = e.join(group, joinOpts{memberID: id})
	}
	var leader string
	var gen int32
	for i := range chans {
		r := recv(e.t, chans[i])
		code(e.t, r.ErrorCode, nil)
		leader, gen = r.LeaderID, r.Generation
		if r.MemberID == r.LeaderID && len(r.Members) != n {
			e.t.Fatalf("leader got %d members, want %d", len(r.Members), n)
		}
	}
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "assignment-of-" + id
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, id := range ids {
		if id != leader {
			syncs = append(syncs, e.sync(group, id, gen, nil))
		}
	}
	syncs = append(syncs, e.sync(group, leader, gen, assign))
	for _, ch := range syncs {
		r := recv(e.t, ch)
		code(e.t, r.ErrorCode, nil)
		if len(r.MemberAssignment) == 0 {
			e.t.Fatal("empty assignment")
		}
	}
	out := []string{leader}
	for _, id := range ids {
		if id != leader {
			out = append(out, id)
		}
	}
	return out, gen
}

func (e *env) describe(group string) kmsg.DescribeGroupsResponseGroup {
	return e.c.DescribeGroup(group)
}

func TestJoinSyncHeartbeat(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stableGroup("g", 2)
	if gen != 1 {
		t.Fatalf("generation %d, want 1", gen)
	}
	d := e.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 || d.Protocol != "range" || d.ProtocolType != "consumer" {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != "assignment-of-"+m.MemberID || string(m.ProtocolMetadata) != "meta-range" {
			t.Fatalf("member %s: assignment %q metadata %q", m.MemberID, m.MemberAssignment, m.ProtocolMetadata)
		}
	}
	code(t, e.heartbeat("g", ids[0], gen), nil)
	code(t, e.heartbeat("g", ids[1], gen+1), kerr.IllegalGeneration)
	code(t, e.heartbeat("g", "nobody", gen), kerr.UnknownMemberID)
	code(t, e.heartbeat("other", "nobody", gen), kerr.UnknownMemberID)

	// A follower's sync in Stable gets its assignment at once.
	r := recv(t, e.sync("g", ids[1], gen, nil))
	code(t, r.ErrorCode, nil)
	if string(r.MemberAssignment) != "assignment-of-"+ids[1] {
		t.Fatalf("assignment %q", r.MemberAssignment)
	}

	// A new member triggers a rebalance: the others learn it from their
	// heartbeat and rejoin; the generation moves on.
	newID := e.memberID("g")
	joinNew := e.join("g", joinOpts{memberID: newID})
	waitUntil(t, "rebalance", func() bool { return e.describe("g").State == "PreparingRebalance" })
	code(t, e.heartbeat("g", ids[1], gen), kerr.RebalanceInProgress)
	j0 := e.join("g", joinOpts{memberID: ids[0]})
	j1 := e.join("g", joinOpts{memberID: ids[1]})
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{joinNew, j0, j1} {
		r := recv(t, ch)
		code(t, r.ErrorCode, nil)
		if r.Generation != gen+1 || r.LeaderID != ids[0] {
			t.Fatalf("rejoin: generation %d leader %s, want %d %s", r.Generation, r.LeaderID, gen+1, ids[0])
		}
	}
	// Old generation commits and syncs are refused.
	r = recv(t, e.sync("g", ids[1], gen, nil))
	code(t, r.ErrorCode, kerr.IllegalGeneration)
	d = e.describe("g")
	if d.State != "CompletingRebalance" || len(d.Members) != 3 {
		t.Fatalf("describe: %s with %d members", d.State, len(d.Members))
	}
}

func TestJoinValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinSessionTimeout = time.Second; c.MaxSize = 2 })
	r := recv(t, e.join("g", joinOpts{session: 100 * time.Millisecond}))
	code(t, r.ErrorCode, kerr.InvalidSessionTimeout)
	r = recv(t, e.join("", joinOpts{}))
	code(t, r.ErrorCode, kerr.InvalidGroupID)
	r = recv(t, e.join("g", joinOpts{memberID: "unknown"}))
	code(t, r.ErrorCode, kerr.UnknownMemberID)

	// v3 joins without KIP-394: the member id comes with the answer.
	r = recv(t, e.join("g", joinOpts{version: 3, protos: []string{"range", "roundrobin"}}))
	code(t, r.ErrorCode, nil)
	first := r.MemberID
	// A member supporting nothing in common is refused.
	r = recv(t, e.join("g", joinOpts{version: 3, protos: []string{"sticky"}}))
	code(t, r.ErrorCode, kerr.InconsistentGroupProtocol)
	// group.max.size = 2.
	second := e.memberID("g")
	third := recv(t, e.join("g", joinOpts{}))
	code(t, third.ErrorCode, kerr.GroupMaxSizeReached)
	_ = first
	_ = second
}

func TestProtocolSelection(t *testing.T) {
	e := newEnv(t, nil)
	a, b, c := e.memberID("g"), e.memberID("g"), e.memberID("g")
	ja := e.join("g", joinOpts{memberID: a, protos: []string{"range", "roundrobin", "sticky"}})
	jb := e.join("g", joinOpts{memberID: b, protos: []string{"sticky", "roundrobin"}})
	jc := e.join("g", joinOpts{memberID: c, protos: []string{"sticky", "range", "roundrobin"}})
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{ja, jb, jc} {
		r := recv(t, ch)
		code(t, r.ErrorCode, nil)
		if r.Protocol == nil || *r.Protocol != "sticky" {
			t.Fatalf("protocol %v, want sticky (2 votes of 3)", r.Protocol)
		}
	}
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.memberID("g"), e.memberID("g")
	ja := e.join("g", joinOpts{memberID: a, session: 300 * time.Millisecond})
	jb := e.join("g", joinOpts{memberID: b, session: 300 * time.Millisecond})
	ra, rb := recv(t, ja), recv(t, jb)
	gen := ra.Generation
	leader := ra.LeaderID
	_ = rb
	sa := e.sync("g", leader, gen, map[string]string{a: "A", b: "B"})
	other := a
	if leader == a {
		other = b
	}
	recv(t, sa)
	// Only the leader heartbeats: the other member expires and the leader
	// is told to rejoin.
	took := e.advanceUntil("member expiry", 50*time.Millisecond, func() bool {
		return e.heartbeat("g", leader, gen) == kerr.RebalanceInProgress.Code
	})
	if took < 300*time.Millisecond {
		t.Fatalf("member expired after %v, before its 300ms session timeout", took)
	}
	code(t, e.heartbeat("g", other, gen), kerr.UnknownMemberID)
	r := recv(t, e.join("g", joinOpts{memberID: leader, session: 300 * time.Millisecond}))
	code(t, r.ErrorCode, nil)
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("generation %d members %d", r.Generation, len(r.Members))
	}
	// The last member leaves: the group is Empty, generation+1.
	lr := e.c.LeaveGroup(&kmsg.LeaveGroupRequest{Version: 1, Group: "g", MemberID: leader})
	code(t, lr.ErrorCode, nil)
	d := e.describe("g")
	if d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after leave: %s with %d members", d.State, len(d.Members))
	}
}

func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	e := newEnv(t, nil)
	e.rebalance = 200 * time.Millisecond
	ids, gen := e.stableGroup("g", 2)
	// The leader rejoins (a rebalance); the other never does.
	j := e.join("g", joinOpts{memberID: ids[0]})
	waitUntil(t, "the rejoin to wait", func() bool { return e.parked("g", ids[0], true) })
	if took := e.advanceUntil("the rebalance timeout", 20*time.Millisecond, func() bool { return len(j) > 0 }); took < 200*time.Millisecond {
		t.Fatalf("rebalance completed after %v, before its 200ms timeout", took)
	}
	r := recv(t, j)
	code(t, r.ErrorCode, nil)
	if r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != ids[0] {
		t.Fatalf("after the rebalance timeout: generation %d members %+v", r.Generation, r.Members)
	}
	code(t, e.heartbeat("g", ids[1], gen), kerr.UnknownMemberID)
}

func TestStaticMembership(t *testing.T) {
	e := newEnv(t, nil)
	// Static members join without MEMBER_ID_REQUIRED.
	r := recv(t, e.join("g", joinOpts{instance: "i1"}))
	code(t, r.ErrorCode, nil)
	old, gen := r.MemberID, r.Generation
	code(t, recv(t, e.sync("g", old, gen, map[string]string{old: "A"})).ErrorCode, nil)

	// A restart with the same instance id takes over the member: same
	// generation and assignment, no rebalance; the old id is fenced.
	r = recv(t, e.join("g", joinOpts{instance: "i1"}))
	code(t, r.ErrorCode, nil)
	if r.MemberID == old || r.Generation != gen {
		t.Fatalf("static rejoin: member %s generation %d (old %s, gen %d)", r.MemberID, r.Generation, old, gen)
	}
	s := recv(t, e.sync("g", r.MemberID, gen, nil))
	code(t, s.ErrorCode, nil)
	if string(s.MemberAssignment) != "A" {
		t.Fatalf("assignment %q, want the old one", s.MemberAssignment)
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	inst := "i1"
	req.Group, req.MemberID, req.Generation, req.InstanceID = "g", old, gen, &inst
	code(t, e.c.Heartbeat(req).ErrorCode, kerr.FencedInstanceID)
	if d := e.describe("g"); d.State != "Stable" {
		t.Fatalf("state %s", d.State)
	}
	// LeaveGroup by instance id (v3+ batch).
	lr := e.c.LeaveGroup(&kmsg.LeaveGroupRequest{Version: 5, Group: "g",
		Members: []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}, {MemberID: "ghost"}}})
	code(t, lr.Members[0].ErrorCode, nil)
	code(t, lr.Members[1].ErrorCode, kerr.UnknownMemberID)
	if d := e.describe("g"); d.State != "Empty" {
		t.Fatalf("state after leave %s", d.State)
	}
}

func (e *env) commit(group, member string, gen int32, offsets map[int32]int64, md string) *kmsg.OffsetCommitResponse {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, member, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = "t"
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, o, 3
		m := md
		rp.Metadata = &m
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	return e.c.CommitOffsets(context.Background(), req)
}

func commitCode(t *testing.T, r *kmsg.OffsetCommitResponse, want *kerr.Error) {
	t.Helper()
	for _, rt := range r.Topics {
		for _, p := range rt.Partitions {
			code(t, p.ErrorCode, want)
		}
	}
}

func (e *env) fetched(group string) map[int32]kmsg.OffsetFetchResponseGroupTopicPartition {
	g := e.c.FetchOffsets(group, nil, false)
	if g.ErrorCode != 0 {
		e.t.Fatalf("fetch offsets: %v", kerr.ErrorForCode(g.ErrorCode))
	}
	out := map[int32]kmsg.OffsetFetchResponseGroupTopicPartition{}
	for _, t := range g.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p
		}
	}
	return out
}

func TestOffsetCommitFetchAndReload(t *testing.T) {
	e := newEnv(t, nil)
	// Simple (admin) commit to an unknown group.
	commitCode(t, e.commit("simple", "", -1, map[int32]int64{0: 10, 1: 20}, "md"), nil)
	// A member commit to an unknown group is refused.
	commitCode(t, e.commit("nogroup", "m", 3, map[int32]int64{0: 1}, ""), kerr.IllegalGeneration)
	// Metadata too large for one partition only.
	big := make([]byte, e.cfg.OffsetMetadataMaxBytes+1)
	r := e.commit("simple", "", -1, map[int32]int64{2: 5}, string(big))
	commitCode(t, r, kerr.OffsetMetadataTooLarge)

	ids, gen := e.stableGroup("g", 2)
	commitCode(t, e.commit("g", ids[1], gen, map[int32]int64{0: 100, 1: 200}, "x"), nil)
	commitCode(t, e.commit("g", ids[1], gen+1, map[int32]int64{0: 1}, ""), kerr.IllegalGeneration)
	commitCode(t, e.commit("g", "nobody", gen, map[int32]int64{0: 1}, ""), kerr.UnknownMemberID)
	commitCode(t, e.commit("g", "", -1, map[int32]int64{0: 1}, ""), kerr.UnknownMemberID)

	got := e.fetched("g")
	if got[0].Offset != 100 || got[1].Offset != 200 || *got[0].Metadata != "x" || got[0].LeaderEpoch != 3 {
		t.Fatalf("fetched %+v", got)
	}
	// Partitions without a commit: -1.
	g := e.c.FetchOffsets("g", []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 9}}}, false)
	if g.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("uncommitted partition offset %d", g.Topics[0].Partitions[1].Offset)
	}

	// OffsetDelete on a subscribed topic of a consumer group: refused per
	// partition (the metadata is not a consumer subscription here, so the
	// group counts as non-consumer: NON_EMPTY_GROUP).
	od := e.c.DeleteOffsets(context.Background(), &kmsg.OffsetDeleteRequest{Group: "g",
		Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}})
	code(t, od.ErrorCode, kerr.NonEmptyGroup)
	od = e.c.DeleteOffsets(context.Background(), &kmsg.OffsetDeleteRequest{Group: "simple",
		Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}})
	code(t, od.ErrorCode, nil)
	code(t, od.Topics[0].Partitions[0].ErrorCode, nil)
	dg := e.c.DeleteGroups(context.Background(), []string{"g", "nogroup"})
	code(t, dg[0].ErrorCode, kerr.NonEmptyGroup)
	code(t, dg[1].ErrorCode, kerr.GroupIDNotFound)

	// Failover: a new leader epoch reloads everything from the log.
	e.apply(2) // leadership moves away: unloaded
	if g := e.c.FetchOffsets("g", nil, false); g.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("after losing leadership: %v", kerr.ErrorForCode(g.ErrorCode))
	}
	e.apply(testNode)
	got = e.fetched("g")
	if got[0].Offset != 100 || got[1].Offset != 200 || *got[0].Metadata != "x" {
		t.Fatalf("reloaded %+v", got)
	}
	simple := e.fetched("simple")
	if simple[0].Offset != 10 || len(simple) != 1 {
		t.Fatalf("reloaded simple group %+v (partition 1 was deleted)", simple)
	}
	d := e.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("reloaded group %s with %d members", d.State, len(d.Members))
	}
	// Restored members keep heartbeating in their generation.
	code(t, e.heartbeat("g", ids[0], gen), nil)
	s := recv(t, e.sync("g", ids[1], gen, nil))
	code(t, s.ErrorCode, nil)
	if string(s.MemberAssignment) != "assignment-of-"+ids[1] {
		t.Fatalf("restored assignment %q", s.MemberAssignment)
	}

	// A fresh coordinator (broker restart) loads the same.
	e.c.Close()
	e.startCoordinator()
	e.apply(testNode)
	if got := e.fetched("g"); got[1].Offset != 200 {
		t.Fatalf("after restart %+v", got)
	}

	// Delete the simple group; after a reload it stays deleted.
	dg = e.c.DeleteGroups(context.Background(), []string{"simple"})
	code(t, dg[0].ErrorCode, nil)
	e.apply(testNode)
	if got := e.fetched("simple"); len(got) != 0 {
		t.Fatalf("deleted group's offsets came back: %+v", got)
	}
	groups, _ := e.c.ListGroups(nil)
	if len(groups) != 1 || groups[0].Group != "g" || groups[0].State != "Stable" {
		t.Fatalf("list groups %+v", groups)
	}
	groups, _ = e.c.ListGroups([]string{"empty"})
	if len(groups) != 0 {
		t.Fatalf("list empty groups %+v", groups)
	}
}

func TestOffsetDeleteSubscribedTopic(t *testing.T) {
	e := newEnv(t, nil)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	m := meta.AppendTo(nil)
	req := e.joinReq("g", joinOpts{instance: "i"})
	req.Protocols[0].Metadata = m
	r := e.c.JoinGroup(context.Background(), req, "c", "h")
	code(t, r.ErrorCode, nil)
	code(t, recv(t, e.sync("g", r.MemberID, r.Generation, map[string]string{r.MemberID: "x"})).ErrorCode, nil)
	commitCode(t, e.commit("g", r.MemberID, r.Generation, map[int32]int64{0: 1}, ""), nil)
	od := e.c.DeleteOffsets(context.Background(), &kmsg.OffsetDeleteRequest{Group: "g",
		Topics: []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}})
	code(t, od.ErrorCode, nil)
	code(t, od.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
}

// TestOffsetExpiryCheck: the periodic check (offsets.retention.check.interval.ms)
// expires offsets on its own once they are as old as the retention, and
// not before.
func TestOffsetExpiryCheck(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.OffsetsRetention, c.OffsetsRetentionCheckInterval = time.Hour, 10*time.Minute
	})
	commitCode(t, e.commit("simple", "", -1, map[int32]int64{0: 10}, ""), nil)
	// Five checks (at 10..50 minutes) find nothing to expire.
	e.clock.Advance(55 * time.Minute)
	if got := e.fetched("simple"); len(got) != 1 {
		t.Fatalf("offsets expired before the retention: %+v", got)
	}
	took := e.advanceUntil("the periodic expiry", time.Minute, func() bool {
		groups, _ := e.c.ListGroups(nil)
		return len(groups) == 0
	})
	if total := 55*time.Minute + took; total < time.Hour {
		t.Fatalf("offsets expired after %v, within the 1h retention", total)
	}
}

func TestOffsetExpiry(t *testing.T) {
	// The periodic check is left out (a day apart) so that only the calls
	// below expire offsets.
	e := newEnv(t, func(c *Config) { c.OffsetsRetention, c.OffsetsRetentionCheckInterval = time.Hour, 24*time.Hour })
	commitCode(t, e.commit("simple", "", -1, map[int32]int64{0: 10}, ""), nil)
	e.clock.Advance(30 * time.Minute)
	commitCode(t, e.commit("simple", "", -1, map[int32]int64{1: 10}, ""), nil)
	e.clock.Advance(31 * time.Minute)
	if n := e.c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets, want 1", n)
	}
	if got := e.fetched("simple"); len(got) != 1 || got[1].Offset != 10 {
		t.Fatalf("after expiry %+v", got)
	}
	e.clock.Advance(39 * time.Minute)
	if n := e.c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets, want 1", n)
	}
	if groups, _ := e.c.ListGroups(nil); len(groups) != 0 {
		t.Fatalf("group without offsets not deleted: %+v", groups)
	}
	e.apply(testNode)
	if got := e.fetched("simple"); len(got) != 0 {
		t.Fatalf("expired offsets came back after reload: %+v", got)
	}
}

func TestNotCoordinator(t *testing.T) {
	e := newEnv(t, nil)
	e.apply(2)
	r := recv(t, e.join("g", joinOpts{}))
	code(t, r.ErrorCode, kerr.NotCoordinator)
	if e.c.Coordinates("g") {
		t.Fatal("coordinates a group it does not lead")
	}
}

func TestUnloadAnswersWaitingJoins(t *testing.T) {
	e := newEnv(t, nil)
	ids, _ := e.stableGroup("g", 2)
	j := e.join("g", joinOpts{memberID: ids[0]}) // waits for ids[1]
	waitUntil(t, "rebalance", func() bool { return e.describe("g").State == "PreparingRebalance" })
	e.apply(2)
	code(t, recv(t, j).ErrorCode, kerr.NotCoordinator)
}

func TestPartitionFor(t *testing.T) {
	// Values from Java: Math.abs("my-group".hashCode()) % 50 etc.
	for _, c := range []struct {
		group string
		n     int32
		want  int32
	}{
		{"my-group", 50, javaMod("my-group", 50)},
		{"", 50, 0},
		{"a", 50, 97 % 50},
		{"console-consumer-12345", 50, javaMod("console-consumer-12345", 50)},
	} {
		if got := PartitionFor(c.group, c.n); got != c.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", c.group, c.n, got, c.want)
		}
	}
	// "ab".hashCode() = 97*31+98; a character outside the BMP hashes as
	// its two UTF-16 surrogates (U+1F600: 0xD83D, 0xDE00).
	if got := PartitionFor("ab", 10000); got != 3105 {
		t.Errorf("PartitionFor(ab) = %d, want 3105", got)
	}
	if got, want := PartitionFor("\U0001F600", 1<<30), int32(0xD83D*31+0xDE00); got != want {
		t.Errorf("PartitionFor(U+1F600) = %d, want %d", got, want)
	}
}

func javaHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		h = 31*h + int32(s[i])
	}
	return h
}

func javaMod(s string, n int32) int32 { return (javaHash(s) & 0x7fffffff) % n }

func TestRecordsRoundTrip(t *testing.T) {
	g := newGroup(nil, nil, "g")
	g.protocolType, g.protocol, g.generation, g.leader = "consumer", "range", 4, "m1"
	g.members["m1"] = &member{id: "m1", clientID: "c", session: time.Second, rebalance: 2 * time.Second,
		protocols: protocols("range"), assignment: []byte("A")}
	recs := []kv{
		offsetRecord("g", "t", 3, &offset{offset: 42, leaderEpoch: 2, metadata: "m", commitMs: 1}),
		offsetRecord("g", "t", 4, nil),
		groupRecord(g),
	}
	b := buildBatch(recs, 1)
	if err := storage.ValidateBatch(b); err != nil {
		t.Fatalf("batch: %v", err)
	}
	var got []parsed
	var mu sync.Mutex
	if _, err := parseBatches(b, new(malformed), func(p parsed) { mu.Lock(); got = append(got, p); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].offsetValue.Offset != 42 || got[1].offsetValue != nil ||
		got[2].groupValue.Generation != 4 || string(got[2].groupValue.Members[0].Assignment) != "A" {
		t.Fatalf("parsed %+v", got)
	}
}

func TestSyncTimeoutRemovesSilentLeader(t *testing.T) {
	e := newEnv(t, nil)
	e.rebalance = 200 * time.Millisecond
	a, b := e.memberID("g"), e.memberID("g")
	ja, jb := e.join("g", joinOpts{memberID: a}), e.join("g", joinOpts{memberID: b})
	ra := recv(t, ja)
	recv(t, jb)
	follower := a
	if ra.LeaderID == a {
		follower = b
	}
	// The follower waits for an assignment the leader never sends.
	sc := e.sync("g", follower, ra.Generation, nil)
	waitUntil(t, "the follower's sync to wait", func() bool { return e.parked("g", follower, false) })
	if took := e.advanceUntil("the sync timeout", 20*time.Millisecond, func() bool { return len(sc) > 0 }); took < 200*time.Millisecond {
		t.Fatalf("sync answered after %v, before the 200ms rebalance timeout", took)
	}
	s := recv(t, sc)
	code(t, s.ErrorCode, kerr.RebalanceInProgress)
	d := e.describe("g")
	if d.State != "PreparingRebalance" || len(d.Members) != 1 || d.Members[0].MemberID != follower {
		t.Fatalf("after the sync timeout: %s with %+v", d.State, d.Members)
	}
}

// TestReloadLargeLog reloads a partition longer than one read (1 MiB):
// every group's assignment comes back intact.
func TestReloadLargeLog(t *testing.T) {
	e := newEnv(t, nil)
	big := func(i int) string {
		b := make([]byte, 300<<10)
		for j := range b {
			b[j] = byte('a' + (i+j)%26)
		}
		return string(b)
	}
	const groups = 8
	for i := range groups {
		id := "big-" + string(rune('a'+i))
		r := recv(t, e.join(id, joinOpts{instance: "i"}))
		code(t, r.ErrorCode, nil)
		code(t, recv(t, e.sync(id, r.MemberID, r.Generation, map[string]string{r.MemberID: big(i)})).ErrorCode, nil)
	}
	e.apply(testNode)
	for i := range groups {
		id := "big-" + string(rune('a'+i))
		d := e.describe(id)
		if d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != big(i) {
			t.Fatalf("group %s reloaded as %s with %d members (assignment intact: %v)", id, d.State, len(d.Members),
				len(d.Members) == 1 && string(d.Members[0].MemberAssignment) == big(i))
		}
	}
}

func TestParseCompressedBatch(t *testing.T) {
	recs := []kv{offsetRecord("g", "t", 1, &offset{offset: 7, leaderEpoch: -1})}
	plain := buildBatch(recs, 1)
	var b kmsg.RecordBatch
	if err := b.ReadFrom(plain); err != nil {
		t.Fatal(err)
	}
	comp, err := kgo.DefaultCompressor(kgo.GzipCompression())
	if err != nil {
		t.Fatal(err)
	}
	z, codec := comp.Compress(new(bytes.Buffer), b.Records)
	if codec != kgo.CodecGzip {
		t.Fatalf("codec %v", codec)
	}
	b.Records = z
	b.Attributes |= int16(codec)
	enc := b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[8:12], uint32(len(enc)-12))
	var got []parsed
	if _, err := parseBatches(enc, new(malformed), func(p parsed) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].offsetValue.Offset != 7 {
		t.Fatalf("parsed %+v", got)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InitialRebalanceDelay = 300 * time.Millisecond })
	// A v3 member (no KIP-394 round trip) starts the group; another joins
	// within the delay: one rebalance, generation 1, both members.
	j1 := e.join("g", joinOpts{version: 3})
	waitUntil(t, "rebalance", func() bool { return e.describe("g").State == "PreparingRebalance" })
	j2 := e.join("g", joinOpts{version: 3})
	waitUntil(t, "both joins to wait", func() bool { return e.joining("g") == 2 })
	// The second member extended the delay once: 600ms in all.
	took := e.advanceUntil("the first rebalance", 20*time.Millisecond, func() bool { return len(j1) > 0 && len(j2) > 0 })
	r1, r2 := recv(t, j1), recv(t, j2)
	code(t, r1.ErrorCode, nil)
	code(t, r2.ErrorCode, nil)
	if r1.Generation != 1 || r2.Generation != 1 {
		t.Fatalf("generations %d %d, want 1", r1.Generation, r2.Generation)
	}
	if took < 600*time.Millisecond {
		t.Fatalf("first rebalance completed after %v, before the initial delay (extended once by the second member)", took)
	}
}

func TestPendingMemberExpires(t *testing.T) {
	e := newEnv(t, nil)
	// A KIP-394 member id handed out holds the rebalance until it joins or
	// its session timeout passes.
	pendingReq := e.joinReq("g", joinOpts{session: 200 * time.Millisecond})
	r := e.c.JoinGroup(context.Background(), pendingReq, "c", "h")
	code(t, r.ErrorCode, kerr.MemberIDRequired)
	id := e.memberID("g")
	jc := e.join("g", joinOpts{memberID: id})
	waitUntil(t, "the join to wait", func() bool { return e.parked("g", id, true) })
	took := e.advanceUntil("the pending member to expire", 20*time.Millisecond, func() bool { return len(jc) > 0 })
	j := recv(t, jc)
	code(t, j.ErrorCode, nil)
	if len(j.Members) != 1 {
		t.Fatalf("members %d, want 1 (the pending one expired)", len(j.Members))
	}
	if took < 200*time.Millisecond {
		t.Fatalf("join completed after %v without waiting for the pending member", took)
	}
	// The expired id is unknown now.
	code(t, recv(t, e.join("g", joinOpts{memberID: r.MemberID})).ErrorCode, kerr.UnknownMemberID)
}
