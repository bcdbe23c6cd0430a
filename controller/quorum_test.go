package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// startQuorum starts n in-process voters bootstrapped from the same
// InitialControllers.
func startQuorum(t *testing.T, n int) []*Controller {
	t.Helper()
	var voters []Voter
	var cfgs []Config
	for i := range n {
		cfg := testConfig(t, t.TempDir())
		cfg.NodeID = int32(i + 1)
		cfg.Logger = testLogger(t, fmt.Sprintf("controller-%d", i+1))
		voters = append(voters, Voter{ID: cfg.NodeID, RaftAddr: cfg.RaftListen})
		cfgs = append(cfgs, cfg)
	}
	var out []*Controller
	for _, cfg := range cfgs {
		cfg.InitialControllers = voters
		out = append(out, startController(t, cfg))
	}
	return out
}

// ask sends req to the controller at addr (no retries) and returns the answer.
func ask[R kmsg.Response](t *testing.T, addr string, req kmsg.Request) R {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to %s: %v", kmsg.NameForKey(req.Key()), addr, err)
	}
	return resp.(R)
}

func describeQuorumAt(t *testing.T, addr string) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metalog.Topic
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{rt}
	resp := ask[*kmsg.DescribeQuorumResponse](t, addr, req)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, err
	}
	return resp.Topics[0].Partitions[0], nil
}

// waitVoters waits until DescribeQuorum, asked at addr, lists want as the
// voters, each having answered the active controller's progress poll.
func waitVoters(t *testing.T, addr string, want ...int32) kmsg.DescribeQuorumResponseTopicPartition {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err := describeQuorumAt(t, addr)
		var got []int32
		polled := true
		for _, v := range p.CurrentVoters {
			got = append(got, v.ReplicaID)
			polled = polled && v.LogEndOffset > 0
		}
		slices.Sort(got)
		if err == nil && slices.Equal(got, want) && polled {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("voters %v (err %v), want %v, all polled", got, err, want)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a condition with a deadline
	}
}

// TestQuorumMembership: three voters elect a leader and publish every
// listener; a follower forwards DescribeQuorum; a fourth node without
// InitialControllers waits, is added (non-voter, caught up, voter) and
// removed again.
func TestQuorumMembership(t *testing.T) {
	ctls := startQuorum(t, 3)
	waitImage(t, ctls[0], "all three listeners published", func(img *image.Image) bool { return len(img.Controllers) == 3 })
	p := waitVoters(t, ctls[0].Addr(), 1, 2, 3)
	if p.LeaderID < 1 || p.LeaderID > 3 || p.LeaderEpoch < 1 || p.HighWatermark < 1 {
		t.Fatalf("describe quorum: %+v", p)
	}
	follower := ctls[p.LeaderID%3] // any voter that is not the leader
	if got, err := describeQuorumAt(t, follower.Addr()); err != nil || got.LeaderID != p.LeaderID {
		t.Fatalf("forwarded DescribeQuorum: %+v %v", got, err)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.NodeID = 4
	cfg.InitialControllers = nil
	cfg.Logger = testLogger(t, "controller-4")
	fourth := startController(t, cfg)
	if _, err := describeQuorumAt(t, fourth.Addr()); err != kerr.NotController {
		t.Fatalf("a node waiting to be added answered %v, want NOT_CONTROLLER", err)
	}

	add := kmsg.NewPtrAddRaftVoterRequest()
	add.VoterID = 4
	host, port, _ := net.SplitHostPort(cfg.RaftListen)
	portN, _ := strconv.Atoi(port)
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = listenerNameRaft, host, uint16(portN)
	add.Listeners = []kmsg.AddRaftVoterRequestListener{l}
	retryNotController(t, "add voter", kerr.DuplicateVoter.Code, func() (int16, *string) {
		resp := ask[*kmsg.AddRaftVoterResponse](t, follower.Addr(), add)
		return resp.ErrorCode, resp.ErrorMessage
	})
	waitVoters(t, follower.Addr(), 1, 2, 3, 4)
	if resp := ask[*kmsg.AddRaftVoterResponse](t, follower.Addr(), add); resp.ErrorCode != kerr.DuplicateVoter.Code {
		t.Fatalf("adding voter 4 again: %v, want DUPLICATE_VOTER", kerr.ErrorForCode(resp.ErrorCode))
	}
	waitImage(t, fourth, "the new voter's image has its listener", func(img *image.Image) bool {
		return img.Controllers[4].Port != 0
	})

	rm := kmsg.NewPtrRemoveRaftVoterRequest()
	rm.VoterID = 4
	retryNotController(t, "remove voter", kerr.VoterNotFound.Code, func() (int16, *string) {
		resp := ask[*kmsg.RemoveRaftVoterResponse](t, follower.Addr(), rm)
		return resp.ErrorCode, resp.ErrorMessage
	})
	waitVoters(t, ctls[0].Addr(), 1, 2, 3)
	waitImage(t, ctls[0], "the removed voter's listener is gone", func(img *image.Image) bool {
		_, ok := img.Controllers[4]
		return !ok && len(img.Controllers) == 3
	})
	// NOT_CONTROLLER (a leader stepping down on a loaded machine) is
	// retried, as a client would.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := ask[*kmsg.RemoveRaftVoterResponse](t, ctls[0].Addr(), rm)
		if resp.ErrorCode == kerr.NotController.Code && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // backoff between retries, not a condition
			continue
		}
		if resp.ErrorCode != kerr.VoterNotFound.Code {
			t.Fatalf("removing voter 4 again: %v, want VOTER_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
		}
		return
	}
}

// retryNotController runs a quorum change until it succeeds. NOT_CONTROLLER
// (the Raft leader stepped down meanwhile, as on a loaded machine) is
// retriable, as for any client; after such an answer the change may have
// been applied anyway, so a retry answered with doneCode counts as success.
func retryNotController(t *testing.T, what string, doneCode int16, do func() (int16, *string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	retried := false
	for {
		code, msg := do()
		switch {
		case code == 0, retried && code == doneCode:
			return
		case code == kerr.NotController.Code && time.Now().Before(deadline):
			retried = true
			time.Sleep(100 * time.Millisecond) // backoff between retries, not a condition
			continue
		}
		t.Fatalf("%s: %v %v", what, kerr.ErrorForCode(code), msg)
	}
}
