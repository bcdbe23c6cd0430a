package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
)

// moveImage is electionImage with brokers 1-5 (those in fenced fenced) and
// one partition given as "replicas/isr/leader[/elr[/last-known-elr]]" plus
// "+adding-removing" (e.g. "2,3,4,1/1,2,3/1+4-1"), with configs.
func moveImage(t *testing.T, fenced []int32, configs map[string]string, spec string) *image.Image {
	t.Helper()
	part, move, _ := strings.Cut(spec, "+")
	img := electionImage(t, fenced, configs, part)
	for id := int32(4); id <= 5; id++ {
		img.Brokers[id] = &image.Broker{ID: id, Epoch: int64(id), Fenced: slices.Contains(fenced, id)}
	}
	if move != "" {
		add, rem, _ := strings.Cut(move, "-")
		p := img.Topics["t"].Partitions[0]
		p.Adding, p.Removing = ids(add), ids(rem)
	}
	return img
}

// moveString is partition 0 of topic "t" as applied prints it, plus
// "+adding-removing" while it moves.
func moveString(t *testing.T, img *image.Image, recs []record) string {
	t.Helper()
	s := applied(t, img, recs)[0]
	next := img
	if len(recs) > 0 {
		next, _ = applyEntry(img, img.Index+1, entry{Records: recs})
	}
	if p := next.Topics["t"].Partitions[0]; reassigning(p) {
		s += fmt.Sprintf(" +%s-%s", join(p.Adding), join(p.Removing))
	}
	return s
}

// moveStep is one decision on partition 0 of a moveImage.
type moveStep struct {
	op     string  // reassign, cancel, alter (AlterPartition by the leader), fence
	ids    []int32 // the target, the new ISR, or the fenced broker
	want   string  // moveString after the step
	code   *kerr.Error
	nochng bool // the decision writes nothing
}

func runMoves(t *testing.T, fenced []int32, configs map[string]string, spec string, steps []moveStep) {
	t.Helper()
	img := moveImage(t, fenced, configs, spec)
	for i, st := range steps {
		top := img.Topics["t"]
		p := top.Partitions[0]
		live := liveExcept(img)
		var rec record
		changed := true
		var err *apiError
		switch st.op {
		case "reassign":
			rec, changed, err = reassignDecision(img, top, p, st.ids, live)
		case "cancel":
			rec, changed, err = cancelDecision(img, top, p, live)
		case "alter":
			s, _ := transition(p, st.ids, nil, policyOf(img, top), live)
			rec, changed = changeTo(top, p, s)
		case "fence":
			img = img.Clone()
			img.Brokers[st.ids[0]].Fenced = true
			recs := fenceDecision(img, st.ids[0], liveExcept(img))
			if len(recs) != 1 {
				t.Fatalf("step %d: fence gave %d records", i, len(recs))
			}
			top, rec = img.Topics["t"], recs[0]
		default:
			t.Fatalf("step %d: op %q", i, st.op)
		}
		if st.code != nil {
			if err == nil || err.code != st.code {
				t.Fatalf("step %d (%s %v): error %v, want %v", i, st.op, st.ids, err, st.code)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%s %v): %v", i, st.op, st.ids, err)
		}
		if changed == st.nochng {
			t.Fatalf("step %d (%s %v): changed %v", i, st.op, st.ids, changed)
		}
		var recs []record
		if changed {
			recs = []record{rec}
		}
		if got := moveString(t, img, recs); got != st.want {
			t.Fatalf("step %d (%s %v): got %s, want %s", i, st.op, st.ids, got, st.want)
		}
		if changed {
			next, aerr := applyEntry(img, img.Index+1, entry{Records: recs})
			if aerr != nil {
				t.Fatal(aerr)
			}
			img = next
		}
		checkELRInvariants(t, img)
	}
}

