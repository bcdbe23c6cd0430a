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
