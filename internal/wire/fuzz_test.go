package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxKey is beyond the largest API key kmsg knows; RequestForKey returns nil
// for the keys in between that do not exist.
const maxKey = 100

// fuzzRegistry registers every request kmsg can decode, at every version,
// with a handler that answers the request's empty response, so the fuzzer
// reaches the decoder of every key and version a registry could hold.
func fuzzRegistry() *Registry {
	r := NewRegistry()
	for key := int16(0); key < maxKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil || key == 18 {
			continue
		}
		r.Register(key, 0, req.MaxVersion(), func(_ context.Context, req *Request) (kmsg.Response, error) {
			return req.Body.ResponseKind(), nil
		})
	}
	return r
}

// appendRequestFrame appends a request frame as a client sends it, without
// the size prefix (the server reads that before handle): header v1, or v2
// with empty tags when the request is flexible. ApiVersions is no exception
// on the request side (only its response header is always v0).
func appendRequestFrame(dst []byte, req kmsg.Request, correlationID int32, clientID string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	return req.AppendTo(dst)
}

// seedRequests are valid requests with content in the places decoders
// loop over (arrays, nullable strings, record bytes), besides every key's
// default request.
func seedRequests() []kmsg.Request {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic, mt.TopicID = kmsg.StringPtr("orders"), [16]byte{1, 2, 3}
	meta.Topics = append(meta.Topics, mt)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = bytes.Repeat([]byte{0xab}, 70)
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)

	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "orders", [16]byte{1}
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = 42, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "orders", 3, 1
	cc := kmsg.NewCreateTopicsRequestTopicConfig()
	cc.Name, cc.Value = "retention.ms", kmsg.StringPtr("1000")
	ct.Configs = append(ct.Configs, cc)
	create.Topics = append(create.Topics, ct)

	describe := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName, dr.ConfigNames = kmsg.ConfigResourceTypeTopic, "orders", []string{"retention.ms"}
	describe.Resources = append(describe.Resources, dr)

	return []kmsg.Request{meta, produce, fetch, create, describe}
}

// FuzzRequestDecoding feeds request frames (size prefix already read) through
// the server's decoding path: ParseHeader, the registry lookup, kmsg's
// ReadFrom at the header's key and version, a handler, and the response's
// encoding.
//
// Invariants: it never panics; an error closes the connection (the caller
// sees a non-nil error) and nothing else; a frame that parses and decodes
// is answered with the header's correlation id at the header's version; and
// a decoded request re-encodes to bytes that decode to the same encoding
// (the decoder and encoder agree, so nothing read is silently lost).
func FuzzRequestDecoding(f *testing.F) {
	corr := int32(0)
	add := func(req kmsg.Request) {
		corr++
		f.Add(appendRequestFrame(nil, req, corr, "fuzz"))
	}
	for key := int16(0); key < maxKey; key++ {
		if kmsg.RequestForKey(key) == nil {
			continue
		}
		for v := int16(0); v <= kmsg.RequestForKey(key).MaxVersion(); v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			add(req)
		}
	}
	for _, req := range seedRequests() {
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			add(req)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 1, 0xff, 0xff}) // ApiVersions beyond kmsg

	s, err := NewServer(DefaultConfig(), fuzzRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		resp, hdr, err := s.handle(context.Background(), nil, frame, time.Now())
		if err != nil {
			return // the connection would be closed: allowed for bad input
		}
		if resp == nil {
			t.Fatal("handled request without a response or an error")
		}
		wire := AppendResponse(nil, hdr, resp)
		if got := int32(binary.BigEndian.Uint32(wire[4:])); got != hdr.CorrelationID {
			t.Fatalf("response correlation id %d, request %d", got, hdr.CorrelationID)
		}
		if hdr.Key == 18 && hdr.Version == 0 && resp.GetVersion() == 0 {
			return // ApiVersions answered at v0 (KIP-511 path)
		}

		// Decode again on our own, then check the re-encoding is stable.
		h, req, rest, err := ParseHeader(frame)
		if err != nil {
			t.Fatalf("handled frame does not parse again: %v", err)
		}
		if err := req.ReadFrom(rest); err != nil {
			t.Fatalf("handled frame does not decode again: %v", err)
		}
		once := req.AppendTo(nil)
		again := kmsg.RequestForKey(h.Key)
		again.SetVersion(h.Version)
		if err := again.ReadFrom(once); err != nil {
			t.Fatalf("%s v%d: re-encoding does not decode: %v", kmsg.NameForKey(h.Key), h.Version, err)
		}
		if twice := again.AppendTo(nil); !bytes.Equal(once, twice) {
			t.Fatalf("%s v%d: encoding not stable:\n%x\n%x", kmsg.NameForKey(h.Key), h.Version, once, twice)
		}
	})
}
