package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
	"github.com/skein-io/skein/storage"
)

// newGroupHandlers returns handlers with a group coordinator leading a
// 3-partition __consumer_offsets (ISR {1}) on real storage.
func newGroupHandlers(t *testing.T) *Handlers {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := partition.NewManager(node, store, nil)
	t.Cleanup(func() { _ = m.Close() })
	cfg := group.DefaultConfig(node)
	cfg.InitialRebalanceDelay = 0
	gc, err := group.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gc.Close)
	m.SetOnLeaders(group.OffsetsTopic, gc.OnLeaders)
	img := image.New()
	img.Index = 1
	img.Brokers[node] = &image.Broker{ID: node, Host: "10.0.0.1", Port: 9092, Epoch: 1}
	tp := &image.Topic{Name: group.OffsetsTopic, ID: [16]byte{9}}
	for i := range 3 {
		tp.Partitions = append(tp.Partitions, &image.Partition{Partition: int32(i), Replicas: []int32{node}, ISR: []int32{node}, Leader: node, LeaderEpoch: 1})
	}
	img.Topics[group.OffsetsTopic] = tp
	m.ApplyImage(img)
	// Every offsets partition the tests' group ids map to is loaded.
	ids := []string{"g", "h"}
	for c := 'a'; c <= 'z'; c++ {
		ids = append(ids, "g"+string(c))
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for !gc.Coordinates(id) {
			if time.Now().After(deadline) {
				t.Fatalf("offsets partition of group %s not loaded", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return &Handlers{Config: Config{NodeID: node}, Partitions: m, Groups: gc}
}

// serveGroupAPI serves req at version and decodes the encoded answer at the
// same version, as a client would.
func serveGroupAPI(t *testing.T, h *Handlers, fn func(context.Context, *wire.Request) (kmsg.Response, error), body kmsg.Request, version int16) kmsg.Response {
	t.Helper()
	resp, err := fn(context.Background(), request(body, version))
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(body.Key()), version, err)
	}
	if resp.GetVersion() != version {
		t.Fatalf("%s v%d: answered at v%d", kmsg.NameForKey(body.Key()), version, resp.GetVersion())
	}
	out := body.ResponseKind()
	out.SetVersion(version)
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("%s v%d: the answer does not decode: %v", kmsg.NameForKey(body.Key()), version, err)
	}
	return out
}

