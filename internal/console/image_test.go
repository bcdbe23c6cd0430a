package console

import (
	"reflect"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// testImage: brokers 1 (rack a), 2 (fenced) and 3; topic "t" of three
// partitions: 0 in sync, 1 with 2 out of the ISR, 2 offline; topic "u"
// of one partition being moved from 1 to 3 (3 being added).
func testImage() *image.Image {
	img := image.New()
	img.Index, img.ClusterID, img.ActiveController = 42, "cluster-x", 9
	img.Brokers[1] = &image.Broker{ID: 1, Host: "h1", Port: 9092, Rack: "a", Epoch: 5}
	img.Brokers[2] = &image.Broker{ID: 2, Host: "h2", Port: 9092, Epoch: 6, Fenced: true}
	img.Brokers[3] = &image.Broker{ID: 3, Host: "h3", Port: 9092, Epoch: 7}
	img.Topics["t"] = &image.Topic{Name: "t", Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1},
		{Partition: 1, Replicas: []int32{2, 3, 1}, ISR: []int32{3, 1}, Leader: 3},
		{Partition: 2, Replicas: []int32{3, 1, 2}, ISR: []int32{3}, Leader: -1},
	}}
	img.Topics["u"] = &image.Topic{Name: "u", Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{3, 1}, ISR: []int32{1}, Leader: 1, Adding: []int32{3}, Removing: []int32{1}},
	}}
	return img
}

func TestUnderReplicated(t *testing.T) {
	img := testImage()
	for _, tc := range []struct {
		p    *image.Partition
		want bool
	}{
		{img.Topics["t"].Partitions[0], false},
		{img.Topics["t"].Partitions[1], true},
		{img.Topics["t"].Partitions[2], true},
		{img.Topics["u"].Partitions[0], false}, // 3 is being added: not counted
	} {
		if got := underReplicated(tc.p); got != tc.want {
			t.Errorf("partition %+v: under-replicated %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestBrokerRowsAndCounts(t *testing.T) {
	img := testImage()
	rows := brokerRows(img, map[int32]bool{1: true, 2: true}) // 3 unreachable
	want := []BrokerRow{
		{ID: 1, Addr: "h1:9092", Rack: "a", Epoch: 5, Reachable: true, Alive: true, Leaders: 2, Replicas: 4},
		{ID: 2, Addr: "h2:9092", Epoch: 6, Fenced: true, Reachable: true, Leaders: 0, Replicas: 3},
		{ID: 3, Addr: "h3:9092", Epoch: 7, Leaders: 1, Replicas: 4},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("broker rows:\n got %+v\nwant %+v", rows, want)
	}
	c := counts(img, rows)
	if want := (Counts{Brokers: 3, AliveBrokers: 1, Topics: 2, Partitions: 4, UnderReplicated: 2, Offline: 1}); c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
}

func TestTopicAndPartitionRows(t *testing.T) {
	img := testImage()
	rows := topicRows(img)
	want := []TopicRow{
		{Name: "t", Partitions: 3, ReplicationFactor: 3, UnderReplicated: 2, Offline: 1, SizeBytes: -1},
		{Name: "u", Partitions: 1, ReplicationFactor: 1, SizeBytes: -1}, // moving 1 -> 3: one replica in the end
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("topic rows:\n got %+v\nwant %+v", rows, want)
	}
	parts := partitionRows(img.Topics["t"], map[int32]bool{1: true, 3: true})
	if len(parts) != 3 {
		t.Fatalf("%d partition rows", len(parts))
	}
	p1 := parts[1]
	if !p1.UnderReplicated || p1.Offline || !reflect.DeepEqual(p1.DeadReplicas, []int32{2}) || p1.LogEndOffset != -1 || p1.SizeBytes != -1 {
		t.Fatalf("partition 1: %+v", p1)
	}
	if !parts[2].Offline {
		t.Fatalf("partition 2 not offline: %+v", parts[2])
	}
}

func TestPartitionSizes(t *testing.T) {
	tp := testImage().Topics["t"]
	reported := map[int32]map[string]map[int32]int64{
		1: {"t": {0: 100, 1: 90, 2: 80}},
		3: {"t": {0: 101, 1: 95}},
	}
	got := partitionSizes(tp, reported)
	// 0: leader 1's 100; 1: leader 3's 95; 2: offline, largest reported (80).
	if want := map[int32]int64{0: 100, 1: 95, 2: 80}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sizes %v, want %v", got, want)
	}
	if s := topicSize(got); s != 275 {
		t.Fatalf("topic size %d, want 275", s)
	}
	if s := topicSize(nil); s != -1 {
		t.Fatalf("topic size of nothing %d, want -1", s)
	}
}

func TestFormatAssignment(t *testing.T) {
	got := FormatAssignment(map[string][]int32{"b": {2, 0}, "a": {1}})
	if got != "a[1] b[0,2]" {
		t.Fatalf("got %q", got)
	}
}