func TestReassignDecisions(t *testing.T) {
	min2 := map[string]string{minInsyncConfig: "2"}
	for _, tc := range []struct {
		name    string
		fenced  []int32
		configs map[string]string
		spec    string
		steps   []moveStep
	}{
		{"start: target first, adding outside the ISR, leader kept", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("2,3,4"), want: "2,3,4,1/1,2,3/1 e5 p8 +4-1"},
			// A follower's catch-up completes the move in the same
			// record: the leaving leader hands over to the first
			// target replica.
			{op: "alter", ids: ids("1,2,3,4"), want: "2,3,4/2,3,4/2 e6 p9"},
		}},
		{"completion keeps a leader in the target", nil, min2, "1,2,3/1,2,3/2", []moveStep{
			{op: "reassign", ids: ids("2,3,4"), want: "2,3,4,1/1,2,3/2 e5 p8 +4-1"},
			{op: "alter", ids: ids("1,2,3,4"), want: "2,3,4/2,3,4/2 e5 p9"},
		}},
		{"an ISR change short of the target does not complete", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("3,4,5"), want: "3,4,5,1,2/1,2,3/1 e5 p8 +4,5-1,2"},
			{op: "alter", ids: ids("1,2,3,4"), want: "3,4,5,1,2/1,2,3,4/1 e5 p9 +4,5-1,2"},
			{op: "alter", ids: ids("1,2,3,4,5"), want: "3,4,5/3,4,5/3 e6 p10"},
		}},
		{"shrinking the replication factor completes at once", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("1,2"), want: "1,2/1,2/1 e5 p8"},
		}},
		{"shrink dropping the leader elects from the target", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("3,2"), want: "3,2/2,3/3 e6 p8"},
		}},
		{"shrink waits for a target replica out of the ISR", nil, min2, "1,2,3/1,2/1", []moveStep{
			{op: "reassign", ids: ids("1,3"), want: "1,3,2/1,2/1 e5 p8 +-2"},
			{op: "alter", ids: ids("1,2,3"), want: "1,3/1,3/1 e5 p9"},
		}},
		{"growing the replication factor 1 -> 3", nil, nil, "1/1/1", []moveStep{
			{op: "reassign", ids: ids("1,2,3"), want: "1,2,3/1/1 e5 p8 +2,3-"},
			{op: "alter", ids: ids("1,2"), want: "1,2,3/1,2/1 e5 p9 +2,3-"},
			{op: "alter", ids: ids("1,2,3"), want: "1,2,3/1,2,3/1 e5 p10"},
		}},
		{"cancel reverts to the original set", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("2,3,4"), want: "2,3,4,1/1,2,3/1 e5 p8 +4-1"},
			{op: "cancel", want: "2,3,1/1,2,3/1 e5 p9"},
			{op: "cancel", code: kerr.NoReassignmentInProgress},
		}},
		{"cancel drops an adding replica from the ISR and from the lead", nil, min2, "2,3,4,1/1,2,4/4+4-1", []moveStep{
			{op: "cancel", want: "2,3,1/1,2/2 e6 p8"},
		}},
		{"cancel leaving no ISR member is refused", nil, min2, "2,3,4,1/4/4+4-1", []moveStep{
			{op: "cancel", code: kerr.InvalidReplicaAssignment},
		}},
		{"a new reassignment replaces the one in progress; the original stays", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("2,3,4"), want: "2,3,4,1/1,2,3/1 e5 p8 +4-1"},
			{op: "alter", ids: ids("1,2,3"), want: "2,3,4,1/1,2,3/1 e5 p8 +4-1", nochng: true},
			{op: "reassign", ids: ids("3,5,1"), want: "3,5,1,2/1,2,3/1 e5 p9 +5-2"},
			{op: "reassign", ids: ids("3,1,2"), want: "3,1,2/1,2,3/1 e5 p10"},
		}},
		{"a replacement drops the old adding replica from the ISR", nil, min2, "2,3,4,1/1,2,3,4/1+4-1", []moveStep{
			{op: "reassign", ids: ids("5,2,3"), want: "5,2,3,1/1,2,3/1 e5 p8 +5-1"},
		}},
		{"a reassignment to the current replicas writes nothing", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("1,2,3"), want: "1,2,3/1,2,3/1 e5 p7", nochng: true},
			{op: "reassign", ids: ids("3,2,1"), want: "3,2,1/1,2,3/1 e5 p8"},
		}},
		{"elections while moving: any ISR member, replica order", nil, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("4,3,2"), want: "4,3,2,1/1,2,3/1 e5 p8 +4-1"},
			{op: "fence", ids: ids("1"), want: "4,3,2,1/2,3/3 e6 p9 +4-1"},
		}},
		{"the ELR loses removed replicas on completion", nil, min2, "1,2,3/1/1/2,3", []moveStep{
			{op: "reassign", ids: ids("1,4"), want: "1,4,2,3/1/1/2,3 e5 p8 +4-2,3"},
			{op: "alter", ids: ids("1,4"), want: "1,4/1,4/1 e5 p9"},
		}},
		{"the ELR and last known ELR lose removed replicas when the target is below min.insync", nil,
			map[string]string{minInsyncConfig: "3"}, "1,2,3/1,2/1/3/3", []moveStep{
				{op: "reassign", ids: ids("1"), want: "1/1/1 e5 p8"},
			}},
		{"a cancel keeps the original replicas' ELR", nil, min2, "1,2,3/1/1/2,3", []moveStep{
			{op: "reassign", ids: ids("1,4,5"), want: "1,4,5,2,3/1/1/2,3 e5 p8 +4,5-2,3"},
			{op: "cancel", want: "1,2,3/1/1/2,3 e5 p9"},
		}},
		{"completion waits while no target replica can lead", []int32{4}, min2, "1,2,3/1,2,3/1", []moveStep{
			{op: "reassign", ids: ids("4"), want: "4,1,2,3/1,2,3/1 e5 p8 +4-1,2,3"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runMoves(t, tc.fenced, tc.configs, tc.spec, tc.steps) })
	}
}

