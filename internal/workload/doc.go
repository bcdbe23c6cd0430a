// Package workload is the history and the checker of `skein verify
// workload`, the consistency checker operators point at a cluster. Nothing
// here talks to a cluster: the command runs producers and consumers,
// records what they did as a History (JSON lines), and hands it to Check,
// which says what is wrong in the terms Jepsen uses for Kafka.
//
// A history is a sequence of events in the order the command observed
// them (one mutex orders them, so "before" is well defined):
//
//   - start: the topic and each partition's end offset before the run.
//     Records below these offsets are older than the run and ignored.
//   - invoke, ok, info: a producer process handing a unique value to its
//     client for one partition, then its outcome. ok carries the partition
//     and offset the cluster acknowledged. info is an indeterminate
//     outcome (the produce failed or was cut short: the record may or may
//     not be in the log). An invoke with neither is indeterminate too.
//   - assign, revoke: a consumer process starting to read partitions
//     (from the given offset, or, for a group member, from wherever the
//     group's committed offsets say) or stopping to read them. A
//     consumer's reads of a partition are checked in runs that start at
//     an assign: a rebalance or a seek may move a consumer, nothing else.
//   - poll: the records one poll returned for one partition, in order.
//   - end: each partition's high watermark after the producers stopped.
//
// The reads of the process named FinalReader, which reads every partition
// once more from the start offsets to the end after everything else
// stopped, are "the log as read at the end".
//
// Check's invariants, per partition:
//   - lost: every acknowledged value is in the final log;
//   - wrong-offset: at the partition and offset it was acknowledged at;
//   - duplicated: no value (acknowledged or indeterminate) is read at two
//     positions by anyone;
//   - reordered: one producer's acknowledged values have increasing
//     offsets in the order it produced them, in its acknowledgements and
//     in the final log;
//   - divergent: every reader that read an offset read the same value
//     there, so all readers saw one order;
//   - nonmonotonic: within a run of reads, a consumer's offsets increase
//     (and a consumer told to start at an offset reads nothing below it);
//   - poll-skip: within a run of reads, a consumer jumps over no offset
//     that exists (that some reader read); its first read after an
//     assignment does not jump over offsets from where it was told to
//     start or, for a group member, from the next offset after everything
//     its group had read;
//   - unseen: every acknowledged value in the final log was read by every
//     plain consumer and by some member of every group;
//   - unknown-value: no reader read a value no producer wrote.
package workload
