// Package storage is a broker's partition logs on disk, in Kafka's layout:
// segments of v2 record batches with sparse indexes, leader-epoch and
// offset checkpoints, idempotent-producer state, retention, compaction
// (the cleaner) and recovery after an unclean stop. It knows nothing of
// Kafka requests or replication; dataplane drives it.
//
// # On-disk layout
//
//	<data-dir>/
//	    .lock                               flock'ed while a Manager has the directory open
//	    .kafka_cleanshutdown                present only after a clean Close (consumed on open)
//	    recovery-point-offset-checkpoint    per log: everything below was fsynced
//	    cleaner-offset-checkpoint           per compacted log: cleaned up to
//	    <topic>-<partition>/                one log
//	        00000000000000000000.log        batches, exactly as replicated; named by base offset
//	        00000000000000000000.index      sparse: relative offset -> file position
//	        00000000000000000000.timeindex  sparse: largest timestamp -> relative offset
//	        00000000000000000000.txnindex   aborted transactions whose marker is in the segment
//	                                        (absent when none; txn.go)
//	        00000000000000000368.log ...    later segments; the last is the active one
//	        <base>.log.deleted (.index.deleted, .timeindex.deleted)
//	                                        removed from the log, awaiting the delayed delete;
//	                                        never loaded, removed on open
//	        <base>.log.cleaned              cleaner output being written (discarded on open)
//	        <base>.log.swap                 complete cleaner output (replaces <base>.log on open)
//	        leader-epoch-checkpoint         leader epoch -> first offset
//	        producer-state.snapshot         idempotent producers as of an offset
//	        partition.metadata              topic id
//	        offset-gaps                     the log may have offset gaps (compacted)
//	    <topic>-<partition>.<uuid>-delete/  a deleted log (renamed, then removed)
//
// # Formats
//
// Segment files hold v2 record batches back to back (batch.go draws the
// header). Index entries are big-endian: .index 8 bytes (relative offset
// int32, position int32), .timeindex 12 bytes (timestamp int64, relative
// offset int32), .txnindex 34 bytes (Kafka's AbortedTxn: version int16 0,
// producer id, first offset, last offset, last stable offset, int64 each).
// Index files are a cache: recovery rebuilds them (the .txnindex of a
// recovered segment from its batches and the producer state before it).
//
// Checkpoints are text in Kafka's format, version 0, replaced atomically
// (temporary file, fsync, rename; offset checkpoints also fsync the
// directory):
//
//	leader-epoch-checkpoint      recovery-point-offset-checkpoint, cleaner-offset-checkpoint
//	0                            0
//	<count>                      <count>
//	<epoch> <start offset>       <topic> <partition> <offset>
//	...                          ...
//
// partition.metadata is "version: 0\ntopic_id: <URL-safe base64, no
// padding>\n". producer-state.snapshot is Skein's own (JSON
// {"offset": X, "producers": {id: entry}}): the state of every idempotent
// batch and transaction marker below X (open transactions included); it is never trusted outside [log start, log end].
//
// Frozen format (never change; data directories and Kafka tools depend on
// them): the file names and suffixes above, the 20-digit zero-padded base
// offset in segment names, indexEntrySize, timeIndexEntrySize and
// txnIndexEntrySize, the
// batch header offsets of batch.go, the checkpoint version 0 and line
// layouts, the JSON field names of the producer snapshot, and the fsync
// journal's line format (fsjournal.go).
//
// # Lifecycle rules (design.md §8)
//
//   - Retention deletes only segments wholly below the high watermark
//     (SetCleanBound; the log end when unset): the log start offset never
//     passes the HW.
//   - A segment removed by truncation, retention or a cleaner swap is
//     renamed to *.deleted (and the directory fsynced) before anything
//     else changes; the delayed delete (file.delete.delay.ms) only
//     reclaims space, after readers holding its file ranges are done.
//   - A segment truncated in place is fsynced with its indexes.
//   - A producer snapshot above a truncation point is deleted with it; a
//     snapshot at offset X holds every batch below X (producer state is
//     applied batch by batch as the batches are written, so a roll in the
//     middle of one append snapshots them all).
//   - The leader-epoch history is rebuilt from the batches' partition
//     leader epochs when the checkpoint is missing, damaged or does not fit
//     the log.
//
// # What each flush setting survives
//
// A process crash (SIGKILL, OOM, panic) loses nothing that an append
// returned: the written bytes are in the page cache whatever the flush
// settings. Recovery after any unclean stop validates every batch from
// the recovery point and cuts at the first torn or corrupt one.
//
// A machine crash (power, kernel) loses what was not fsynced:
//   - default (flush.messages and flush.ms unlimited, as Kafka): each
//     segment is fsynced when it rolls and on a clean close, so the
//     records appended to the active segment since its roll may be lost;
//     the other replicas are what keeps them (acks=all).
//   - flush.messages=N: fsynced after every N records; N=1 fsyncs every
//     append before it returns, so an acknowledged record is on this
//     replica's disk.
//   - flush.ms=T: fsynced at most about T (plus the one-second check)
//     after an append.
//
// Truncation, retention, the cleaner's swap and every checkpoint are
// durable when they return, whatever the flush settings.
//
// # Testing hooks
//
// Every fsync, directory fsync, rename, remove and truncation goes
// through fsio.go, which tells registered FileObservers (AddFileObserver).
// storagetest.CrashableDir uses it to simulate machine crashes; a broker
// started with SKEIN_FSYNC_JOURNAL writes an FsyncJournal for the
// end-to-end machine-crash test. Under the invariants build tag the log
// checks its invariants after every mutation (invariants.go).
//
// # Concurrency
//
// Log methods are safe for concurrent use: appends, truncations and
// retention take the log's lock; reads share it. The cleaner rewrites
// segments outside the lock and swaps them in under it, abandoning a pass
// when the log changed meanwhile. The Manager runs retention, time-based
// flushes, checkpoints and the cleaner in its own goroutines.
package storage
