package metalog

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// scaleImage is an image of topics × partitions, three replicas each over
// six brokers, as a large cluster's.
func scaleImage(topics, partitions int) *image.Image {
	img := image.New()
	img.Index = 1000
	for id := range int32(6) {
		img.Brokers[id] = &image.Broker{ID: id, Epoch: int64(id + 1), Host: "h", Port: 9092}
	}
	for i := range topics {
		t := &image.Topic{Name: fmt.Sprintf("topic-%03d", i), ID: [16]byte{1, byte(i), byte(i >> 8)},
			Configs: map[string]string{"retention.ms": "1000"}}
		for p := range partitions {
			r := []int32{int32(p % 6), int32((p + 1) % 6), int32((p + 2) % 6)}
			t.Partitions = append(t.Partitions, &image.Partition{Partition: int32(p), Replicas: r,
				ISR: []int32{r[0], r[1], r[2]}, Leader: r[0], LeaderEpoch: 3, PartitionEpoch: 5})
		}
		img.Topics[t.Name] = t
	}
	return img
}

func mapPtr(m any) uintptr { return reflect.ValueOf(m).Pointer() }

// TestApplySharing pins the sharing contract (package image's doc) that
// the broker relies on to skip unchanged topics: a ChangePartition of one
// partition leaves every other topic, the topic's other partitions and
// every broker pointer-equal, and the untouched maps the same maps; a
// broker config change gives a new BrokerConfigs map and leaves the old
// one as it was; a fence gives only that broker a new pointer.
func TestApplySharing(t *testing.T) {
	img := scaleImage(10, 10)
	target := img.Topics["topic-003"]
	isr := []int32{target.Partitions[4].Replicas[0]}
	next, err := ApplyEntry(img, 1001, Entry{Records: []Change{{Type: TypeChangePartition,
		ChangePartition: &ChangePartitionRecord{TopicID: target.ID, Partition: 4, ISR: &isr}}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tp := range img.Topics {
		if name != target.Name && next.Topics[name] != tp {
			t.Errorf("topic %s: new pointer, want the same", name)
		}
	}
	nt := next.Topics[target.Name]
	if nt == target {
		t.Fatalf("changed topic kept its pointer")
	}
	for i, p := range target.Partitions {
		if same := nt.Partitions[i] == p; same != (i != 4) {
			t.Errorf("partition %d: same pointer %v, want %v", i, same, i != 4)
		}
	}
	if p := nt.Partitions[4]; len(p.ISR) != 1 || p.PartitionEpoch != 6 || len(target.Partitions[4].ISR) != 3 || target.Partitions[4].PartitionEpoch != 5 {
		t.Errorf("partition 4: new %+v, old %+v", p, target.Partitions[4])
	}
	if mapPtr(next.Brokers) != mapPtr(img.Brokers) || mapPtr(next.BrokerConfigs) != mapPtr(img.BrokerConfigs) ||
		mapPtr(next.Controllers) != mapPtr(img.Controllers) || mapPtr(nt.Configs) != mapPtr(target.Configs) {
		t.Errorf("a map the entry does not write was copied")
	}

	v := "5"
	cfg, err := ApplyEntry(next, 1002, Entry{Records: []Change{{Type: TypeConfigChange,
		ConfigChange: &ConfigChangeRecord{ResourceType: ResourceBroker, Key: "log.retention.ms", Value: &v}}}})
	if err != nil {
		t.Fatal(err)
	}
	if mapPtr(cfg.BrokerConfigs) == mapPtr(next.BrokerConfigs) || cfg.BrokerConfigs["log.retention.ms"] != "5" || len(next.BrokerConfigs) != 0 {
		t.Errorf("broker config change: new map %v (same %v), old %v", cfg.BrokerConfigs,
			mapPtr(cfg.BrokerConfigs) == mapPtr(next.BrokerConfigs), next.BrokerConfigs)
	}
	if mapPtr(cfg.Topics) != mapPtr(next.Topics) {
		t.Errorf("broker config change copied the topics")
	}

	fenced, err := ApplyEntry(cfg, 1003, Entry{Records: []Change{{Type: TypeFenceBroker,
		FenceBroker: &BrokerEpochRecord{ID: 2, Epoch: 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	for id, b := range cfg.Brokers {
		if same := fenced.Brokers[id] == b; same != (id != 2) {
			t.Errorf("broker %d: same pointer %v, want %v", id, same, id != 2)
		}
	}
	if !fenced.Brokers[2].Fenced || cfg.Brokers[2].Fenced {
		t.Errorf("fence: new %+v old %+v", fenced.Brokers[2], cfg.Brokers[2])
	}

	// A discarded entry: everything shared, only the index moves.
	bad, err := ApplyEntry(fenced, 1004, Entry{Records: []Change{
		{Type: TypeFenceBroker, FenceBroker: &BrokerEpochRecord{ID: 1, Epoch: 2}},
		{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopicRecord{TopicID: [16]byte{9}}}}})
	if err == nil || bad.Index != 1004 || mapPtr(bad.Brokers) != mapPtr(fenced.Brokers) || mapPtr(bad.Topics) != mapPtr(fenced.Topics) ||
		fenced.Brokers[1].Fenced {
		t.Errorf("discarded entry: error %v, index %d, maps shared %v %v", err, bad.Index,
			mapPtr(bad.Brokers) == mapPtr(fenced.Brokers), mapPtr(bad.Topics) == mapPtr(fenced.Topics))
	}
}

// benchEntry changes the leader and ISR of one partition of img.
func benchEntry(img *image.Image) Entry {
	t := img.Topics["topic-150"]
	p := t.Partitions[42]
	leader, isr := p.Replicas[1], []int32{p.Replicas[1], p.Replicas[2]}
	return Entry{Records: []Change{{Type: TypeChangePartition, ChangePartition: &ChangePartitionRecord{
		TopicID: t.ID, Partition: 42, Leader: &leader, ISR: &isr}}}}
}

// BenchmarkApplyEntry applies one ChangePartition to an image of 30,000
// partitions (300 topics × 100): the deep clone the FSM did before against
// copy-on-write ApplyEntry.
func BenchmarkApplyEntry(b *testing.B) {
	img := scaleImage(300, 100)
	e := benchEntry(img)
	for _, bc := range []struct {
		name  string
		apply func(*image.Image, uint64, Entry) (*image.Image, error)
	}{
		{"DeepClone", applyEntryDeepClone},
		{"CopyOnWrite", ApplyEntry},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.apply(img, img.Index+1, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestApplySharingBrokerOverrides: a per-broker config change gives a new
// BrokerOverrides map and a new map for that broker only, leaving the old
// image as it was; the cluster-wide BrokerConfigs and the topics stay
// shared; deleting a broker's last override drops its entry; deleting what
// is not set shares everything; a name that is not a broker id is refused.
func TestApplySharingBrokerOverrides(t *testing.T) {
	img := scaleImage(3, 3)
	rate, rate2 := "1000", "2000"
	set := func(from *image.Image, index uint64, name, key string, v *string) (*image.Image, error) {
		return ApplyEntry(from, index, Entry{Records: []Change{{Type: TypeConfigChange,
			ConfigChange: &ConfigChangeRecord{ResourceType: ResourceBroker, ResourceName: name, Key: key, Value: v}}}})
	}
	one, err := set(img, 1001, "1", "leader.replication.throttled.rate", &rate)
	if err != nil {
		t.Fatal(err)
	}
	two, err := set(one, 1002, "2", "leader.replication.throttled.rate", &rate2)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.BrokerOverrides) != 0 || len(one.BrokerOverrides) != 1 || one.BrokerOverrides[1]["leader.replication.throttled.rate"] != "1000" {
		t.Fatalf("overrides: before %v, after %v", img.BrokerOverrides, one.BrokerOverrides)
	}
	if mapPtr(two.BrokerOverrides) == mapPtr(one.BrokerOverrides) || mapPtr(two.BrokerOverrides[1]) != mapPtr(one.BrokerOverrides[1]) ||
		len(one.BrokerOverrides) != 1 || two.BrokerOverrides[2]["leader.replication.throttled.rate"] != "2000" {
		t.Errorf("broker 2's override: top map new %v, broker 1's map shared %v, old image %v",
			mapPtr(two.BrokerOverrides) != mapPtr(one.BrokerOverrides), mapPtr(two.BrokerOverrides[1]) == mapPtr(one.BrokerOverrides[1]), one.BrokerOverrides)
	}
	if mapPtr(two.BrokerConfigs) != mapPtr(img.BrokerConfigs) || mapPtr(two.Topics) != mapPtr(img.Topics) || mapPtr(two.Brokers) != mapPtr(img.Brokers) {
		t.Errorf("a per-broker config change copied another map")
	}
	if v, src, _ := two.BrokerConfig(2, "leader.replication.throttled.rate"); v != "2000" || src != image.SourceDynamicPerBroker {
		t.Errorf("BrokerConfig(2) = %s from %d", v, src)
	}
	if v, src, _ := two.BrokerConfig(3, "leader.replication.throttled.rate"); v != "9223372036854775807" || src != image.SourceDefault {
		t.Errorf("BrokerConfig(3) = %s from %d", v, src)
	}

	del, err := set(two, 1003, "1", "leader.replication.throttled.rate", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := del.BrokerOverrides[1]; ok || len(two.BrokerOverrides[1]) != 1 || mapPtr(del.BrokerOverrides[2]) != mapPtr(two.BrokerOverrides[2]) {
		t.Errorf("delete the last override of broker 1: %v (before %v)", del.BrokerOverrides, two.BrokerOverrides)
	}
	noop, err := set(del, 1004, "4", "follower.replication.throttled.rate", nil)
	if err != nil || mapPtr(noop.BrokerOverrides) != mapPtr(del.BrokerOverrides) {
		t.Errorf("deleting an unset override: error %v, map copied %v", err, mapPtr(noop.BrokerOverrides) != mapPtr(del.BrokerOverrides))
	}
	for _, name := range []string{"-1", "01", "x", " 1"} {
		if bad, err := set(del, 1005, name, "leader.replication.throttled.rate", &rate); err == nil || mapPtr(bad.BrokerOverrides) != mapPtr(del.BrokerOverrides) {
			t.Errorf("broker resource %q: error %v, map copied %v", name, err, mapPtr(bad.BrokerOverrides) != mapPtr(del.BrokerOverrides))
		}
	}
	// A snapshot keeps them.
	b, err := image.Marshal(two)
	if err != nil {
		t.Fatal(err)
	}
	back, err := image.Unmarshal(b)
	if err != nil || back.BrokerOverrides[2]["leader.replication.throttled.rate"] != "2000" || len(back.BrokerOverrides) != 2 {
		t.Errorf("snapshot round trip: %v, %v", err, back.BrokerOverrides)
	}
}
