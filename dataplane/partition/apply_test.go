package partition

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// applyObserver is a Manager under test with what its hooks told.
type applyObserver struct {
	m     *Manager
	store *storage.Manager
	// followers and leaders as the hooks last described them.
	followers map[storage.TopicPartition]Follower
	leaders   map[storage.TopicPartition]*Partition
}

// newApplyObserver returns a manager over its own storage directory whose
// follower and leader hooks are recorded.
func newApplyObserver(t testing.TB, leaderTopic string) *applyObserver {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	o := &applyObserver{store: store, followers: map[storage.TopicPartition]Follower{},
		leaders: map[storage.TopicPartition]*Partition{}}
	cfg := DefaultConfig(testNode)
	cfg.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	cfg.OnFollowers = o.onFollowers
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.SetOnLeaders(leaderTopic, o.onLeaders(leaderTopic))
	o.m = m
	return o
}

// onFollowers folds the changes into the full set.
func (o *applyObserver) onFollowers(ch FollowerChanges) {
	seen := map[storage.TopicPartition]bool{}
	for _, tp := range ch.Unfollowed {
		seen[tp] = true
		if _, ok := o.followers[tp]; !ok {
			panic(fmt.Sprintf("%v unfollowed but not followed", tp))
		}
		delete(o.followers, tp)
	}
	for _, f := range ch.Followed {
		if seen[f.Partition.tp] {
			panic(fmt.Sprintf("%v both followed and unfollowed", f.Partition.tp))
		}
		seen[f.Partition.tp] = true
		o.followers[f.Partition.tp] = f
	}
}

// onLeaders records the leaders of the topic it watches (the hook is
// per topic); a call replaces what that topic's previous one said.
func (o *applyObserver) onLeaders(topic string) func(*image.Image, []*Partition) {
	return func(_ *image.Image, led []*Partition) {
		for tp := range o.leaders {
			if tp.Topic == topic {
				delete(o.leaders, tp)
			}
		}
		for _, p := range led {
			if p.tp.Topic != topic {
				panic(fmt.Sprintf("leader hook of %s told of %v", topic, p.tp))
			}
			o.leaders[p.tp] = p
		}
	}
}

