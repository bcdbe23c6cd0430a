package storage

import "fmt"

// Checks of the log's invariants on the real path, compiled in only with
// the invariants build tag (the const is false otherwise and the calls
// vanish). A violation is a bug in storage, never bad input, so it
// panics.

// assertInvariants checks the segment list after a mutation: segments
// sorted by base and not overlapping, the log start offset <= the log
// end offset, the log end the active
// segment's end, and the recovery point <= the log end. The log start
// is the first segment's base, or inside the first segment with its
// logStartFile written (log_start.go). Called with l.mu
// held.
func (l *Log) assertInvariants(op string) {
	if !invariants || l.mu.closed {
		return
	}
	lso, leo := l.lso.Load(), l.leo.Load()
	if len(l.mu.segs) == 0 {
		panic(fmt.Sprintf("storage invariant (%s, %s-%d): no segments", op, l.tp.Topic, l.tp.Partition))
	}
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("storage invariant (%s, %s-%d): ", op, l.tp.Topic, l.tp.Partition) + fmt.Sprintf(format, args...))
	}
	if lso < l.mu.segs[0].base || lso > leo || lso > l.mu.segs[0].base && !l.mu.startFile {
		fail("log start %d, first segment base %d, log end %d", lso, l.mu.segs[0].base, leo)
	}
	if leo != l.active().next {
		fail("log end %d, active segment ends at %d", leo, l.active().next)
	}
	if l.mu.recoveryPoint > leo {
		fail("recovery point %d past the log end %d", l.mu.recoveryPoint, leo)
	}
	for i, s := range l.mu.segs {
		if s.next < s.base || s.size < 0 || s.deleted {
			fail("segment %d: next %d, size %d, deleted %v", s.base, s.next, s.size, s.deleted)
		}
		if i > 0 && (s.base <= l.mu.segs[i-1].base || s.base < l.mu.segs[i-1].next) {
			fail("segment %d overlaps or precedes segment %d (ending at %d)", s.base, l.mu.segs[i-1].base, l.mu.segs[i-1].next)
		}
	}
}

// assertAppended checks a batch written at the log end: its base offset
// is the previous end (contiguous), or above it when the log may have
// offset gaps.
func (l *Log) assertAppended(h BatchHeader, prevEnd int64, gapsOK bool) {
	if !invariants {
		return
	}
	if h.BaseOffset == prevEnd || gapsOK && h.BaseOffset > prevEnd {
		return
	}
	panic(fmt.Sprintf("storage invariant (append, %s-%d): batch at offset %d after log end %d (gaps allowed: %v)",
		l.tp.Topic, l.tp.Partition, h.BaseOffset, prevEnd, gapsOK))
}
