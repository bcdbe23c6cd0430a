package storage_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/skein-io/skein/storage"
)

// TestGetOrCreateConcurrent creates logs from many goroutines at once:
// different partitions are all created, and concurrent calls for one
// partition get the same log; the logs survive a reopen with their topic
// ids.
func TestGetOrCreateConcurrent(t *testing.T) {
	dir := t.TempDir()
	m, err := storage.OpenManager(storage.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	const parts, callers = 40, 3
	got := make([][callers]*storage.Log, parts)
	var wg sync.WaitGroup
	for i := range parts {
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tp := storage.TopicPartition{Topic: "t", Partition: int32(i)}
				l, err := m.GetOrCreate(tp, [16]byte{byte(i + 1)}, storage.DefaultLogConfig())
				if err != nil {
					t.Error(err)
					return
				}
				got[i][c] = l
			}()
		}
	}
	wg.Wait()
	for i := range parts {
		for c := 1; c < callers; c++ {
			if got[i][c] != got[i][0] || got[i][0] == nil {
				t.Fatalf("partition %d: concurrent creations returned different logs", i)
			}
		}
	}
	if n := len(m.Logs()); n != parts {
		t.Fatalf("%d logs, want %d", n, parts)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = storage.OpenManager(storage.DefaultConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range parts {
		l := m.Get(storage.TopicPartition{Topic: "t", Partition: int32(i)})
		if l == nil || l.TopicID() != [16]byte{byte(i + 1)} {
			t.Fatalf("partition %d after reopen: %v", i, l)
		}
	}
}

// TestGetOrCreateDeleteAndCloseRace deletes logs while they are being
// created and closes the manager while creations are under way: nothing
// is left half registered, and every call returns.
func TestGetOrCreateDeleteAndCloseRace(t *testing.T) {
	m, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		tp := storage.TopicPartition{Topic: fmt.Sprintf("t%d", i), Partition: 0}
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = m.GetOrCreate(tp, [16]byte{1}, storage.DefaultLogConfig())
		}()
		go func() {
			defer wg.Done()
			if err := m.Delete(tp); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Whichever ran last wins; a second Delete leaves nothing.
	for i := range 20 {
		tp := storage.TopicPartition{Topic: fmt.Sprintf("t%d", i), Partition: 0}
		if err := m.Delete(tp); err != nil {
			t.Fatal(err)
		}
		if m.Get(tp) != nil {
			t.Fatalf("%v still open after Delete", tp)
		}
	}
	if entries, err := os.ReadDir(m.Dir()); err != nil {
		t.Fatal(err)
	} else {
		for _, e := range entries {
			if e.IsDir() {
				t.Fatalf("log directory %s left after every log was deleted", e.Name())
			}
		}
	}
	for i := range 20 {
		tp := storage.TopicPartition{Topic: fmt.Sprintf("u%d", i), Partition: 0}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.GetOrCreate(tp, [16]byte{1}, storage.DefaultLogConfig()); err != nil && err != storage.ErrClosed {
				t.Error(err)
			}
		}()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := m.GetOrCreate(storage.TopicPartition{Topic: "late"}, [16]byte{1}, storage.DefaultLogConfig()); err != storage.ErrClosed {
		t.Fatalf("GetOrCreate after Close: %v", err)
	}
}