func TestPlanReassignmentsValidation(t *testing.T) {
	img := moveImage(t, []int32{5}, nil, "1,2,3/1,2,3/1")
	img.Topics["t"].Partitions = append(img.Topics["t"].Partitions,
		&image.Partition{Partition: 1, Replicas: ids("1,2"), ISR: ids("1,2"), Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1})
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.SetVersion(1)
	req.AllowReplicationFactorChange = false
	var add func(topic string, part int32, replicas []int32)
	add = func(topic string, part int32, replicas []int32) {
		for i := range req.Topics {
			if req.Topics[i].Topic == topic {
				p := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
				p.Partition, p.Replicas = part, replicas
				req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
				return
			}
		}
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = topic
		req.Topics = append(req.Topics, rt)
		add(topic, part, replicas)
	}
	add("t", 0, []int32{2, 3, 5}) // fenced 5 is fine
	add("t", 7, []int32{1})
	add("t", 0, []int32{1, 2, 3})
	add("t", 1, nil)
	add("t", 1, []int32{})
	add("t", -1, []int32{1})
	add("nope", 0, []int32{1})
	plan := planReassignments(img, req, liveExcept(img))
	want := []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.InvalidRequest.Code, kerr.NoReassignmentInProgress.Code,
		kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code}
	var got []int16
	for _, rt := range plan.resp.Topics {
		for _, rp := range rt.Partitions {
			got = append(got, rp.ErrorCode)
		}
	}
	if !slices.Equal(got, want) || len(plan.recs) != 1 {
		t.Fatalf("codes %v, want %v; %d records", got, want, len(plan.recs))
	}

	for _, tc := range []struct {
		name     string
		target   []int32
		allowRF  bool
		wantCode *kerr.Error
	}{
		{"empty", []int32{}, true, kerr.InvalidReplicaAssignment},
		{"duplicate", []int32{1, 2, 1}, true, kerr.InvalidReplicaAssignment},
		{"unregistered", []int32{1, 2, 9}, true, kerr.InvalidReplicaAssignment},
		{"replication factor change forbidden", []int32{1, 2}, false, kerr.InvalidReplicationFactor},
		{"replication factor change allowed", []int32{1, 2}, true, nil},
		{"same size when forbidden", []int32{4, 2, 3}, false, nil},
	} {
		err := checkTarget(img, img.Topics["t"].Partitions[0], tc.target, tc.allowRF)
		if (err == nil) != (tc.wantCode == nil) || (err != nil && err.code != tc.wantCode) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.wantCode)
		}
	}
}

func TestListReassignments(t *testing.T) {
	img := moveImage(t, nil, nil, "2,3,4,1/1,2,3/1+4-1")
	img.Topics["t"].Partitions = append(img.Topics["t"].Partitions,
		&image.Partition{Partition: 1, Replicas: ids("1,2"), ISR: ids("1,2"), Leader: 1})
	img.Topics["u"] = &image.Topic{Name: "u", ID: [16]byte{9}, Partitions: []*image.Partition{
		{Partition: 0, Replicas: ids("1,2"), ISR: ids("1,2"), Leader: 1}}}
	all := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp := listReassignments(img, all)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != "t" || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("all: %+v", resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.Partition != 0 || !slices.Equal(p.Replicas, ids("2,3,4,1")) || !slices.Equal(p.AddingReplicas, ids("4")) ||
		!slices.Equal(p.RemovingReplicas, ids("1")) {
		t.Fatalf("partition: %+v", p)
	}
	named := kmsg.NewPtrListPartitionReassignmentsRequest()
	for _, name := range []string{"t", "u", "nope"} {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = name, []int32{1, 0, 0, 5}
		named.Topics = append(named.Topics, rt)
	}
	resp = listReassignments(img, named)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 0 {
		t.Fatalf("named: %+v", resp.Topics)
	}
}

// reassign sends an AlterPartitionReassignments of topic's partition 0
// (replicas nil: a cancel) through the broker client and returns its code.
func reassignVia(t *testing.T, cl *client.Client, topic string, replicas []int32) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Replicas = replicas
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Forward(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.AlterPartitionAssignmentsResponse)
	if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("reassign: %+v", r)
	}
	return r.Topics[0].Partitions[0].ErrorCode
}

