package partition

import (
	"fmt"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// BenchmarkApplyImage measures applying the metadata image of a broker
// that hosts 3,000 partitions (30 topics of 100, RF 3, it leads them all):
// "create" is the first image (every log created, one by one: that is
// what a new topic costs), "reopen" is the first image of a restarted
// broker whose storage already opened the logs, and "unchanged" is any
// later image that changes nothing here (today every metadata change
// ships the whole image, so this is the floor cost per change).
//
//	go test -run '^$' -bench BenchmarkApplyImage -benchtime 3x ./dataplane/partition/
func BenchmarkApplyImage(b *testing.B) {
	const topics, perTopic = 30, 100
	build := func(index uint64) *image.Image {
		var ts []*image.Topic
		for i := range topics {
			ts = append(ts, testTopic(fmt.Sprintf("t%02d", i), byte(i+1), perTopic, testNode, 1, []int32{1, 2, 3}, nil))
		}
		return testImage(index, ts...)
	}
	newManager := func(b *testing.B, store *storage.Manager) *Manager {
		cfg := DefaultConfig(testNode)
		cfg.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
		m, err := New(cfg, store)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	dir := b.TempDir()
	var img *image.Image
	b.Run("create", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			d := dir
			if i > 0 {
				d = b.TempDir()
			}
			store, err := storage.OpenManager(storage.DefaultConfig(d))
			if err != nil {
				b.Fatal(err)
			}
			m := newManager(b, store)
			img = build(1)
			b.StartTimer()
			m.ApplyImage(img)
			b.StopTimer()
			if got := len(m.Partitions()); got != topics*perTopic {
				b.Fatalf("%d partitions hosted", got)
			}
			_ = m.Close()
			_ = store.Close()
			b.StartTimer()
		}
	})
	store, err := storage.OpenManager(storage.DefaultConfig(dir))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	b.Run("reopen", func(b *testing.B) {
		for range b.N {
			m := newManager(b, store)
			m.ApplyImage(img)
			b.StopTimer()
			if got := len(m.Partitions()); got != topics*perTopic {
				b.Fatalf("%d partitions hosted", got)
			}
			_ = m.Close()
			b.StartTimer()
		}
	})
	m := newManager(b, store)
	defer m.Close()
	m.ApplyImage(img)
	b.Run("unchanged", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			next := build(uint64(2 + i))
			b.StartTimer()
			m.ApplyImage(next)
		}
	})
}

// scaleImage is a cluster of topics×perTopic partitions, RF 3 on brokers
// 1-3 (this broker's) for even topics when split, else for all; the other
// topics on brokers 4-6. Leaders are spread over the replicas, so this
// broker leads a third of what it hosts and follows the rest.
func scaleImage(topics, perTopic int, split bool) *image.Image {
	img := testImage(1)
	for _, b := range []int32{4, 5, 6} {
		img.Brokers[b] = &image.Broker{ID: b, Host: "127.0.0.1", Port: 9090 + b, Epoch: 1}
	}
	for i := range topics {
		t := &image.Topic{Name: fmt.Sprintf("t%04d", i), ID: [16]byte{byte(i >> 8), byte(i), 1}}
		first := int32(1)
		if split && i%2 == 1 {
			first = 4
		}
		replicas := []int32{first, first + 1, first + 2}
		for j := range perTopic {
			t.Partitions = append(t.Partitions, &image.Partition{Partition: int32(j), Replicas: replicas,
				ISR: replicas, Leader: replicas[(i+j)%3], LeaderEpoch: 1, PartitionEpoch: 1})
		}
		img.Topics[t.Name] = t
	}
	return img
}

func newBenchManager(b *testing.B) *Manager {
	store, err := storage.OpenManager(storage.DefaultConfig(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	cfg := DefaultConfig(testNode)
	cfg.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	cfg.OnFollowers = func(FollowerChanges) {}
	m, err := New(cfg, store)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	m.SetOnLeaders("t0000", func(*image.Image, []*Partition) {})
	return m
}

// BenchmarkApplyImageAddTopic measures the image that creates a topic of
// 100 partitions (RF 3, this broker hosts them all) on a broker hosting
// 10,000 (100 topics of 100): the cost of a CreateTopics on every broker.
//
//	go test -run '^$' -bench BenchmarkApplyImageAddTopic -benchtime 5x ./dataplane/partition/
func BenchmarkApplyImageAddTopic(b *testing.B) {
	m := newBenchManager(b)
	img := scaleImage(100, 100, false)
	m.ApplyImage(img)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		next := editImage(img).put(testTopic(fmt.Sprintf("new%04d", i), byte(i), 100, 2, 1, []int32{1, 2, 3}, nil)).img
		b.StartTimer()
		m.ApplyImage(next)
		img = next
	}
	b.StopTimer()
	if got, want := len(m.Partitions()), 10_000+100*b.N; got != want {
		b.Fatalf("%d partitions hosted, want %d", got, want)
	}
}

// BenchmarkApplyImageISRChange measures the image that changes one
// partition's ISR in a cluster of 30,000 partitions (300 topics of 100, RF
// 3 on 6 brokers: this broker hosts 15,000, which fits the 20,000 open
// files of the test machines), every other topic and partition shared with
// the previous image as the controller publishes them: the floor cost of
// a metadata change at scale.
//
//	go test -run '^$' -bench BenchmarkApplyImageISRChange ./dataplane/partition/
func BenchmarkApplyImageISRChange(b *testing.B) {
	m := newBenchManager(b)
	img := scaleImage(300, 100, true)
	m.ApplyImage(img)
	isrs := [][]int32{{1, 2}, {1, 2, 3}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		next := editImage(img).partition("t0150", 0, func(p *image.Partition) {
			p.ISR = isrs[i%2]
			p.PartitionEpoch++
		}).img
		m.ApplyImage(next)
		img = next
	}
}
