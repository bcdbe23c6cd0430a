package metalog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// goldenBatch is what the controller's encoder produced before this package
// existed, for offset 42, timestamp 1700000000000 and value {"Index":42}:
// the format brokers already decode must not change.
const goldenBatch = "000000000000002a0000004400000000023f39186b0000000000000000018bcfe568" +
	"000000018bcfe56800ffffffffffffffffffffffffffff000000012400000001187b22496e646578223a34327d00"

func TestEncodeBatchMatchesTheShippedFormat(t *testing.T) {
	got := EncodeBatch(Record{Offset: 42, Timestamp: 1700000000000, Value: []byte(`{"Index":42}`)})
	if h := hex.EncodeToString(got); h != goldenBatch {
		t.Fatalf("EncodeBatch = %s\nwant           %s", h, goldenBatch)
	}
	if err := storage.ValidateBatch(got); err != nil {
		t.Fatalf("storage rejects the batch: %v", err)
	}
}

func TestDecodeBatchRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Offset: 0, Timestamp: 0, Value: []byte{}},
		{Offset: 1, Timestamp: -1, Value: nil},
		{Offset: 1 << 40, Timestamp: 1700000000000, Value: bytes.Repeat([]byte("x"), 70000)},
	} {
		raw := EncodeBatch(r)
		got, err := DecodeBatch(raw)
		if err != nil {
			t.Fatalf("DecodeBatch(EncodeBatch(%d, %d, %d bytes)): %v", r.Offset, r.Timestamp, len(r.Value), err)
		}
		if got.Offset != r.Offset || got.Timestamp != r.Timestamp || !bytes.Equal(got.Value, r.Value) || (got.Value == nil) != (r.Value == nil) {
			t.Fatalf("round trip: got offset %d timestamp %d value %d bytes (nil %v), want %d %d %d (nil %v)",
				got.Offset, got.Timestamp, len(got.Value), got.Value == nil, r.Offset, r.Timestamp, len(r.Value), r.Value == nil)
		}
		// A Fetch answer may end with bytes of a partial next batch.
		if _, err := DecodeBatch(append(raw[:len(raw):len(raw)], 0, 0, 0, 1)); err != nil {
			t.Fatalf("trailing bytes: %v", err)
		}
	}
}

// reseal rewrites the big-endian field at off of a copy of raw and reseals
// the copy (length and CRC-32C), so that only the field is wrong.
func reseal(raw []byte, off int, v uint64, size int) []byte {
	b := bytes.Clone(raw)
	switch size {
	case 1:
		b[off] = byte(v)
	case 2:
		binary.BigEndian.PutUint16(b[off:], uint16(v))
	case 4:
		binary.BigEndian.PutUint32(b[off:], uint32(v))
	}
	return storage.SealBatch(b)
}

func TestDecodeBatchRejects(t *testing.T) {
	raw := EncodeBatch(Record{Offset: 7, Timestamp: 1, Value: []byte(`{"index":7}`)})
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-3] ^= 0x01 // a value byte: only the CRC can tell
	longer := bytes.Clone(raw)
	binary.BigEndian.PutUint32(longer[8:], uint32(len(raw))) // 12 bytes more than present
	for _, tc := range []struct {
		name, want string
		raw        []byte
	}{
		{"empty", "shorter than a batch header", nil},
		{"header only", "out of bounds", raw[:storage.BatchHeaderSize]},
		{"one byte short", "out of bounds", raw[:len(raw)-1]},
		{"length beyond the bytes", "out of bounds", longer},
		{"CRC mismatch", "CRC-32C", flipped},
		{"magic 1", "magic 1", reseal(raw, 16, 1, 1)},
		{"gzip", "compressed", reseal(raw, 21, 1, 2)},
		{"zstd", "compressed", reseal(raw, 21, 4, 2)},
		{"two records", "2 records, want 1", reseal(raw, 57, 2, 4)},
		{"zero records", "0 records, want 1", reseal(raw, 57, 0, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBatch(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeBatch: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestImageRoundTrip(t *testing.T) {
	img := image.New()
	img.Index = 12
	img.ClusterID = "c1"
	img.ActiveController = 3
	raw, err := EncodeImage(img, 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeImage(raw)
	if err != nil {
		t.Fatalf("DecodeImage: %v", err)
	}
	if got.Index != 12 || got.ClusterID != "c1" || got.ActiveController != 3 {
		t.Fatalf("DecodeImage: index %d cluster %q active %d, want 12 c1 3", got.Index, got.ClusterID, got.ActiveController)
	}
}

func TestDecodeImageRejects(t *testing.T) {
	img := image.New()
	img.Index = 12
	value, err := image.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		r          Record
	}{
		{"offset is not the index", "offset 13 holds image index 12", Record{Offset: 13, Value: value}},
		{"not an image", "decode metadata image", Record{Offset: 12, Value: []byte("{")}},
		{"null value", "decode metadata image", Record{Offset: 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeImage(EncodeBatch(tc.r))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeImage: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
