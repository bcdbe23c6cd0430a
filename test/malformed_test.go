package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// rawTimeout bounds every raw read and write.
const rawTimeout = 10 * time.Second

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TestMalformedInput sends bad bytes to the broker over raw TCP. A bad
// frame must close that connection only (never hang it, never crash the
// broker); a produce whose batch fails its CRC must be answered with
// CORRUPT_MESSAGE on a connection that stays usable. After each case a new
// connection must still be served.
func TestMalformedInput(t *testing.T) {
	const topic = "malformed"
	seed := testSeed(t)
	t.Logf("seed %d (repeat with SKEIN_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0xbad))

	c := harness.StartCluster(t, harness.Options{})
	createTopic(t, c, topic, 1, 1, nil)
	addr := c.Brokers[0].Addr
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("malformed-test"))

	produce := func(batch []byte) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		req.TimeoutMillis = 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	validProduce := f.AppendRequest(nil, produce(recordBatch("v-000000001", "v-000000002")), 7)

	metadataGarbage := binary.BigEndian.AppendUint16(nil, 3) // Metadata
	metadataGarbage = binary.BigEndian.AppendUint16(metadataGarbage, 9)
	metadataGarbage = binary.BigEndian.AppendUint32(metadataGarbage, 1)
	metadataGarbage = binary.BigEndian.AppendUint16(metadataGarbage, 0xffff) // null client id
	for range 64 {
		metadataGarbage = append(metadataGarbage, 0xff)
	}
	random := make([]byte, 256)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	unknownKey := binary.BigEndian.AppendUint16(nil, 999)
	unknownKey = binary.BigEndian.AppendUint16(unknownKey, 0)
	unknownKey = binary.BigEndian.AppendUint32(unknownKey, 1)
	unknownKey = binary.BigEndian.AppendUint16(unknownKey, 0xffff)

	// truncatedBody is a produce frame cut in half whose size prefix says
	// the half is all there is: the request does not parse.
	half := validProduce[4 : 4+(len(validProduce)-4)/2]
	truncatedBody := append(binary.BigEndian.AppendUint32(nil, uint32(len(half))), half...)

	closes := []struct {
		name string
		send []byte
		// closeWrite half-closes after sending: the frame never completes.
		closeWrite bool
	}{
		{name: "oversize frame", send: []byte{0x7f, 0xff, 0xff, 0xff, 'x'}},
		{name: "negative frame size", send: []byte{0xff, 0xff, 0xff, 0xff, 'x'}},
		{name: "frame below a header", send: []byte{0, 0, 0, 2, 0, 0}},
		{name: "garbage metadata body", send: frame(metadataGarbage)},
		{name: "unknown api key", send: frame(unknownKey)},
		{name: "truncated produce body", send: truncatedBody},
		{name: "produce frame cut short", send: validProduce[:len(validProduce)/2], closeWrite: true},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			conn := dial(t, addr)
			write(t, conn, tc.send)
			if tc.closeWrite {
				_ = conn.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, conn)
			expectServing(t, c, addr)
		})
	}

	t.Run("random frame", func(t *testing.T) {
		// Random bytes may even parse; the broker must answer or close,
		// not hang, and keep serving others.
		conn := dial(t, addr)
		write(t, conn, frame(random))
		_ = conn.SetReadDeadline(time.Now().Add(rawTimeout))
		if _, err := conn.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			t.Errorf("no answer and no close within %v", rawTimeout)
		}
		expectServing(t, c, addr)
	})

	t.Run("corrupt CRC", func(t *testing.T) {
		conn := dial(t, addr)
		// The same construction with a correct CRC is accepted: the test
		// builds batches right, so the rejection below is about the CRC.
		resp := roundTrip(t, conn, f, produce(recordBatch("ok-000000001")), 1).(*kmsg.ProduceResponse)
		if code := produceCode(t, resp); code != 0 {
			t.Fatalf("valid batch: error code %d (%v), want 0", code, kerr.ErrorForCode(code))
		}
		bad := recordBatch("corrupt-000000001", "corrupt-000000002")
		bad[len(bad)-3] ^= 0x40 // inside the last record's value
		resp = roundTrip(t, conn, f, produce(bad), 2).(*kmsg.ProduceResponse)
		if code := produceCode(t, resp); code != kerr.CorruptMessage.Code {
			t.Errorf("batch with a flipped byte: error code %d (%v), want CORRUPT_MESSAGE (%d)", code, kerr.ErrorForCode(code), kerr.CorruptMessage.Code)
		}
		// The connection is still usable.
		api := kmsg.NewPtrApiVersionsRequest()
		api.SetVersion(3)
		api.ClientSoftwareName, api.ClientSoftwareVersion = "skein-test", "1"
		if r := roundTrip(t, conn, f, api, 3).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Errorf("ApiVersions after CORRUPT_MESSAGE: error code %d", r.ErrorCode)
		}
		_ = conn.Close()
		expectServing(t, c, addr)

		// Only the valid record is in the log.
		report := harness.Verify(c.ReadAll(t, topic, 30*time.Second), nil)
		report.Check(t)
		if report.Records != 1 {
			t.Errorf("log holds %d records, want only the one valid record", report.Records)
		}
	})
}

