package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// electionImage builds an image with brokers 1, 2, 3 (those in fenced are
// fenced) and topic "t" whose partitions are given as
// "replicas/isr/leader[/elr[/last-known-elr]]" strings such as "1,2,3/2,3/2"
// or "1,2//-1/2/1"; configs are topic configs.
func electionImage(t *testing.T, fenced []int32, configs map[string]string, parts ...string) *image.Image {
	t.Helper()
	img := image.New()
	for id := int32(1); id <= 3; id++ {
		img.Brokers[id] = &image.Broker{ID: id, Epoch: int64(id), Fenced: slices.Contains(fenced, id)}
	}
	top := &image.Topic{Name: "t", ID: topicA, Configs: configs}
	for i, s := range parts {
		f := strings.Split(s, "/")
		if len(f) < 3 || len(f) > 5 {
			t.Fatalf("partition spec %q", s)
		}
		var leader int32
		fmt.Sscan(f[2], &leader)
		p := &image.Partition{
			Partition: int32(i), Replicas: ids(f[0]), ISR: ids(f[1]), Leader: leader, LeaderEpoch: 5, PartitionEpoch: 7,
		}
		if len(f) > 3 {
			p.ELR = ids(f[3])
		}
		if len(f) > 4 {
			p.LastKnownELR = ids(f[4])
		}
		top.Partitions = append(top.Partitions, p)
	}
	img.Topics["t"] = top
	return img
}

func ids(s string) []int32 {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		var id int32
		fmt.Sscan(f, &id)
		out = append(out, id)
	}
	return out
}

// liveExcept says every unfenced broker of img is live, except those named.
func liveExcept(img *image.Image, down ...int32) isLive {
	return func(id int32) bool {
		b := img.Brokers[id]
		return b != nil && !b.Fenced && !slices.Contains(down, id)
	}
}

// applied applies recs to img and returns partition
// "replicas/isr/leader[/elr[/last-known-elr]]" strings plus the epochs, for
// comparison (the ELR fields only when not empty).
func applied(t *testing.T, img *image.Image, recs []record) []string {
	t.Helper()
	if len(recs) > 0 {
		next, err := applyEntry(img, img.Index+1, entry{Records: recs})
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		img = next
	}
	var out []string
	for _, p := range img.Topics["t"].Partitions {
		s := fmt.Sprintf("%s/%s/%d", join(p.Replicas), join(p.ISR), p.Leader)
		if len(p.ELR) > 0 || len(p.LastKnownELR) > 0 {
			s += "/" + join(p.ELR)
		}
		if len(p.LastKnownELR) > 0 {
			s += "/" + join(p.LastKnownELR)
		}
		out = append(out, fmt.Sprintf("%s e%d p%d", s, p.LeaderEpoch, p.PartitionEpoch))
	}
	return out
}

