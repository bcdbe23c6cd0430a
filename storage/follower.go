package storage

// This file holds the log operations only a follower replica needs: reading
// the leader epoch history (to answer and check divergence, KIP-279) and
// restarting an empty log at the leader's log start offset.

// EpochHistory returns a copy of the log's leader epoch cache, oldest
// first: each entry says the leader of Epoch appended its first record at
// StartOffset.
func (l *Log) EpochHistory() []EpochEntry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]EpochEntry(nil), l.mu.epochs.entries...)
}

// TruncateFullyAndStartAt removes every batch and makes the log empty,
// starting at offset (log start = log end = offset). A follower whose log
// ends below the leader's log start offset (retention deleted what it still
// needed) restarts this way. offset must be > the log end offset; otherwise
// use Truncate.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if offset <= l.leo.Load() {
		return ErrOffsetOutOfRange
	}
	// The old segments are renamed away first: a crash after creating
	// the new one must not leave them in front of it.
	err := l.dropSegments(l.mu.segs)
	l.mu.segs = nil
	if err != nil {
		return l.failed("truncate fully", err)
	}
	ns, err := createSegment(l.dir, offset, l.now())
	if err != nil {
		return l.failed("truncate fully", err)
	}
	l.mu.segs = []*segment{ns}
	l.mu.gen++
	l.mu.cleanedTo = offset
	if err := l.setLogStartLocked(offset); err != nil {
		return l.failed("truncate fully", err)
	}
	l.leo.Store(offset)
	l.mu.recoveryPoint = offset
	l.mu.unflushed = 0
	if err := l.mu.epochs.truncateFromEnd(-1 << 62); err != nil {
		return err
	}
	if err := dropProducerSnapshotAbove(l.dir, -1); err != nil {
		return l.failed("truncate fully", err)
	}
	l.mu.producers = producerState{}
	l.resetTxns()
	l.assertInvariants("truncate fully")
	l.logger.Info("log truncated fully", "topic", l.tp.Topic, "partition", l.tp.Partition, "log_start_offset", offset)
	return nil
}
