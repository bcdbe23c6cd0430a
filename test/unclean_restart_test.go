package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestUncleanRestartNotElected is issue 10's defect 5 with real processes:
// 1 controller, 2 brokers, a topic with replication factor 2 and
// min.insync.replicas=2, acks=all records acknowledged by both replicas.
// The follower is frozen (SIGSTOP) until its session times out: the ISR is
// the leader alone, the follower an eligible leader replica (KIP-966). The
// leader then loses power: SIGKILL, and the tail of its log is dropped as a
// machine crash drops what was never fsynced (half of its segment). It
// restarts without a clean-shutdown marker: it must not lead while the
// follower is away, since it lost acknowledged records. The follower
// resumes: it is elected from the ELR, the old leader follows and catches
// up, every acknowledged record is there and the replicas are identical.
func TestUncleanRestartNotElected(t *testing.T) {
	const (
		topic = "unclean-restart"
		// The controller's periodic check elects leaders for offline
		// partitions (and would rebalance leaders: off here) every
		// electionCheck; the restarted leader must not be elected for
		// notElected, several such checks.
		electionCheck = 250 * time.Millisecond
		notElected    = 2 * time.Second
	)
	c := rf2Cluster(t, "--leader-imbalance-check-interval", electionCheck.String(), "--auto-leader-rebalance-enable=false")
	createTopic(t, c, topic, 1, 2, map[string]*string{"min.insync.replicas": strPtr("2")})
	all := []int32{c.Brokers[0].ID, c.Brokers[1].ID}
	waitTopicState(t, c.Brokers[0], topic, 1, 20*time.Second, all...)

	var ledger harness.Ledger
	stop := rf2Producer(t, c, topic, "acked", &ledger)
	waitLedger(t, &ledger, 3_000, 30*time.Second)
	stop()
	if failed, err := ledger.Failed(); failed > 0 {
		t.Fatalf("%d records failed; first error: %v", failed, err)
	}
	t.Logf("%d records acknowledged by both replicas", ledger.Acked())

	leader := c.Broker(partitionLeader(t, c, topic, 0))
	follower := otherOf(c, leader)
	if err := follower.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follower.Resume() })
	waitTopicState(t, leader, topic, 1, 30*time.Second, leader.ID)
	t.Logf("froze follower %s: fenced, ISR [%d]", follower.Name, leader.ID)

	leader.MustKill()
	if _, err := os.Stat(filepath.Join(leader.DataDir, ".kafka_cleanshutdown")); err == nil {
		t.Fatalf("a SIGKILLed broker left a clean-shutdown marker")
	}
	dropped := dropLogTail(t, filepath.Join(leader.DataDir, topic+"-0"))
	t.Logf("SIGKILLed leader %s and dropped the last %d bytes of its log (an unsynced tail)", leader.Name, dropped)
	leader.Restart() // returns once the broker lists itself: registered and unfenced

	// The unfence decision is applied by now; the periodic election check
	// (every electionCheck) must not elect it either.
	// (A negative: it is checked every 100 ms for a bounded window.)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(notElected); time.Now().Before(deadline); <-tick.C {
		parts, err := topicStateVia(leader, topic)
		if err != nil {
			continue
		}
		if p, ok := parts[0]; ok && p.leader == leader.ID {
			t.Fatalf("%s was elected leader after an unclean restart while the only other replica was away (ISR %v)", leader.Name, p.isr)
		}
	}
	t.Logf("%s restarted uncleanly and was not elected for %v (periodic election checks every %v)", leader.Name, notElected, electionCheck)
	elr, err := describeELR(leader, topic)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(elr, []int32{follower.ID}) {
		t.Fatalf("DescribeTopicPartitions: ELR %v, want [%d] (the frozen follower)", elr, follower.ID)
	}

	if err := follower.Resume(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		parts, err := topicStateVia(follower, topic)
		if err != nil {
			return false, err.Error()
		}
		if p := parts[0]; p.leader != follower.ID {
			return false, fmt.Sprintf("leader %d, want %d", p.leader, follower.ID)
		}
		return true, ""
	})
	t.Logf("resumed %s: elected from the eligible leader replicas", follower.Name)
	waitTopicState(t, follower, topic, 1, 60*time.Second, all...)

	checkReplicasIdentical(t, c, topic, 1, 30*time.Second)
	report := harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks())
	report.Check(t)

	// The unclean restart was registered as such; a SIGTERM leaves a marker
	// with the broker epoch, and the restart after it registers as clean.
	ctl := c.Controllers[0]
	if !slices.ContainsFunc(strings.Split(ctl.Tail(2000), "\n"), func(l string) bool {
		return strings.Contains(l, "unclean shutdown") && strings.Contains(l, fmt.Sprintf("broker=%d ", leader.ID))
	}) {
		t.Errorf("the controller did not log %s's unclean registration", leader.Name)
	}
	follower.MustStop()
	follower.Restart()
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, l := range strings.Split(ctl.Tail(200), "\n") {
			if strings.Contains(l, "broker registered:") && strings.Contains(l, fmt.Sprintf("broker=%d ", follower.ID)) &&
				strings.Contains(l, "clean=true") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no clean registration of %s logged", follower.Name)
	})
}

// dropLogTail truncates the newest segment in dir to half its size, as a
// machine crash loses writes that were never fsynced, and returns the
// bytes dropped.
func dropLogTail(t *testing.T, dir string) int64 {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	newest := segs[len(segs)-1] // zero-padded base offsets sort in offset order
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	keep := fi.Size() / 2
	if err := os.Truncate(newest, keep); err != nil {
		t.Fatal(err)
	}
	return fi.Size() - keep
}

// describeELR is partition 0's eligible leader replicas in broker b's
// DescribeTopicPartitions answer.
func describeELR(b *harness.Node, topic string) ([]int32, error) {
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
	rt.Topic = topic
	req.Topics = append(req.Topics, rt)
	r, err := b.Request(req, 5*time.Second)
	if err != nil {
		return nil, err
	}
	resp := r.(*kmsg.DescribeTopicPartitionsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
		return nil, fmt.Errorf("DescribeTopicPartitions via %s: %+v", b.Name, resp)
	}
	return resp.Topics[0].Partitions[0].EligibleLeaderReplicas, nil
}
