package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

func TestApplyImageAssignmentsAndDeletion(t *testing.T) {
	m, store := newTestManager(t)
	mine := testTopic("mine", 1, 2, testNode, 0, []int32{testNode}, nil)
	elsewhere := testTopic("elsewhere", 2, 1, 2, 0, []int32{2}, nil)
	followed := testTopic("followed", 3, 1, 2, 0, []int32{2, testNode}, nil)
	m.ApplyImage(testImage(1, mine, elsewhere, followed))

	for _, tp := range []storage.TopicPartition{{Topic: "mine", Partition: 0}, {Topic: "mine", Partition: 1}, {Topic: "followed", Partition: 0}} {
		if store.Get(tp) == nil {
			t.Fatalf("no log for %v", tp)
		}
	}
	if store.Get(storage.TopicPartition{Topic: "elsewhere"}) != nil {
		t.Fatal("log created for a partition not assigned here")
	}
	if _, err := m.Partition("elsewhere", 0); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("partition led elsewhere: %v", err)
	}
	if _, err := m.Partition("nope", 0); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	if _, err := m.Partition("mine", 2); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
	if p := mustPartition(t, m, "followed", 0); p.State().Role != RoleFollower {
		t.Fatalf("followed partition role %v", p.State().Role)
	}
	if m.Image().Index != 1 {
		t.Fatal("Image() is not the applied image")
	}

	// The topic is deleted; the follower replica is moved away.
	followed2 := testTopic("followed", 3, 1, 2, 0, []int32{2, 3}, nil)
	m.ApplyImage(testImage(2, elsewhere, followed2))
	if store.Get(storage.TopicPartition{Topic: "mine"}) != nil || store.Get(storage.TopicPartition{Topic: "followed"}) != nil {
		t.Fatal("logs of a deleted topic / moved replica still open")
	}
	if _, err := m.Partition("mine", 0); !errors.Is(err, ErrUnknownTopicOrPartition) {
		t.Fatalf("deleted topic: %v", err)
	}
}

func TestApplyImageKeepsLogsUntilMetadataArrives(t *testing.T) {
	m, store := newTestManager(t)
	tp := storage.TopicPartition{Topic: "old", Partition: 0}
	if _, err := store.GetOrCreate(tp, [16]byte{9}, storage.DefaultLogConfig()); err != nil {
		t.Fatal(err)
	}
	// A stray log the image never mentions.
	stray := storage.TopicPartition{Topic: "stray", Partition: 3}
	if _, err := store.GetOrCreate(stray, [16]byte{5}, storage.DefaultLogConfig()); err != nil {
		t.Fatal(err)
	}
	m.ApplyImage(image.New()) // index 0: nothing known yet
	if store.Get(tp) == nil || store.Get(stray) == nil {
		t.Fatal("log deleted by an empty image")
	}
	m.ApplyImage(testImage(7, testTopic("old", 9, 1, testNode, 0, []int32{testNode}, nil)))
	if store.Get(tp) == nil {
		t.Fatal("log of an assigned partition deleted")
	}
	// It goes with the first real image.
	if store.Get(stray) != nil {
		t.Fatal("stray log kept")
	}
	m.ApplyImage(testImage(8))
	if store.Get(tp) != nil {
		t.Fatal("log of a deleted topic kept")
	}
}

func TestApplyImageTopicRecreated(t *testing.T) {
	m, store := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 0, []int32{testNode}, nil)))
	old := mustPartition(t, m, "t", 0)
	if _, err := old.AppendAsLeader(batchOf(3, 10), 1); err != nil {
		t.Fatal(err)
	}
	m.ApplyImage(testImage(2, testTopic("t", 2, 1, testNode, 0, []int32{testNode}, nil)))
	p := mustPartition(t, m, "t", 0)
	if p == old || p.TopicID() != [16]byte{2} {
		t.Fatal("re-created topic kept the old partition")
	}
	l := store.Get(storage.TopicPartition{Topic: "t"})
	if l == nil || l.TopicID() != [16]byte{2} || l.LogEndOffset() != 0 {
		t.Fatal("re-created topic did not get a fresh log")
	}
	if _, err := old.AppendAsLeader(batchOf(1, 10), 1); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("old partition still accepts produce: %v", err)
	}
}

func TestTopicConfigs(t *testing.T) {
	img := testImage(1)
	img.BrokerConfigs["log.retention.ms"] = "1000"
	tp := &image.Topic{Name: "t", Configs: map[string]string{
		"segment.bytes": "1048576", "retention.ms": "-1", "max.message.bytes": "5000",
		"min.insync.replicas": "2", "message.timestamp.type": "LogAppendTime",
	}}
	lc, s, err := TopicConfigs(img, tp)
	if err != nil {
		t.Fatal(err)
	}
	if lc.SegmentBytes != 1<<20 || lc.RetentionTime >= 0 || lc.MaxMessageBytes != 5000 || lc.FlushInterval <= 0 || lc.SegmentAge != 7*24*time.Hour {
		t.Fatalf("log config %+v", lc)
	}
	if s.MinInsyncReplicas != 2 || !s.LogAppendTime || s.MaxMessageBytes != 5000 {
		t.Fatalf("settings %+v", s)
	}
	lc, s, err = TopicConfigs(img, &image.Topic{Name: "u", Configs: map[string]string{"segment.ms": "x"}})
	if err == nil || lc.SegmentAge != 7*24*time.Hour {
		t.Fatalf("bad value: err %v segment.ms %v", err, lc.SegmentAge)
	}
	if lc.RetentionTime != time.Second || s.MinInsyncReplicas != 1 || s.LogAppendTime {
		t.Fatalf("broker default not used: %+v %+v", lc, s)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig(1).Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig(-1)
	if c.Validate() == nil {
		t.Fatal("negative node id accepted")
	}
	c = DefaultConfig(1)
	c.Logger = nil
	if c.Validate() == nil {
		t.Fatal("nil logger accepted")
	}
}
