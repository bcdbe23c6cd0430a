package workload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Type is the kind of an event.
type Type string

// The event types; see the package comment.
const (
	Start  Type = "start"
	Invoke Type = "invoke"
	OK     Type = "ok"
	Info   Type = "info"
	Assign Type = "assign"
	Revoke Type = "revoke"
	Poll   Type = "poll"
	End    Type = "end"
)

// FinalReader is the process whose reads are the log as read at the end.
const FinalReader = "final"

// NoOffset is the offset of events that have none (invoke, info) and, in
// an assign event, "from the group's committed offset".
const NoOffset = -1

// Record is one record a poll returned.
type Record struct {
	Offset int64  `json:"offset"`
	Value  string `json:"value"`
}

// Event is one line of a history. Which fields mean something depends on
// Type; the others are zero (Partition and Offset are -1 where they mean
// nothing, so a real partition 0 or offset 0 is never mistaken for one).
type Event struct {
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	// Process is the producer or consumer: p0, c1, g0, final.
	Process string `json:"process,omitempty"`
	// Group is the consumer group of a group member (assign events).
	Group string `json:"group,omitempty"`
	// Topic is set on the start event.
	Topic string `json:"topic,omitempty"`
	// Partition of invoke, ok, info and poll events.
	Partition int32 `json:"partition"`
	// Offset of an ok event: where the record was acknowledged.
	Offset int64 `json:"offset"`
	// Value of invoke, ok and info events.
	Value string `json:"value,omitempty"`
	// Error of an info event: why the outcome is unknown.
	Error string `json:"error,omitempty"`
	// Records of a poll event, in the order the poll returned them.
	Records []Record `json:"records,omitempty"`
	// Offsets per partition: start offsets (start), high watermarks (end),
	// where reading starts (assign; NoOffset: the group's committed
	// offset), or the partitions revoked (revoke; values unused).
	Offsets map[int32]int64 `json:"offsets,omitempty"`
}

// Recorder appends events to a history in memory and, as JSON lines, to a
// writer. Safe for concurrent use; the order of Add calls is the order of
// the history.
type Recorder struct {
	mu struct {
		sync.Mutex
		events []Event
		out    *bufio.Writer
		enc    *json.Encoder
		err    error // the first write error
	}
}

// NewRecorder returns a recorder writing to w (nil: memory only).
func NewRecorder(w io.Writer) *Recorder {
	r := &Recorder{}
	if w != nil {
		r.mu.out = bufio.NewWriter(w)
		r.mu.enc = json.NewEncoder(r.mu.out)
	}
	return r
}

// Add appends e, stamping its time if it has none.
func (r *Recorder) Add(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.events = append(r.mu.events, e)
	if r.mu.enc != nil && r.mu.err == nil {
		r.mu.err = r.mu.enc.Encode(e)
	}
}

// Flush writes out buffered lines and returns the first write error.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.out != nil && r.mu.err == nil {
		r.mu.err = r.mu.out.Flush()
	}
	return r.mu.err
}

// Events returns the history so far, without copying it (a history is
// large): the caller must not modify the events. Later Adds do not change
// what it returned.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.events[:len(r.mu.events):len(r.mu.events)]
}

// ReadHistory parses a history written by a Recorder.
func ReadHistory(rd io.Reader) ([]Event, error) {
	dec := json.NewDecoder(rd)
	var events []Event
	for {
		var e Event
		err := dec.Decode(&e)
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("history event %d: %w", len(events)+1, err)
		}
		events = append(events, e)
	}
}