// describe renders everything ApplyImage decides from the image: the
// hosted replicas with their metadata state and configs, the logs in
// storage, the followers and the leaders as the hooks said.
func (o *applyObserver) describe(t testing.TB) string {
	t.Helper()
	var lines []string
	for _, p := range o.m.Partitions() {
		if got := o.m.Get(p.tp.Topic, p.tp.Partition); got != p {
			t.Fatalf("Get(%v) is not the hosted replica", p.tp)
		}
		st := p.State()
		p.roleMu.RLock()
		lines = append(lines, fmt.Sprintf("replica %s-%d id=%x role=%v leader=%d le=%d pe=%d isr=%v replicas=%v lso=%d settings=%+v config=%+v",
			p.tp.Topic, p.tp.Partition, p.topicID[:1], st.Role, st.LeaderID, st.LeaderEpoch, st.PartitionEpoch, st.ISR,
			p.replicas, st.LeaderEpochStartOffset, p.settings, p.logConfig))
		p.roleMu.RUnlock()
		if p.log.Config() != p.logConfig {
			t.Fatalf("%v: log config %+v, replica says %+v", p.tp, p.log.Config(), p.logConfig)
		}
	}
	for tp, l := range o.store.Logs() {
		lines = append(lines, fmt.Sprintf("log %s-%d id=%x", tp.Topic, tp.Partition, l.TopicID()))
	}
	for tp, f := range o.followers {
		if o.m.Get(tp.Topic, tp.Partition) != f.Partition {
			t.Fatalf("follower %v is not the hosted replica", tp)
		}
		lines = append(lines, fmt.Sprintf("follow %s-%d leader=%d le=%d addr=%s", tp.Topic, tp.Partition, f.LeaderID, f.LeaderEpoch, f.LeaderAddr))
	}
	for tp, p := range o.leaders {
		if o.m.Get(tp.Topic, tp.Partition) != p {
			t.Fatalf("leader %v is not the hosted replica", tp)
		}
		lines = append(lines, fmt.Sprintf("lead %s-%d", tp.Topic, tp.Partition))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// imageEdit derives the next image from img as the controller does:
// structurally shared, so every topic, partition and broker not changed
// keeps its pointer.
type imageEdit struct{ img *image.Image }

func editImage(img *image.Image) *imageEdit {
	next := *img
	next.Index++
	next.Topics = maps.Clone(img.Topics)
	next.Brokers = maps.Clone(img.Brokers)
	return &imageEdit{img: &next}
}

// partition replaces one partition with a changed copy.
func (e *imageEdit) partition(topic string, idx int32, change func(p *image.Partition)) *imageEdit {
	t := *e.img.Topics[topic]
	t.Partitions = slices.Clone(t.Partitions)
	p := t.Partitions[idx].Clone()
	change(p)
	t.Partitions[idx] = p
	e.img.Topics[topic] = &t
	return e
}

func (e *imageEdit) brokerConfig(key, value string) *imageEdit {
	e.img.BrokerConfigs = maps.Clone(e.img.BrokerConfigs)
	e.img.BrokerConfigs[key] = value
	return e
}

func (e *imageEdit) brokerPort(id, port int32) *imageEdit {
	b := *e.img.Brokers[id]
	b.Port = port
	e.img.Brokers[id] = &b
	return e
}

func (e *imageEdit) put(t *image.Topic) *imageEdit { e.img.Topics[t.Name] = t; return e }

func (e *imageEdit) drop(name string) *imageEdit { delete(e.img.Topics, name); return e }

// TestApplyImageSequenceMatchesFreshApply applies a sequence of
// structurally shared images (as the controller publishes them) and checks
// after each that the manager holds exactly what a fresh manager computes
// from that image alone: hosted replicas and their state, logs, followers,
// leaders (of the topic the leader hook watches: each in turn).
func TestApplyImageSequenceMatchesFreshApply(t *testing.T) {
	for _, topic := range []string{"led", "followed", "doomed"} {
		t.Run(topic, func(t *testing.T) { testApplyImageSequence(t, topic) })
	}
}

func testApplyImageSequence(t *testing.T, leaderTopic string) {
	o := newApplyObserver(t, leaderTopic)
	// Before the first image: a stray log from an earlier life.
	if _, err := o.store.GetOrCreate(storage.TopicPartition{Topic: "stray", Partition: 0}, [16]byte{0x77}, storage.DefaultLogConfig()); err != nil {
		t.Fatal(err)
	}
	led := testTopic("led", 1, 4, testNode, 1, []int32{testNode, 2, 3}, nil)
	followed := testTopic("followed", 2, 3, 2, 1, []int32{2, testNode}, map[string]string{"retention.ms": "1000"})
	elsewhere := testTopic("elsewhere", 3, 2, 3, 1, []int32{3, 2}, nil)
	doomed := testTopic("doomed", 4, 2, 3, 1, []int32{3, testNode}, nil)
	many := testTopic("many", 5, 100, 2, 1, []int32{2, 3, testNode}, nil)

	steps := []struct {
		name string
		img  func(prev *image.Image) *image.Image
	}{
		{"first image", func(*image.Image) *image.Image { return testImage(1, led, followed, elsewhere, doomed) }},
		{"isr shrink", func(prev *image.Image) *image.Image {
			return editImage(prev).partition("led", 1, func(p *image.Partition) {
				p.ISR = []int32{testNode, 2}
				p.PartitionEpoch++
			}).img
		}},
		{"leader moves here and away", func(prev *image.Image) *image.Image {
			return editImage(prev).
				partition("followed", 0, func(p *image.Partition) { p.Leader = testNode; p.LeaderEpoch++; p.PartitionEpoch++ }).
				partition("led", 2, func(p *image.Partition) { p.Leader = 2; p.LeaderEpoch++; p.PartitionEpoch++ }).
				partition("followed", 2, func(p *image.Partition) { p.LeaderEpoch++; p.PartitionEpoch++ }).img
		}},
		{"offline leader", func(prev *image.Image) *image.Image {
			return editImage(prev).partition("followed", 1, func(p *image.Partition) { p.Leader = -1; p.LeaderEpoch++ }).img
		}},
		{"broker config default", func(prev *image.Image) *image.Image {
			return editImage(prev).brokerConfig("min.insync.replicas", "2").brokerConfig("log.retention.ms", "5000").img
		}},
		{"broker address", func(prev *image.Image) *image.Image { return editImage(prev).brokerPort(2, 19092).img }},
		{"new topic of 100", func(prev *image.Image) *image.Image { return editImage(prev).put(many).img }},
		{"replica moved away and here", func(prev *image.Image) *image.Image {
			return editImage(prev).
				partition("led", 3, func(p *image.Partition) {
					p.Replicas = []int32{2, 3}
					p.ISR = []int32{2, 3}
					p.Leader = 2
					p.LeaderEpoch++
				}).
				partition("elsewhere", 1, func(p *image.Partition) { p.Replicas = []int32{3, 2, testNode} }).img
		}},
		{"topic deleted", func(prev *image.Image) *image.Image { return editImage(prev).drop("doomed").img }},
		{"topic re-created", func(prev *image.Image) *image.Image {
			return editImage(prev).put(testTopic("followed", 6, 2, testNode, 0, []int32{testNode, 3}, nil)).img
		}},
		{"full snapshot", func(prev *image.Image) *image.Image {
			next := prev.Clone()
			next.Index++
			return next
		}},
		{"unchanged", func(prev *image.Image) *image.Image { return editImage(prev).img }},
	}
	var img *image.Image
	for _, s := range steps {
		img = s.img(img)
		o.m.ApplyImage(img)
		fresh := newApplyObserver(t, leaderTopic)
		fresh.m.ApplyImage(img)
		got, want := o.describe(t), fresh.describe(t)
		if got != want {
			t.Fatalf("after %q:\n got:\n%s\nwant (fresh manager):\n%s", s.name, got, want)
		}
		if !strings.Contains(got, "replica ") || !strings.Contains(got, "follow ") {
			t.Fatalf("after %q: nothing hosted or followed:\n%s", s.name, got)
		}
	}
	if o.store.Get(storage.TopicPartition{Topic: "stray", Partition: 0}) != nil {
		t.Fatal("stray log kept")
	}
}

// TestApplyImageCostIndependentOfClusterSize: an image that changes one
// partition's ISR, every other topic and partition shared with the
// previous image, costs the same allocations whether this broker hosts 10
// partitions in 2 topics or 1,000 in 200: the topics the image did not
// change are not walked replica by replica (re-applying a replica's
// metadata alone allocates its ISR and replica lists).
func TestApplyImageCostIndependentOfClusterSize(t *testing.T) {
	allocs := func(topics int) float64 {
		o := newApplyObserver(t, "t000")
		var ts []*image.Topic
		for i := range topics {
			ts = append(ts, testTopic(fmt.Sprintf("t%03d", i), byte(i+1), 5, 2, 1, []int32{2, 3, testNode}, nil))
		}
		img := testImage(1, ts...)
		o.m.ApplyImage(img)
		if n := len(o.m.Partitions()); n != topics*5 {
			t.Fatalf("%d partitions hosted, want %d", n, topics*5)
		}
		isrs := [][]int32{{2, testNode}, {2, 3, testNode}}
		i := 0
		return testing.AllocsPerRun(20, func() {
			i++
			img = editImage(img).partition("t001", 0, func(p *image.Partition) {
				p.ISR = isrs[i%2]
				p.PartitionEpoch++
			}).img
			o.m.ApplyImage(img)
		})
	}
	small, large := allocs(2), allocs(200)
	t.Logf("allocations per image: %v with 2 topics, %v with 200", small, large)
	if large > small+30 {
		t.Fatalf("one partition's change allocates %v with 200 topics hosted, %v with 2: the unchanged topics are re-applied", large, small)
	}
}