// TestGroupAPIsEveryVersion drives a one-member group through every
// version of the group APIs: find the coordinator, join (v4+: with
// MEMBER_ID_REQUIRED first), sync, heartbeat, commit, fetch, describe,
// list, leave, delete offsets and the group.
func TestGroupAPIsEveryVersion(t *testing.T) {
	h := newGroupHandlers(t)
	for v := int16(0); v <= 4; v++ {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g", "h"}
		r := serveGroupAPI(t, h, h.handleFindCoordinator, fc, v).(*kmsg.FindCoordinatorResponse)
		if v < 4 && (r.ErrorCode != 0 || r.NodeID != node || r.Host != "10.0.0.1") {
			t.Fatalf("FindCoordinator v%d: %+v", v, r)
		}
		if v == 4 && (len(r.Coordinators) != 2 || r.Coordinators[1].NodeID != node) {
			t.Fatalf("FindCoordinator v4: %+v", r.Coordinators)
		}
	}
	// No transaction coordinator in these handlers; an unknown key type
	// is an invalid request.
	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.CoordinatorKey, txn.CoordinatorType = "tx", 1
	if r := serveGroupAPI(t, h, h.handleFindCoordinator, txn, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("transaction coordinator: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	txn.CoordinatorType = 2
	if r := serveGroupAPI(t, h, h.handleFindCoordinator, txn, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("key type 2: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	for jv := int16(0); jv <= 9; jv++ {
		id := "g" + string(rune('a'+jv))
		join := func(member string) *kmsg.JoinGroupResponse {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.MemberID, req.ProtocolType = id, member, "consumer"
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
			return serveGroupAPI(t, h, h.handleJoinGroup, req, jv).(*kmsg.JoinGroupResponse)
		}
		jr := join("")
		if jv >= 4 {
			if jr.ErrorCode != kerr.MemberIDRequired.Code {
				t.Fatalf("JoinGroup v%d: %v, want MEMBER_ID_REQUIRED", jv, kerr.ErrorForCode(jr.ErrorCode))
			}
			jr = join(jr.MemberID)
		}
		if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
			t.Fatalf("JoinGroup v%d: %+v", jv, jr)
		}
		member := jr.MemberID
		sv := min(jv, 5)
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.MemberID, sync.Generation = id, member, 1
		sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: []byte("A")}}
		if sr := serveGroupAPI(t, h, h.handleSyncGroup, sync, sv).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "A" {
			t.Fatalf("SyncGroup v%d: %+v", sv, sr)
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = id, member, 1
		if r := serveGroupAPI(t, h, h.handleHeartbeat, hb, min(jv, 4)).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
			t.Fatalf("Heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		cv := min(jv, 8)
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.MemberID, commit.Generation = id, member, 1
		if cv == 0 {
			commit.MemberID, commit.Generation = "", -1
		}
		md := "meta"
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1, Metadata: &md}}}}
		cr := serveGroupAPI(t, h, h.handleOffsetCommit, commit, cv).(*kmsg.OffsetCommitResponse)
		wantCommit := int16(0)
		if cv == 0 {
			wantCommit = kerr.UnknownMemberID.Code // v0 commits outside the group: refused while it is active
		}
		if cr.Topics[0].Partitions[0].ErrorCode != wantCommit {
			t.Fatalf("OffsetCommit v%d: %v", cv, kerr.ErrorForCode(cr.Topics[0].Partitions[0].ErrorCode))
		}
		if cv > 0 {
			fetch := kmsg.NewPtrOffsetFetchRequest()
			fetch.Group = id
			fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
			fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: id, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0, 1}}}}}
			fr := serveGroupAPI(t, h, h.handleOffsetFetch, fetch, cv).(*kmsg.OffsetFetchResponse)
			var ps []kmsg.OffsetFetchResponseGroupTopicPartition
			if cv >= 8 {
				ps = fr.Groups[0].Topics[0].Partitions
			} else {
				for _, p := range fr.Topics[0].Partitions {
					ps = append(ps, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p.Partition, Offset: p.Offset, Metadata: p.Metadata})
				}
			}
			if ps[0].Offset != 42 || *ps[0].Metadata != "meta" || ps[1].Offset != -1 {
				t.Fatalf("OffsetFetch v%d: %+v", cv, ps)
			}
		}
		dv := min(jv, 5)
		desc := kmsg.NewPtrDescribeGroupsRequest()
		desc.Groups = []string{id, "unknown"}
		dr := serveGroupAPI(t, h, h.handleDescribeGroups, desc, dv).(*kmsg.DescribeGroupsResponse)
		if g := dr.Groups[0]; g.State != "Stable" || len(g.Members) != 1 || string(g.Members[0].MemberAssignment) != "A" || g.Protocol != "range" {
			t.Fatalf("DescribeGroups v%d: %+v", dv, g)
		}
		if g := dr.Groups[1]; g.State != "Dead" || g.ErrorCode != 0 {
			t.Fatalf("DescribeGroups v%d unknown group: %+v", dv, g)
		}
		lv := min(jv, 4)
		list := kmsg.NewPtrListGroupsRequest()
		if lv >= 4 {
			list.StatesFilter = []string{"stable"}
		}
		lr := serveGroupAPI(t, h, h.handleListGroups, list, lv).(*kmsg.ListGroupsResponse)
		found := false
		for _, g := range lr.Groups {
			found = found || (g.Group == id && g.ProtocolType == "consumer")
		}
		if !found {
			t.Fatalf("ListGroups v%d: %+v", lv, lr.Groups)
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group, leave.MemberID = id, member
		leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
		lgv := min(jv, 5)
		lgr := serveGroupAPI(t, h, h.handleLeaveGroup, leave, lgv).(*kmsg.LeaveGroupResponse)
		if lgr.ErrorCode != 0 || (lgv >= 3 && lgr.Members[0].ErrorCode != 0) {
			t.Fatalf("LeaveGroup v%d: %+v", lgv, lgr)
		}
		od := kmsg.NewPtrOffsetDeleteRequest()
		od.Group = id
		od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		if r := serveGroupAPI(t, h, h.handleOffsetDelete, od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("OffsetDelete: %+v", r)
		}
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{id, "unknown"}
		delr := serveGroupAPI(t, h, h.handleDeleteGroups, del, min(jv, 2)).(*kmsg.DeleteGroupsResponse)
		if delr.Groups[0].ErrorCode != 0 || delr.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("DeleteGroups: %+v", delr.Groups)
		}
	}
}
