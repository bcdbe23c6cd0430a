package controller

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// fsm is the Raft state machine: the metadata image as of the last applied
// entry, and the window of recent deltas served to brokers.
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

// published is one image, the deltas that lead to it, and a channel closed
// when a newer one replaces it.
type published struct {
	img     *image.Image
	window  deltaWindow
	changed chan struct{}
}

// The delta window keeps the outcome of at most maxWindowDeltas recent
// entries and at most maxWindowBytes of encoded deltas, whichever is less:
// enough for a broker that missed a few seconds of changes, even a burst
// (a broker fenced with thousands of partitions is one entry), to catch up
// by deltas; one further behind loads a snapshot, which costs about what
// that many deltas would. The memory held is at most about twice these
// (deltas dropped but still referenced from the backing array; see push).
const (
	maxWindowDeltas = 4096
	maxWindowBytes  = 32 << 20
)

// deltaWindow is the chain of the latest applied entries' deltas, oldest
// first: deltas[0] applies onto the image at start, each next one onto the
// one before, and the last one gives the published image. A window is
// immutable once published: the FSM goroutine only appends beyond the end
// of every published window (in the shared backing array, which readers
// never read past their own length) and drops from the front by
// reslicing.
type deltaWindow struct {
	start  uint64
	deltas []windowDelta
	bytes  int // of the deltas' batches
	// dropped is the size of the batches dropped from the front since the
	// window last moved to a new backing array: the array still references
	// them (they cannot be cleared: an older window may be being read).
	dropped int
}

// windowDelta is the delta of the entry at index, encoded
// (metalog.EncodeDelta).
type windowDelta struct {
	index uint64
	batch []byte
}

// push returns the window with d appended, the oldest deltas dropped to
// keep the bounds (always keeping d). Once the dropped batches still
// referenced from the backing array pass maxWindowBytes, the window moves
// to a new array, so that they can be collected.
func (w deltaWindow) push(d windowDelta) deltaWindow {
	w.deltas = append(w.deltas, d)
	w.bytes += len(d.batch)
	for len(w.deltas) > maxWindowDeltas || (w.bytes > maxWindowBytes && len(w.deltas) > 1) {
		w.start = w.deltas[0].index
		w.bytes -= len(w.deltas[0].batch)
		w.dropped += len(w.deltas[0].batch)
		w.deltas = w.deltas[1:]
	}
	if w.dropped > maxWindowBytes {
		w.deltas = slices.Clone(w.deltas)
		w.dropped = 0
	}
	return w
}

// after returns the encoded deltas following the image at index: the whole
// window when index is its start, those after the delta at index when that
// delta is in it; false when index is not on the chain. It stops before
// the total passes maxBytes, but returns at least one delta.
func (w deltaWindow) after(index uint64, maxBytes int) ([]byte, bool) {
	from := 0
	if index != w.start {
		i, ok := slices.BinarySearchFunc(w.deltas, index, func(d windowDelta, x uint64) int { return cmp.Compare(d.index, x) })
		if !ok {
			return nil, false
		}
		from = i + 1
	}
	var out []byte
	for _, d := range w.deltas[from:] {
		if len(out) > 0 && len(out)+len(d.batch) > maxBytes {
			break
		}
		out = append(out, d.batch...)
	}
	return out, true
}

func newFSM(log hclog.Logger) *fsm {
	f := &fsm{log: log}
	f.state.Store(&published{img: image.New(), changed: make(chan struct{})})
	return f
}

// current returns the latest image. Never modify it.
func (f *fsm) current() *image.Image { return f.state.Load().img }

// waitAbove returns the first state whose image has Index > index, or the
// latest state and ctx's error when ctx ends first.
func (f *fsm) waitAbove(ctx context.Context, index uint64) (*published, error) {
	for {
		st := f.state.Load()
		if st.img.Index > index {
			return st, nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return f.state.Load(), ctx.Err()
		}
	}
}

// publish replaces the state: img with window w.
func (f *fsm) publish(img *image.Image, w deltaWindow) {
	old := f.state.Swap(&published{img: img, window: w, changed: make(chan struct{})})
	close(old.changed)
}

// publishApplied publishes next, the image after the entry at next.Index,
// whose applied changes are changes (nil when the entry was discarded),
// with its delta appended to the window.
func (f *fsm) publishApplied(cur *published, next *image.Image, changes []metalog.Change) {
	batch, err := metalog.EncodeDelta(cur.img, next.Index, changes, time.Now().UnixMilli())
	if err != nil {
		// Cannot happen (indexes grow, records encode): the window starts
		// over at next, so brokers behind it load a snapshot.
		f.log.Error("cannot encode metadata delta; brokers behind will load a snapshot", "index", next.Index, "error", err)
		f.publish(next, deltaWindow{start: next.Index})
		return
	}
	f.publish(next, cur.window.push(windowDelta{index: next.Index, batch: batch}))
}

// Apply applies one committed entry. It returns nil, or the error that made
// it discard the entry (the leader's proposer sees it in ApplyFuture.Response).
// An entry decided in another term than the log entry's is discarded whole
// (errStaleTerm), as is an undecodable or invalid one.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	cur := f.state.Load()
	e, err := decodeEntry(l.Data)
	if err != nil {
		next := *cur.img
		next.Index = l.Index
		f.publishApplied(cur, &next, nil)
		f.log.Error("discarded undecodable raft entry", "index", l.Index, "error", err)
		return err
	}
	if e.Term != 0 && e.Term != l.Term {
		next := *cur.img
		next.Index = l.Index
		f.publishApplied(cur, &next, nil)
		err := fmt.Errorf("entry %d decided in term %d, written in term %d: %w", l.Index, e.Term, l.Term, errStaleTerm)
		f.log.Warn("discarded raft entry of another controller term", "index", l.Index,
			"decided_term", e.Term, "term", l.Term)
		return err
	}
	next, err := applyEntry(cur.img, l.Index, e)
	if err != nil {
		f.publishApplied(cur, next, nil)
		f.log.Error("discarded invalid raft entry", "index", l.Index, "error", err)
		return err
	}
	f.publishApplied(cur, next, e.Records)
	return nil
}

// Snapshot captures the current image; Persist serializes it as JSON.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{img: f.current()}, nil
}

// Restore replaces the image with a snapshot's; the delta window starts
// over from it.
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
	f.publish(img, deltaWindow{start: img.Index})
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
