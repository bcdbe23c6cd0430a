package throttle

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/image"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testImage() *image.Image {
	img := image.New()
	for _, id := range []int32{1, 2, 3} {
		img.Brokers[id] = &image.Broker{ID: id}
	}
	img.Topics["moving"] = &image.Topic{Name: "moving", Configs: map[string]string{
		image.LeaderThrottledReplicasConfig:   "0:1,0:2,1:2",
		image.FollowerThrottledReplicasConfig: "0:3, 1:1",
	}}
	img.Topics["all"] = &image.Topic{Name: "all", Configs: map[string]string{image.FollowerThrottledReplicasConfig: "*"}}
	img.Topics["none"] = &image.Topic{Name: "none", Configs: map[string]string{image.LeaderThrottledReplicasConfig: ""}}
	img.Topics["plain"] = &image.Topic{Name: "plain"}
	return img
}

// TestSelection: a side throttles the partitions its list names for this
// broker ("*": all), and only once a rate is set for it (own value over
// the cluster-wide one).
func TestSelection(t *testing.T) {
	img := testImage()
	for _, tc := range []struct {
		node               int32
		leader, follower   []string
		notLeader, notFoll []string
	}{
		{1, []string{"moving/0"}, []string{"moving/1", "all/0", "all/7"}, []string{"moving/1", "none/0", "plain/0"}, []string{"moving/0", "plain/0"}},
		{2, []string{"moving/0", "moving/1"}, []string{"all/3"}, []string{"moving/2", "all/0"}, []string{"moving/0", "moving/1"}},
		{3, nil, []string{"moving/0", "all/0"}, []string{"moving/0", "moving/1"}, []string{"moving/1"}},
	} {
		th := New(tc.node, nil, nil)
		th.ApplyImage(img)
		// No rate yet: nothing is throttled.
		for _, tp := range append(tc.leader, tc.follower...) {
			topic, p := split(t, tp)
			if th.Leader().Throttled(topic, p) || th.Follower().Throttled(topic, p) {
				t.Fatalf("node %d %s: throttled without a rate", tc.node, tp)
			}
		}
		withRates := img.Clone()
		withRates.BrokerConfigs[image.LeaderThrottledRateConfig] = "1000"
		withRates.BrokerOverrides = map[int32]map[string]string{tc.node: {image.FollowerThrottledRateConfig: "2000"}}
		th.ApplyImage(withRates)
		check := func(s *Side, tps []string, want bool) {
			for _, tp := range tps {
				topic, p := split(t, tp)
				if got := s.Throttled(topic, p); got != want {
					t.Errorf("node %d %s side %s: throttled %v, want %v", tc.node, s.name, tp, got, want)
				}
			}
		}
		check(th.Leader(), tc.leader, true)
		check(th.Leader(), tc.notLeader, false)
		check(th.Follower(), tc.follower, true)
		check(th.Follower(), tc.notFoll, false)
		if th.Leader().state.Load().rate != 1000 || th.Follower().state.Load().rate != 2000 {
			t.Errorf("node %d rates: leader %d follower %d", tc.node, th.Leader().state.Load().rate, th.Follower().state.Load().rate)
		}
	}
	var nilT *Throttles
	if nilT.Leader().Throttled("moving", 0) || nilT.Follower().Exceeded() {
		t.Fatal("a nil Throttles throttles")
	}
}

func split(t *testing.T, tp string) (string, int32) {
	t.Helper()
	topic, p, _ := strings.Cut(tp, "/")
	n := int32(0)
	for _, c := range p {
		n = n*10 + int32(c-'0')
	}
	return topic, n
}

// TestQuota: the bucket lets reads through while it holds a token, takes
// what was recorded (possibly going into debt), refills at the rate, and
// keeps its state across a rate change; rate 0 stops throttled
// replication; unsetting the rate unbounds it.
func TestQuota(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := New(1, nil, clk.now)
	img := testImage()
	img.BrokerConfigs[image.LeaderThrottledRateConfig] = "1000000" // 1 MB/s, bucket of 1 MiB
	th.ApplyImage(img)
	s := th.Leader()
	if s.Exceeded() {
		t.Fatal("a new quota is exceeded")
	}
	s.Record(3 << 20) // 3 MiB: 2 MiB of debt
	if !s.Exceeded() {
		t.Fatal("not exceeded after 3 MiB")
	}
	at, ok := s.ReadyAt()
	if want := clk.t.Add(time.Duration(float64(2<<20+1) / 1e6 * float64(time.Second))); !ok || at.Sub(want).Abs() > time.Millisecond {
		t.Fatalf("ready at %v (%v), want %v", at, ok, want)
	}
	clk.t = clk.t.Add(2 * time.Second)
	if !s.Exceeded() {
		t.Fatal("not exceeded 2 s after 2 MiB of debt at 1 MB/s")
	}
	clk.t = clk.t.Add(200 * time.Millisecond)
	if s.Exceeded() {
		t.Fatal("still exceeded after the debt was paid back")
	}

	// A rate change keeps the bucket: new debt is paid at the new rate.
	s.Record(1 << 20)
	img2 := img.Clone()
	img2.BrokerConfigs[image.LeaderThrottledRateConfig] = "10000000"
	th.ApplyImage(img2)
	if !s.Exceeded() {
		t.Fatal("a rate change refilled the bucket")
	}
	clk.t = clk.t.Add(100 * time.Millisecond)
	if s.Exceeded() {
		t.Fatal("not refilled at the new rate")
	}

	img3 := img.Clone()
	img3.BrokerConfigs[image.LeaderThrottledRateConfig] = "0"
	th.ApplyImage(img3)
	if !s.Exceeded() || !s.Throttled("moving", 0) {
		t.Fatal("rate 0 lets data through")
	}
	if _, ok := s.ReadyAt(); ok {
		t.Fatal("rate 0 gets ready")
	}
	img4 := img.Clone()
	delete(img4.BrokerConfigs, image.LeaderThrottledRateConfig)
	th.ApplyImage(img4)
	if s.Exceeded() || s.Throttled("moving", 0) {
		t.Fatal("unbounded rate still throttles")
	}
}

// TestLogTransitions: one line when a side starts throttling, changes rate
// or stops; none for images that change neither.
func TestLogTransitions(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	th := New(1, log, nil)
	img := testImage()
	th.ApplyImage(img)
	img = img.Clone()
	img.BrokerOverrides = map[int32]map[string]string{1: {image.LeaderThrottledRateConfig: "5"}}
	th.ApplyImage(img)
	th.ApplyImage(img)
	img = img.Clone()
	img.BrokerOverrides[1][image.LeaderThrottledRateConfig] = "6"
	th.ApplyImage(img)
	img = img.Clone()
	img.Topics["moving"].Configs = nil
	img.Topics["none"].Configs = nil
	th.ApplyImage(img)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"replication throttle applies: side=leader rate=5", "replication throttle rate changed: side=leader rate=6",
		"replication throttle no longer applies: side=leader"}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s", buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q, want %q", i, lines[i], w)
		}
	}
}
