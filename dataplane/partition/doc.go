// Package partition owns the broker's partition replicas: the storage log of
// each, its role (leader or follower, from metadata), its high watermark, and
// the waits (purgatories) of produce and fetch requests on it.
//
// Ownership and threading:
//   - Manager maps topic-partitions to *Partition. ApplyImage is called from
//     one goroutine, in image order; it publishes a new immutable snapshot
//     (image + hosted replicas by topic) that request handlers read without
//     locking. Its work is proportional to what the image changed: images
//     are structurally shared, so topics and partitions whose pointers are
//     those applied last time are skipped (all are looked at again when
//     the broker configs or a broker address change). New partitions'
//     logs are created in parallel (storage.Config.RecoveryThreads).
//   - Partition guards its role (leader/follower, epochs, ISR, topic
//     settings) with roleMu: appends hold it for reading across the storage
//     append, role changes take it for writing, so no batch is ever stamped
//     with a leader epoch the partition no longer holds. The high watermark,
//     the followers' log end offsets and the waiters are under mu (taken
//     after roleMu, never before).
//
// Invariants (those marked * are checked on the real path under the
// `invariants` build tag, which make test turns on; invariants.go says
// which hold for which role):
//   - * LogStartOffset <= HighWatermark <= LogEndOffset, on every role.
//   - * On the leader the high watermark only moves forward within a
//     leader epoch; a follower's moves back after a truncation. On the
//     leader it is the minimum log end offset over the (maximal) ISR (the
//     local replica plus followers' reported LEOs; a follower that has not
//     reported counts as 0), and it does not move while the committed ISR
//     is smaller than min.insync.replicas (KIP-966); hw.go states the rule.
//   - * An applied image has the leader in the ISR and the ISR within the
//     replicas, and never moves the leader or partition epoch back.
//   - Consumers never read at or above the high watermark; read_committed
//     ones never at or above the last stable offset (txn.go: the HW held
//     back by any transaction open or not yet committed in the log).
//   - Waiters (acks=all produces, long-poll fetches) are woken by the
//     partition's state changes (append, HW advance, role change), never by
//     polling. A follower's long-poll fetch is also answered when an image
//     makes this broker leader of a partition that follower replicates, or
//     adds it to a led partition's replicas (followerwait.go: indexed by
//     replica id, so the cost is that follower's fetches).
//
// Replication: on the leader, a follower's fetch (Read with ReplicaID >= 0)
// reads up to the log end, is checked against the epoch history
// (LastFetchedEpoch; a mismatch answers DivergingEpoch, KIP-279), and its
// fetch offset becomes that follower's log end offset (UpdateFollowerFetch).
// On a follower, the replica fetcher (dataplane/replica) learns its
// assignments from Config.OnFollowers (what each image changed) and writes only through the
// follower methods (follower.go), each fenced by the leader epoch it was
// started for. A follower keeps the leader's high watermark capped at its
// own log end, so a follower that becomes leader starts from a sane one.
// ISR changes: the leader shrinks and expands the ISR through
// AlterPartition (isr.go); the high watermark counts the maximal ISR while a
// change is pending. One sender per manager (isrsend.go) batches the
// changes of all partitions into one request at a time.
package partition