// TestReassignmentLifecycle runs reassignments through a real controller
// and broker clients: a move recorded in the metadata log and listed,
// surviving a controller restart, completed by the leader's AlterPartition
// (the leader leaving for the first target replica), then a cancel with
// nothing in progress, a cancelled move and a move that completes at once.
func TestReassignmentLifecycle(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ctl := startController(t, cfg)
	clients := map[int32]*client.Client{}
	for id := int32(101); id <= 104; id++ {
		clients[id] = startClient(t, ctl, id)
	}
	waitImage(t, ctl, "brokers unfenced", func(img *image.Image) bool {
		for id := int32(101); id <= 104; id++ {
			if b := img.Brokers[id]; b == nil || b.Fenced {
				return false
			}
		}
		return true
	})
	cl := clients[101]
	create := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"moved", "cancelled", "shrunk"} {
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, -1, -1
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Replicas = []int32{101, 102, 103}
		ct.ReplicaAssignment = append(ct.ReplicaAssignment, a)
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = minInsyncConfig, kmsg.StringPtr("2")
		ct.Configs = append(ct.Configs, c)
		create.Topics = append(create.Topics, ct)
	}
	for _, rt := range forward[*kmsg.CreateTopicsResponse](t, cl, create).Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("create %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
	part := func(img *image.Image, topic string) *image.Partition { return img.Topics[topic].Partitions[0] }
	before := part(waitImage(t, ctl, "topics", func(img *image.Image) bool { return img.Topics["shrunk"] != nil }), "moved")

	if code := reassignVia(t, cl, "moved", []int32{102, 103, 104}); code != 0 {
		t.Fatalf("reassign: %v", kerr.ErrorForCode(code))
	}
	p := part(ctl.fsm.current(), "moved")
	if !slices.Equal(p.Replicas, []int32{102, 103, 104, 101}) || !slices.Equal(p.Adding, []int32{104}) ||
		!slices.Equal(p.Removing, []int32{101}) || !slices.Equal(p.ISR, []int32{101, 102, 103}) || p.Leader != 101 {
		t.Fatalf("moving: %+v", p)
	}
	// The brokers see it (the adding broker opens the replica from this).
	waitClient(t, clients[104], "move in broker 104's image", func(img *image.Image) bool {
		// The topic itself may not have reached this broker yet.
		return img.Topics["moved"] != nil && slices.Equal(part(img, "moved").Adding, []int32{104})
	})
	// A partition added meanwhile gets the target's replication factor,
	// not the moving partition's replica count.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "moved", 2
	cp.Topics = append(cp.Topics, cpt)
	if r := forward[*kmsg.CreatePartitionsResponse](t, cl, cp).Topics[0]; r.ErrorCode != 0 {
		t.Fatalf("create partitions: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if p1 := ctl.fsm.current().Topics["moved"].Partitions[1]; len(p1.Replicas) != 3 {
		t.Fatalf("partition added while moving: %+v", p1)
	}
	list := func() *kmsg.ListPartitionReassignmentsResponse {
		return forward[*kmsg.ListPartitionReassignmentsResponse](t, cl, kmsg.NewPtrListPartitionReassignmentsRequest())
	}
	if l := list(); len(l.Topics) != 1 || l.Topics[0].Topic != "moved" {
		t.Fatalf("list: %+v", l.Topics)
	}

	// The move is in the log: a restarted controller has it.
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	img := ctl.fsm.current()
	cfg.InitialControllers = nil
	ctl = startController(t, cfg)
	img = waitImage(t, ctl, "replayed", func(got *image.Image) bool { return got.Index >= img.Index })
	if p := part(img, "moved"); !slices.Equal(p.Adding, []int32{104}) || !slices.Equal(p.Removing, []int32{101}) {
		t.Fatalf("after restart: %+v", p)
	}
	if l := list(); len(l.Topics) != 1 || len(l.Topics[0].Partitions) != 1 {
		t.Fatalf("list after restart: %+v", l.Topics)
	}

	// Broker 104 caught up: the leader's ISR expansion completes the move
	// and hands the leadership to 102, in one entry.
	img = waitImage(t, ctl, "brokers back", func(img *image.Image) bool {
		for id := int32(101); id <= 104; id++ {
			if b := img.Brokers[id]; b == nil || b.Fenced {
				return false
			}
		}
		return true
	})
	p = part(img, "moved")
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.SetVersion(3)
	at := kmsg.NewAlterPartitionRequestTopic()
	at.Topic, at.TopicID = "moved", img.Topics["moved"].ID
	apr := kmsg.NewAlterPartitionRequestTopicPartition()
	apr.LeaderEpoch, apr.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	for _, id := range []int32{101, 102, 103, 104} {
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		m.BrokerID, m.BrokerEpoch = id, img.Brokers[id].Epoch
		apr.NewEpochISR = append(apr.NewEpochISR, m)
	}
	at.Partitions = append(at.Partitions, apr)
	ap.Topics = append(ap.Topics, at)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := clients[101].AlterPartition(ctx, ap)
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode != 0 || got.LeaderID != 102 || !slices.Equal(got.ISR, []int32{102, 103, 104}) {
		t.Fatalf("AlterPartition answer: %+v", got)
	}
	p = part(ctl.fsm.current(), "moved")
	if !slices.Equal(p.Replicas, []int32{102, 103, 104}) || reassigning(p) || p.Leader != 102 ||
		p.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("completed: %+v (before %+v)", p, before)
	}
	if l := list(); len(l.Topics) != 0 {
		t.Fatalf("list after completion: %+v", l.Topics)
	}
	if code := reassignVia(t, cl, "moved", nil); code != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("cancel with nothing in progress: %v", kerr.ErrorForCode(code))
	}

	// A cancelled move: the original set is back.
	if code := reassignVia(t, cl, "cancelled", []int32{104, 102, 103}); code != 0 {
		t.Fatalf("reassign: %v", kerr.ErrorForCode(code))
	}
	if code := reassignVia(t, cl, "cancelled", nil); code != 0 {
		t.Fatalf("cancel: %v", kerr.ErrorForCode(code))
	}
	if p := part(ctl.fsm.current(), "cancelled"); reassigning(p) || !sameSet(p.Replicas, []int32{101, 102, 103}) {
		t.Fatalf("cancelled: %+v", p)
	}
	// Shrinking the replication factor completes at once.
	if code := reassignVia(t, cl, "shrunk", []int32{102, 103}); code != 0 {
		t.Fatalf("reassign: %v", kerr.ErrorForCode(code))
	}
	if p := part(ctl.fsm.current(), "shrunk"); reassigning(p) || !slices.Equal(p.Replicas, []int32{102, 103}) ||
		!slices.Equal(p.ISR, []int32{102, 103}) || p.Leader != 102 {
		t.Fatalf("shrunk: %+v", p)
	}
	// Validation through the wire.
	if code := reassignVia(t, cl, "shrunk", []int32{102, 999}); code != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("unregistered broker: %v", kerr.ErrorForCode(code))
	}
	if code := reassignVia(t, cl, "nope", []int32{102}); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(code))
	}
}

func sameSet(a, b []int32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestNotControllerReassignments: a controller that is not the active one
// and cannot forward answers both reassignment APIs with NOT_CONTROLLER
// (not with an empty, successful answer: "nothing is moving").
func TestNotControllerReassignments(t *testing.T) {
	alter := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = "t"
	rt.Partitions = append(rt.Partitions, kmsg.NewAlterPartitionAssignmentsRequestTopicPartition())
	alter.Topics = append(alter.Topics, rt)
	ar := notControllerResponse(alter).(*kmsg.AlterPartitionAssignmentsResponse)
	if ar.ErrorCode != kerr.NotController.Code || len(ar.Topics) != 1 || ar.Topics[0].Partitions[0].ErrorCode != kerr.NotController.Code {
		t.Errorf("AlterPartitionReassignments: %+v", ar)
	}
	lr := notControllerResponse(kmsg.NewPtrListPartitionReassignmentsRequest()).(*kmsg.ListPartitionReassignmentsResponse)
	if lr.ErrorCode != kerr.NotController.Code {
		t.Errorf("ListPartitionReassignments: %+v", lr)
	}
}
