// Package metalog is the one package of the controllers' metadata log: its
// records (Entry, Change: the payload of Raft log entries, records.go), how
// they apply to an image (ApplyEntry, apply.go), and how they travel to
// brokers and tools in the records of the metadata topic (Topic, partition
// 0) as Kafka record batches, as Fetch answers carry them (batch.go,
// delta.go).
//
// The controller's FSM applies entries with ApplyEntry and the controller
// encodes (controller/fsm.go, controller/01_fetch.go); the broker's
// controller client (controller/client) decodes and applies deltas with
// the same ApplyEntry, and the CLI (cli/quorum.go) decodes. Nothing else
// encodes or decodes these, so the format has one definition.
//
// # Applying
//
// ApplyEntry is a pure function: the image after an entry, all of its
// changes or (an invalid one) none. It copies on write: the next image
// shares every topic, partition, broker and map the entry does not change
// with the one before (package image's "Sharing"), so applying a change
// costs the change, not the cluster.
//
// # Format
//
// A batch is a Kafka v2 record batch (magic 2), uncompressed, without a
// producer (ProducerID, ProducerEpoch and FirstSequence are -1), holding
// exactly one record with no headers:
//
//	FirstOffset = the record's offset       OffsetDelta    = 0
//	FirstTimestamp = MaxTimestamp = its      TimestampDelta = 0
//	  timestamp (Unix milliseconds)          Key            = the kind
//	CRC-32C over Attributes .. end, as       Value          = the payload
//	  the format defines
//
// The key says what the value holds:
//
//   - "image" (KeyImage), or no key (batches of before deltas): a snapshot,
//     the whole metadata image (image.Marshal, JSON) at offset = the image's
//     Raft index (EncodeImage, DecodeImage);
//   - "delta" (KeyDelta): the outcome of the one Raft entry at offset = its
//     index, as JSON DeltaValue {"prev_index": the index of the image it
//     applies onto, "cluster_id": that image's cluster id, "records": the
//     entry's changes, absent when the FSM discarded the entry}
//     (EncodeDelta).
//
// A Fetch answer holds one snapshot, or consecutive deltas each chaining
// onto the one before; DecodeBatches and DecodeUpdates decode it, and
// Update.ApplyTo / ApplyUpdates apply it: a snapshot replaces the image, a
// delta applies only onto the image at its prev_index of its cluster_id
// (else ErrNotChained: start over from a snapshot). Batches are built with kmsg's encoders and
// sealed and checked with storage's batch helpers (length and CRC-32C);
// nothing here hand-rolls the Kafka format.
//
// # Invariants
//
//   - DecodeBatch accepts a batch only if it is magic 2, whole, CRC-32C
//     valid, uncompressed and holds one record. Bytes after the batch are
//     ignored; DecodeBatches ignores only a partial batch at the end of an
//     answer (after at least one whole batch).
//   - Re-encoding a decoded record is stable: EncodeBatch(DecodeBatch(b))
//     decodes to the same record and re-encodes to the same bytes.
//   - Decoding and applying never panic, whatever the input, and never
//     modify the image applied to (FuzzDecodeMetadataBatch,
//     FuzzDecodeMetadataDeltas).
//   - Applying deltas gives the image a snapshot would
//     (TestDeltasEqualSnapshot); ApplyEntry gives the image of the deep
//     clone algorithm it replaced (TestApplyEntryMatchesDeepClone).
package metalog
