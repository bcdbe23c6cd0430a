package partition

import (
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
	"github.com/skein-io/skein/storage/storagetest"
)

const testNode = 1

func newTestManager(t testing.TB) (*Manager, *storage.Manager) {
	t.Helper()
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := DefaultConfig(testNode)
	cfg.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, store
}

// testImage builds an image at index with the topics.
func testImage(index uint64, topics ...*image.Topic) *image.Image {
	img := image.New()
	img.Index = index
	for _, b := range []int32{1, 2, 3} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "127.0.0.1", Port: 9090 + b, Epoch: 1}
	}
	for _, t := range topics {
		img.Topics[t.Name] = t
	}
	return img
}

// testTopic builds a topic whose partitions all have the given leader and
// ISR; replicas = ISR plus the leader.
func testTopic(name string, id byte, partitions int, leader, epoch int32, isr []int32, configs map[string]string) *image.Topic {
	t := &image.Topic{Name: name, ID: [16]byte{id}, Configs: configs}
	replicas := append([]int32(nil), isr...)
	found := false
	for _, r := range replicas {
		found = found || r == leader
	}
	if !found && leader >= 0 {
		replicas = append(replicas, leader)
	}
	for i := range partitions {
		t.Partitions = append(t.Partitions, &image.Partition{
			Partition: int32(i), Replicas: replicas, ISR: isr, Leader: leader, LeaderEpoch: epoch, PartitionEpoch: epoch,
		})
	}
	return t
}

func batchOf(n, size int) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = make([]byte, size)
		recs[i][0] = byte(i)
	}
	return storagetest.MakeBatch(recs, -1, -1, -1)
}

func mustPartition(t testing.TB, m *Manager, topic string, part int32) *Partition {
	t.Helper()
	p, err := m.Partition(topic, part)
	if err != nil {
		t.Fatalf("partition %s-%d: %v", topic, part, err)
	}
	return p
}

// waitUntil polls cond with a deadline (for conditions with no signal to
// wait on, such as "a request is parked").
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
