package controller

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skein-io/skein/controller/image"
)

// fsm is the Raft state machine: the metadata image as of the last applied
// entry.
//
// Threading contract: raft calls Apply, Snapshot and Restore from its one FSM
// goroutine, never at once; FSMSnapshot.Persist runs on another goroutine
// while Apply goes on, which is safe because images are immutable. Readers
// (handlers, long polls) call current and waitAbove from any goroutine.
type fsm struct {
	log hclog.Logger
	// state is replaced, never modified, on every apply and restore.
	state atomic.Pointer[published]
}

// published is one image and a channel closed when a newer one replaces it.
type published struct {
	img     *image.Image
	changed chan struct{}
}

func newFSM(log hclog.Logger) *fsm {
	f := &fsm{log: log}
	f.state.Store(&published{img: image.New(), changed: make(chan struct{})})
	return f
}

// current returns the latest image. Never modify it.
func (f *fsm) current() *image.Image { return f.state.Load().img }

// waitAbove returns the first image with Index > index, or the latest image
// and ctx's error when ctx ends first.
func (f *fsm) waitAbove(ctx context.Context, index uint64) (*image.Image, error) {
	for {
		st := f.state.Load()
		if st.img.Index > index {
			return st.img, nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return f.current(), ctx.Err()
		}
	}
}

func (f *fsm) publish(img *image.Image) {
	old := f.state.Swap(&published{img: img, changed: make(chan struct{})})
	close(old.changed)
}

// Apply applies one committed entry. It returns nil, or the error that made
// it discard the entry (the leader's proposer sees it in ApplyFuture.Response).
// An entry decided in another term than the log entry's is discarded whole
// (errStaleTerm), as is an undecodable or invalid one.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	cur := f.current()
	e, err := decodeEntry(l.Data)
	if err != nil {
		next := *cur
		next.Index = l.Index
		f.publish(&next)
		f.log.Error("discarded undecodable raft entry", "index", l.Index, "error", err)
		return err
	}
	if e.Term != 0 && e.Term != l.Term {
		next := *cur
		next.Index = l.Index
		f.publish(&next)
		err := fmt.Errorf("entry %d decided in term %d, written in term %d: %w", l.Index, e.Term, l.Term, errStaleTerm)
		f.log.Warn("discarded raft entry of another controller term", "index", l.Index,
			"decided_term", e.Term, "term", l.Term)
		return err
	}
	next, err := applyEntry(cur, l.Index, e)
	f.publish(next)
	if err != nil {
		f.log.Error("discarded invalid raft entry", "index", l.Index, "error", err)
		return err
	}
	return nil
}

// Snapshot captures the current image; Persist serializes it as JSON.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{img: f.current()}, nil
}

// Restore replaces the image with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	img, err := image.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	img.ActiveController = -1
	f.publish(img)
	f.log.Info("restored metadata snapshot", "index", img.Index, "topics", len(img.Topics), "brokers", len(img.Brokers))
	return nil
}

type imageSnapshot struct{ img *image.Image }

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := image.Marshal(s.img)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}
