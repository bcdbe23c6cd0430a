package partition

import (
	"context"
	"time"
)

// Event is a kind of partition state change; a waiter names the kinds
// that can satisfy it and sleeps through the others.
type Event uint8

const (
	// EventAppend: the log end moved (records appended). What a
	// follower's fetch waits for: followers read up to the log end.
	EventAppend Event = 1 << iota
	// EventHighWatermark: the high watermark moved. What an acks=all
	// produce and a consumer's fetch (which reads up to it) wait for.
	EventHighWatermark
	// EventOther: anything else (role, leader epoch, ISR change,
	// truncation, close). It wakes every waiter.
	EventOther
	// EventLogStart: the log start moved by DeleteRecords on a leader,
	// or a follower reported a new log start to its leader: what a
	// DeleteRecords waiting for the low watermark waits for, and a
	// follower's parked fetch in a session (it answers at once when the
	// leader's start moved, so the follower takes it and reports it).
	EventLogStart

	// WakeFollowerFetch and WakeConsumerFetch are what a fetch from a
	// follower replica and from a consumer wait for.
	WakeFollowerFetch = EventAppend | EventLogStart | EventOther
	WakeConsumerFetch = EventHighWatermark | EventOther
	// WakeProduce is what an acks=all produce waits for.
	WakeProduce = EventHighWatermark | EventOther
	// WakeDeleteRecords is what a DeleteRecords waits for.
	WakeDeleteRecords = EventLogStart | EventOther
)

// Waiter is one request parked in the purgatory of one or more partitions
// (an acks=all produce waiting for the high watermark, a fetch waiting for
// MinBytes). A state change of a watched partition of a kind the waiter
// asked for (Event) wakes it; the caller then re-checks its condition. A
// wake-up that arrives between the check and Wait is kept (the channel
// holds one pending signal), so none is lost.
//
// A Waiter belongs to one goroutine; Close it when done.
type Waiter struct {
	ch      chan struct{}
	on      Event
	watched []*Partition
}

// NewWaiter returns a waiter watching nothing yet, woken by the changes
// in on (EventOther is always included).
func NewWaiter(on Event) *Waiter {
	return &Waiter{ch: make(chan struct{}, 1), on: on | EventOther}
}

// Watch adds p to the partitions whose changes wake the waiter.
func (w *Waiter) Watch(p *Partition) {
	p.mu.Lock()
	p.mu.waiters[w.ch] = w.on
	p.mu.Unlock()
	w.watched = append(w.watched, p)
}

// Wait blocks until a watched partition changes (true), or the deadline
// passes or ctx ends (false). A zero deadline means only ctx bounds it.
func (w *Waiter) Wait(ctx context.Context, deadline time.Time) bool {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ch:
		return true
	case <-timeout:
		return false
	case <-ctx.Done():
		return false
	}
}

// Close stops watching every partition. Idempotent.
func (w *Waiter) Close() {
	for _, p := range w.watched {
		p.mu.Lock()
		delete(p.mu.waiters, w.ch)
		p.mu.Unlock()
	}
	w.watched = nil
}

// notifyLocked wakes the waiters of p that wait for a change of kind ev
// and counts the change (Changes). Caller holds p.mu.
func (p *Partition) notifyLocked(ev Event) {
	p.changes.Add(1)
	for ch, on := range p.mu.waiters {
		if on&ev == 0 {
			continue
		}
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// Waiting is the number of requests parked on p, plus the fetch sessions
// watching it (AddWaker), for metrics and tests.
func (p *Partition) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.waiters)
}

// Changes counts the partition's state changes (every append, truncation,
// high watermark advance, ISR or role change, close: whatever wakes a
// Waiter). A reader that saw the same count before and after a read knows
// nothing it depends on moved in between; a fetch session skips re-reading
// a partition whose count has not moved since its last read.
func (p *Partition) Changes() uint64 { return p.changes.Load() }

// AddWaker registers ch to get a signal (non-blocking send) on every state
// change of p of a kind in on (EventOther always) until RemoveWaker: a
// fetch session parks on one channel for all its partitions, registered
// once rather than on every fetch. ch should have a buffer of 1.
func (p *Partition) AddWaker(ch chan struct{}, on Event) {
	p.mu.Lock()
	p.mu.waiters[ch] = on | EventOther
	p.mu.Unlock()
}

// RemoveWaker undoes AddWaker. Idempotent.
func (p *Partition) RemoveWaker(ch chan struct{}) {
	p.mu.Lock()
	delete(p.mu.waiters, ch)
	p.mu.Unlock()
}