func join(v []int32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

func TestFenceDecision(t *testing.T) {
	unclean := map[string]string{uncleanConfig: "true"}
	for _, tc := range []struct {
		name    string
		fenced  []int32 // already fenced before broker 1
		configs map[string]string
		parts   []string
		want    []string
	}{
		{"leader moves to next live ISR member; ISR shrinks", nil, nil,
			[]string{"1,2,3/1,2,3/1"}, []string{"1,2,3/2,3/2 e6 p8"}},
		{"follower leaves the ISR, leader epoch kept", nil, nil,
			[]string{"2,1,3/2,1,3/2"}, []string{"2,1,3/2,3/2 e5 p8"}},
		{"replica order, not ISR order, decides", nil, nil,
			[]string{"1,3,2/1,2,3/1"}, []string{"1,3,2/2,3/3 e6 p8"}},
		{"fenced ISR members are skipped", []int32{2}, nil,
			[]string{"1,2,3/1,2,3/1"}, []string{"1,2,3/2,3/3 e6 p8"}},
		{"last ISR member: offline, moved to the ELR (KIP-966)", nil, nil,
			[]string{"1,2,3/1/1"}, []string{"1,2,3//-1/1 e6 p8"}},
		{"no live ISR member: offline", []int32{2, 3}, nil,
			[]string{"1,2,3/1,2/1"}, []string{"1,2,3/2/-1 e6 p8"}},
		{"no live ISR member, unclean allowed: first live replica", []int32{2}, unclean,
			[]string{"1,2,3/1,2/1"}, []string{"1,2,3/3/3 e6 p8"}},
		{"not a member: untouched", nil, nil,
			[]string{"2,3/2,3/2"}, []string{"2,3/2,3/2 e5 p7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := electionImage(t, tc.fenced, tc.configs, tc.parts...)
			recs := fenceDecision(img, 1, liveExcept(img, 1))
			if got := applied(t, img, recs); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnfenceDecision(t *testing.T) {
	unclean := map[string]string{uncleanConfig: "true"}
	for _, tc := range []struct {
		name    string
		fenced  []int32 // besides broker 1, being unfenced
		configs map[string]string
		parts   []string
		want    []string
	}{
		{"offline partition with broker 1 in its ISR: elected", nil, nil,
			[]string{"1,2/1/-1"}, []string{"1,2/1/1 e6 p8"}},
		{"does not rejoin the ISR of a partition with a live leader", nil, nil,
			[]string{"1,2,3/2,3/2"}, []string{"1,2,3/2,3/2 e5 p7"}},
		{"offline partition without it in the ISR stays offline", []int32{3}, nil,
			[]string{"1,2,3/3/-1"}, []string{"1,2,3/3/-1 e5 p7"}},
		{"... unless unclean election is allowed", []int32{3}, unclean,
			[]string{"1,2,3/3/-1"}, []string{"1,2,3/1/1 e6 p8"}},
		{"not a replica: untouched", nil, nil,
			[]string{"2,3/2/2"}, []string{"2,3/2/2 e5 p7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := electionImage(t, append([]int32{1}, tc.fenced...), tc.configs, tc.parts...)
			base := liveExcept(img)
			live := func(id int32) bool { return id == 1 || base(id) }
			recs := unfenceDecision(img, 1, live)
			if got := applied(t, img, recs); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestElectLeaderlessUnclean(t *testing.T) {
	// Broker 3, the only ISR member, is fenced; 1 and 2 are live.
	img := electionImage(t, []int32{3}, nil, "1,2,3/3/-1", "3,2/2,3/-1")
	recs := electLeaderless(img, liveExcept(img))
	want := []string{"1,2,3/3/-1 e5 p7", "3,2/2,3/2 e6 p8"} // a clean election only
	if got := applied(t, img, recs); !slices.Equal(got, want) {
		t.Fatalf("clean: got %v, want %v", got, want)
	}
	img.BrokerConfigs[uncleanConfig] = "true" // the cluster-wide default counts too
	recs = electLeaderless(img, liveExcept(img))
	want = []string{"1,2,3/1/1 e6 p8", "3,2/2,3/2 e6 p8"}
	if got := applied(t, img, recs); !slices.Equal(got, want) {
		t.Fatalf("unclean: got %v, want %v", got, want)
	}
	img.Topics["t"].Configs = map[string]string{uncleanConfig: "false"} // the topic's own wins
	recs = electLeaderless(img, liveExcept(img))
	want = []string{"1,2,3/3/-1 e5 p7", "3,2/2,3/2 e6 p8"}
	if got := applied(t, img, recs); !slices.Equal(got, want) {
		t.Fatalf("topic overrides: got %v, want %v", got, want)
	}
}

func TestPlanElections(t *testing.T) {
	img := electionImage(t, []int32{3}, nil,
		"1,2/1,2/1",  // 0: preferred leads
		"1,2/1,2/2",  // 1: preferred can be elected
		"3,1/1,3/1",  // 2: preferred fenced
		"2,1/1/1",    // 3: preferred out of the ISR
		"1,2,3/3/-1", // 4: offline, only ISR member fenced
		"3,1,2/3/-1", // 5: offline, no live replica in the ISR
	)
	live := liveExcept(img)
	req := func(parts ...int32) []kmsg.ElectLeadersRequestTopic {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "t", parts
		missing := kmsg.NewElectLeadersRequestTopic()
		missing.Topic, missing.Partitions = "missing", []int32{0}
		return []kmsg.ElectLeadersRequestTopic{rt, missing}
	}
	codes := func(plan electionPlan) map[string]int16 {
		out := map[string]int16{}
		for _, rt := range plan.results {
			for _, p := range rt.Partitions {
				out[fmt.Sprintf("%s-%d", rt.Topic, p.Partition)] = p.ErrorCode
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		kind  int8
		all   bool
		parts []int32
		want  map[string]int16
		after []string
	}{
		{"preferred, listed (duplicates answered once)", electionPreferred, false, []int32{0, 1, 1, 2, 3, 4, 9},
			map[string]int16{"t-0": kerr.ElectionNotNeeded.Code, "t-1": 0, "t-2": kerr.PreferredLeaderNotAvailable.Code,
				"t-3": kerr.PreferredLeaderNotAvailable.Code, "t-4": kerr.PreferredLeaderNotAvailable.Code, "t-9": kerr.UnknownTopicOrPartition.Code,
				"missing-0": kerr.UnknownTopicOrPartition.Code},
			[]string{"1,2/1,2/1 e5 p7", "1,2/1,2/1 e6 p8", "3,1/1,3/1 e5 p7", "2,1/1/1 e5 p7", "1,2,3/3/-1 e5 p7", "3,1,2/3/-1 e5 p7"}},
		{"preferred, all partitions: not-needed ones left out", electionPreferred, true, nil,
			map[string]int16{"t-1": 0, "t-2": kerr.PreferredLeaderNotAvailable.Code, "t-3": kerr.PreferredLeaderNotAvailable.Code,
				"t-4": kerr.PreferredLeaderNotAvailable.Code, "t-5": kerr.PreferredLeaderNotAvailable.Code},
			[]string{"1,2/1,2/1 e5 p7", "1,2/1,2/1 e6 p8", "3,1/1,3/1 e5 p7", "2,1/1/1 e5 p7", "1,2,3/3/-1 e5 p7", "3,1,2/3/-1 e5 p7"}},
		{"unclean, all partitions", electionUnclean, true, nil,
			map[string]int16{"t-4": 0, "t-5": 0},
			[]string{"1,2/1,2/1 e5 p7", "1,2/1,2/2 e5 p7", "3,1/1,3/1 e5 p7", "2,1/1/1 e5 p7", "1,2,3/1/1 e6 p8", "3,1,2/1/1 e6 p8"}},
		{"unknown election type", 7, false, []int32{0},
			map[string]int16{"t-0": kerr.InvalidRequest.Code, "missing-0": kerr.UnknownTopicOrPartition.Code},
			[]string{"1,2/1,2/1 e5 p7", "1,2/1,2/2 e5 p7", "3,1/1,3/1 e5 p7", "2,1/1/1 e5 p7", "1,2,3/3/-1 e5 p7", "3,1,2/3/-1 e5 p7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var topics []kmsg.ElectLeadersRequestTopic
			if !tc.all {
				topics = req(tc.parts...)
			}
			plan := planElections(img, topics, tc.all, tc.kind, live)
			if got := codes(plan); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("codes %v, want %v", got, tc.want)
			}
			if got := applied(t, img, plan.recs); !slices.Equal(got, tc.after) {
				t.Errorf("after: %v, want %v", got, tc.after)
			}
		})
	}
}

func TestRebalanceDecision(t *testing.T) {
	// Broker 1 prefers 4 partitions and leads 2 of them: 50% imbalance.
	// Broker 2 prefers 10 and leads 9 of them: 10%, not above the 10% limit.
	parts := []string{"1,2/1,2/1", "1,2/1,2/1", "1,2/1,2/2", "1,3/3/3"}
	for range 9 {
		parts = append(parts, "2,1/1,2/2")
	}
	parts = append(parts, "2,1/1,2/1")
	img := electionImage(t, nil, nil, parts...)
	recs := rebalanceDecision(img, liveExcept(img), 10)
	got := applied(t, img, recs)
	// Partition 2 moves back to 1; partition 3 cannot (1 is not in its ISR);
	// broker 2's partition 13 stays with 1.
	if got[2] != "1,2/1,2/1 e6 p8" || got[3] != "1,3/3/3 e5 p7" || got[13] != "2,1/1,2/1 e5 p7" || len(recs) != 1 {
		t.Fatalf("after rebalance (%d changes): %v", len(recs), got)
	}
	// At 0% every imbalanced partition whose preferred replica can lead moves.
	recs = rebalanceDecision(img, liveExcept(img), 0)
	if got := applied(t, img, recs); len(recs) != 2 || got[13] != "2,1/1,2/2 e6 p8" {
		t.Fatalf("after rebalance at 0%% (%d changes): %v", len(recs), got)
	}
	// A fenced preferred replica gets nothing back.
	recs = rebalanceDecision(img, liveExcept(img, 1), 0)
	if len(recs) != 1 {
		t.Fatalf("with broker 1 down: %d changes, want 1", len(recs))
	}
}