// recordBatch encodes a v2 record batch (no compression, no producer id)
// of the values with a correct length and CRC-32C, using kmsg.
func recordBatch(values ...string) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 encodes in one byte
		records = r.AppendTo(records)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              records,
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12) // after FirstOffset and Length
	raw := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], castagnoli)) // from Attributes on
	return b.AppendTo(nil)
}

// frame prefixes body with its big-endian int32 size.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func write(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(rawTimeout))
	if _, err := conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// expectClosed fails the test unless the broker closes conn (without
// answering) within rawTimeout.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(rawTimeout))
	n, err := conn.Read(make([]byte, 512))
	switch {
	case err == nil:
		t.Errorf("broker answered %d bytes; want the connection closed", n)
	case isTimeout(err):
		t.Errorf("connection still open after %v; want it closed", rawTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed), isReset(err):
	default:
		t.Logf("connection ended with %v", err)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// expectServing fails the test unless a new connection is served: a raw
// ApiVersions round trip and kadm metadata listing the broker.
func expectServing(t *testing.T, c *harness.Cluster, addr string) {
	t.Helper()
	conn := dial(t, addr)
	api := kmsg.NewPtrApiVersionsRequest()
	api.SetVersion(0)
	roundTrip(t, conn, kmsg.NewRequestFormatter(), api, 42)
	_ = conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	m, err := c.Admin(t).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("metadata after bad input: %v", err)
	}
	if len(m.Brokers) == 0 {
		t.Fatalf("metadata after bad input lists no broker")
	}
}

// roundTrip writes req on conn and reads and decodes its response.
func roundTrip(t *testing.T, conn net.Conn, f *kmsg.RequestFormatter, req kmsg.Request, correlationID int32) kmsg.Response {
	t.Helper()
	write(t, conn, f.AppendRequest(nil, req, correlationID))
	_ = conn.SetReadDeadline(time.Now().Add(rawTimeout))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("%s: read response size: %v", kmsg.NameForKey(req.Key()), err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		t.Fatalf("%s: response size %d", kmsg.NameForKey(req.Key()), n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("%s: read response: %v", kmsg.NameForKey(req.Key()), err)
	}
	r := kbin.Reader{Src: body}
	if got := r.Int32(); got != correlationID {
		t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, correlationID)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		kmsg.SkipTags(&r)
	}
	if err := r.Complete(); err != nil {
		t.Fatalf("%s: response header: %v", kmsg.NameForKey(req.Key()), err)
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		t.Fatalf("%s: decode response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// produceCode returns the error code of the single partition of resp.
func produceCode(t *testing.T, resp *kmsg.ProduceResponse) int16 {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics; want one topic with one partition: %+v", len(resp.Topics), resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		t.Logf("produce: error code %d (%v) %s", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), msg)
	}
	return p.ErrorCode
}
