// Package metalog is the one encoding of the controllers' metadata as it is
// shipped to brokers and tools: the records of the metadata topic
// (Topic, partition 0) in Kafka record batches, as Fetch answers carry them.
//
// The controller encodes (controller/01_fetch.go); the broker's controller
// client (controller/client) and the CLI (cli/quorum.go) decode. Nothing else
// encodes or decodes these batches, so the format has one definition.
//
// # Format
//
// A batch is a Kafka v2 record batch (magic 2), uncompressed, without a
// producer (ProducerID, ProducerEpoch and FirstSequence are -1), holding
// exactly one record with no key and no headers:
//
//	FirstOffset = the record's offset       OffsetDelta    = 0
//	FirstTimestamp = MaxTimestamp = its      TimestampDelta = 0
//	  timestamp (Unix milliseconds)          Value          = the payload
//	CRC-32C over Attributes .. end, as the format defines
//
// Today the payload is the whole metadata image (image.Marshal, JSON) at
// offset = the image's Raft index; EncodeImage and DecodeImage keep that
// pairing. Batches are built with kmsg's encoders and sealed and checked with
// storage's batch helpers (length and CRC-32C); nothing here hand-rolls the
// Kafka format.
//
// # Invariants
//
//   - DecodeBatch accepts a batch only if it is magic 2, whole, CRC-32C
//     valid, uncompressed and holds one record. Bytes after the batch are
//     ignored (a Fetch answer may end with a partial batch).
//   - Re-encoding a decoded record is stable: EncodeBatch(DecodeBatch(b))
//     decodes to the same record and re-encodes to the same bytes.
//   - Decoding never panics, whatever the input (FuzzDecodeMetadataBatch).
package metalog
