package controller

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// TestSnapshotThreshold: with SnapshotThreshold 2 and a short
// SnapshotInterval the controller snapshots on its own once enough entries
// follow the last snapshot (hashicorp/raft's defaults would wait for 8192
// entries and 2-4 minutes).
func TestSnapshotThreshold(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotThreshold, cfg.SnapshotInterval = 2, 20*time.Millisecond
	ctl := startController(t, cfg)
	cl := startClient(t, ctl, 1)
	// RF 1 needs an unfenced broker: a creation before the unfencing is
	// refused (INVALID_REPLICATION_FACTOR).
	waitImage(t, ctl, "broker unfenced", func(img *image.Image) bool { b := img.Brokers[1]; return b != nil && !b.Fenced })
	for i := range 4 {
		forward[*kmsg.CreateTopicsResponse](t, cl, createTopic(fmt.Sprintf("t%d", i), 1, 1))
	}
	waitImage(t, ctl, "topics created", func(img *image.Image) bool { return len(img.Topics) == 4 })
	store, err := raft.NewFileSnapshotStore(filepath.Join(cfg.DataDir, "raft"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		snaps, err := store.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) > 0 && snaps[0].Index >= 4 {
			t.Logf("snapshot at index %d, %d bytes", snaps[0].Index, snaps[0].Size)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot at index >= 4 within 20s (snapshots %v)", snaps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
