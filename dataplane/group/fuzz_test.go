package group

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
)

// Fuzz input modes (mode & 3).
const (
	fuzzRecords    = 0 // data: framed key/values, written in valid batches
	fuzzRawBatch   = 1 // data: the records section of one batch with a valid CRC
	fuzzDiskDamage = 2 // records as in 0, then data appended to the segment file behind storage's back
	fuzzMixed      = 3 // first half as in 0, second half as in 1
)

// encodeFuzzRecords frames key/values for the fuzzer: per record a flags
// byte (1: null value, 2: null key) and 2-byte lengths.
func encodeFuzzRecords(recs []kv) []byte {
	var out []byte
	for _, r := range recs {
		var flags byte
		if r.value == nil {
			flags |= 1
		}
		if r.key == nil {
			flags |= 2
		}
		out = append(out, flags)
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.key)))
		out = append(out, r.key...)
		if r.value != nil {
			out = binary.BigEndian.AppendUint16(out, uint16(len(r.value)))
			out = append(out, r.value...)
		}
	}
	return out
}

func decodeFuzzRecords(data []byte) []kv {
	var out []kv
	take := func() []byte {
		if len(data) < 2 {
			data = nil
			return []byte{}
		}
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		b := data[2 : 2+n : 2+n]
		data = data[2+n:]
		return b
	}
	for len(data) > 0 && len(out) < 64 {
		flags := data[0]
		data = data[1:]
		r := kv{key: take()}
		if flags&1 == 0 {
			r.value = take()
		}
		if flags&2 != 0 {
			r.key = nil
		}
		out = append(out, r)
	}
	return out
}

// fuzzCompressors compress with none, gzip, snappy, lz4, zstd (made once:
// a zstd compressor holds much memory).
var fuzzCompressors = func() []kgo.Compressor {
	var out []kgo.Compressor
	for _, c := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(),
		kgo.Lz4Compression(), kgo.ZstdCompression()} {
		comp, err := kgo.DefaultCompressor(c)
		if err != nil {
			panic(err)
		}
		out = append(out, comp)
	}
	return out
}()

// fuzzBatches writes recs as valid batches of up to 3 records, compressed
// with codec (an index into fuzzCompressors).
func fuzzBatches(t *testing.T, recs []kv, codec int) [][]byte {
	var out [][]byte
	for len(recs) > 0 {
		n := min(3, len(recs))
		b := buildBatch(recs[:n], 1)
		recs = recs[n:]
		if codec%len(fuzzCompressors) != 0 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			z, c := fuzzCompressors[codec%len(fuzzCompressors)].Compress(new(bytes.Buffer), rb.Records)
			rb.Records = bytes.Clone(z)
			rb.Attributes |= int16(c)
			b = encodeBatch(&rb)
		}
		out = append(out, b)
	}
	return out
}

// rawBatch is a batch with a valid CRC whose records section is raw,
// claiming n records, with codec attribute bits set as given (the section
// is not compressed with it).
func rawBatch(raw []byte, n int32, codec int16) []byte {
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch = -1
	b.Magic = 2
	b.Attributes = codec & 0x07
	b.LastOffsetDelta = max(n-1, 0)
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.NumRecords = n
	b.Records = raw
	return encodeBatch(&b)
}

func fuzzSeeds() [][]byte {
	ock := func(v int16, g string) []byte {
		k := kmsg.NewOffsetCommitKey()
		k.Version, k.Group, k.Topic, k.Partition = v, g, "t", 1
		return k.AppendTo(nil)
	}
	ocv := func(v int16) []byte {
		x := kmsg.NewOffsetCommitValue()
		x.Version, x.Offset, x.LeaderEpoch, x.Metadata, x.CommitTimestamp = v, 42, 3, "md", 1000
		return x.AppendTo(nil)
	}
	gmv := func(v int16, members ...string) []byte {
		x := kmsg.NewGroupMetadataValue()
		x.Version, x.ProtocolType, x.Generation = v, "consumer", 3
		p, l := "range", "m1"
		x.Protocol, x.Leader = &p, &l
		for i, id := range members {
			m := kmsg.NewGroupMetadataValueMember()
			m.MemberID, m.ClientID, m.ClientHost = id, "c", "h"
			m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = 10000, 10000
			if i%2 == 1 {
				inst := "i"
				m.InstanceID = &inst
			}
			m.Subscription, m.Assignment = []byte{0, 0, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 0}, []byte("A")
			x.Members = append(x.Members, m)
		}
		return x.AppendTo(nil)
	}
	var seeds [][]byte
	for v := int16(0); v <= 4; v++ {
		kver := int16(1)
		if v == 0 {
			kver = 0
		}
		seeds = append(seeds, encodeFuzzRecords([]kv{
			{key: ock(kver, "g"), value: ocv(v)},
			{key: groupKey("g"), value: gmv(v, "m1", "m2", "m3")},
		}))
	}
	seeds = append(seeds,
		// Tombstones, a group deleted then recreated, an unknown record type.
		encodeFuzzRecords([]kv{
			{key: ock(1, "g"), value: ocv(3)}, {key: ock(1, "g")},
			{key: groupKey("g"), value: gmv(3, "m1")}, {key: groupKey("g")},
			{key: groupKey("g"), value: gmv(2)},
			{key: []byte{0, 9, 1, 2, 3}, value: []byte{1}},
		}),
		// Duplicate member and instance ids, an empty member id.
		encodeFuzzRecords([]kv{{key: groupKey("d"), value: gmv(3, "m1", "m1", "", "m2", "m3")}}),
		// Records that do not decode.
		encodeFuzzRecords([]kv{
			{key: ock(1, "g")[:5], value: ocv(3)},
			{key: groupKey("g"), value: gmv(3, "m1")[:9]},
			{key: nil, value: []byte("x")},
			{key: ock(1, "ok"), value: ocv(1)},
		}),
	)
	return seeds
}

// FuzzLoadOffsetsPartition writes arbitrary records to a real
// __consumer_offsets log (valid batches, so they reach the parser; raw
// record sections; damage appended to the segment file behind storage's
// back) and makes a coordinator load it: the load must finish, and the
// coordinator must answer for every group named and take a new commit.
func FuzzLoadOffsetsPartition(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(uint8(fuzzRecords|i%5<<2), s)
	}
	f.Add(uint8(fuzzRawBatch), []byte{2, 0, 0, 0, 0, 0})
	f.Add(uint8(fuzzRawBatch|1<<2|3<<4), []byte("not gzip at all"))
	f.Add(uint8(fuzzDiskDamage), append(encodeFuzzRecords([]kv{{key: groupKey("g"), value: []byte{0, 3}}}), 0, 0, 0, 0))
	f.Add(uint8(fuzzMixed|2<<2), append(fuzzSeeds()[2], 0xfe, 0xff, 1, 2, 3))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		var batches [][]byte
		var damage []byte
		switch mode & 3 {
		case fuzzRecords:
			batches = fuzzBatches(t, decodeFuzzRecords(data), int(mode>>2))
		case fuzzRawBatch:
			batches = [][]byte{rawBatch(data, int32(mode>>4)+1, int16(mode>>2))}
		case fuzzDiskDamage:
			batches = fuzzBatches(t, decodeFuzzRecords(data), 0)
			damage = data
		case fuzzMixed:
			h := len(data) / 2
			batches = append(fuzzBatches(t, decodeFuzzRecords(data[:h]), int(mode>>2)),
				rawBatch(data[h:], int32(mode>>4)+1, 0))
		}
		dir := t.TempDir()
		store, err := storage.OpenManager(storage.DefaultConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		var written [][]byte
		for p := range int32(2) {
			l, err := store.GetOrCreate(storage.TopicPartition{Topic: OffsetsTopic, Partition: p}, [16]byte{7}, storage.DefaultLogConfig())
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches {
				if _, err := l.AppendAsLeader(b, 1); err == nil && p == 0 {
					written = append(written, b)
				}
			}
		}
		if damage != nil {
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
			seg := filepath.Join(dir, OffsetsTopic+"-0", "00000000000000000000.log")
			fh, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fh.Write(damage)
			fh.Close()
			if store, err = storage.OpenManager(storage.DefaultConfig(dir)); err != nil {
				return // storage refuses the directory: nothing to load
			}
		}
		e := newEnvOn(t, store, nil) // fails if the load does not finish

		// Every group the records name answers.
		groups := map[string]bool{}
		for _, b := range written {
			parseBatches(b, new(malformed), func(p parsed) {
				if p.offsetKey != nil {
					groups[p.offsetKey.Group] = true
				}
				if p.groupKey != nil {
					groups[p.groupKey.Group] = true
				}
			})
		}
		for id := range groups {
			if id == "" {
				continue
			}
			e.describe(id)
			e.fetched(id)
			// The restored members heartbeat, then leave (a rebalance
			// from whatever state the records left).
			var gen int32
			var leave []kmsg.LeaveGroupRequestMember
			e.c.mu.Lock()
			if g := e.c.shards[PartitionFor(id, 2)].groups[id]; g != nil {
				gen = g.generation
				for _, m := range g.members {
					leave = append(leave, kmsg.LeaveGroupRequestMember{MemberID: m.id, InstanceID: m.instanceID})
				}
			}
			e.c.mu.Unlock()
			for _, m := range leave {
				e.heartbeat(id, m.MemberID, gen)
			}
			if len(leave) > 0 {
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Version, req.Group, req.Members = 5, id, leave
				e.c.LeaveGroup(req)
				e.describe(id)
			}
		}
		if _, code := e.c.ListGroups(nil); code != 0 {
			t.Fatalf("list groups: %v", kerr.ErrorForCode(code))
		}
		commitCode(t, e.commit("fuzz-probe", "", -1, map[int32]int64{0: 5}, ""), nil)
		if got := e.fetched("fuzz-probe")[0].Offset; got != 5 {
			t.Fatalf("probe commit reads back %d", got)
		}
	})
}

// TestLoadSkipsMalformedRecords: records that do not decode, in a batch
// with good ones, and a batch whose records section is garbage are skipped
// with one warning; the good records load and the coordinator answers.
func TestLoadSkipsMalformedRecords(t *testing.T) {
	good := offsetRecord("g", "t", 0, &offset{offset: 42, leaderEpoch: -1})
	badValue := kv{key: offsetRecord("g", "t", 1, nil).key, value: []byte{0, 3, 1}}
	also := offsetRecord("also", "t", 0, &offset{offset: 7, leaderEpoch: -1})
	store, err := storage.OpenManager(storage.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		l, err := store.GetOrCreate(storage.TopicPartition{Topic: OffsetsTopic, Partition: p}, [16]byte{7}, storage.DefaultLogConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{
			buildBatch([]kv{good, badValue, {key: []byte{0}}, also}, 1),
			rawBatch([]byte{0x7f, 1, 2, 3}, 3, 0),
			rawBatch([]byte("not gzip"), 1, 1),
		} {
			if _, err := l.AppendAsLeader(b, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logs safeBuffer
	e := newEnvOn(t, store, func(c *Config) {
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	})
	if got := e.fetched("g")[0].Offset; got != 42 {
		t.Fatalf("g's offset %d, want 42", got)
	}
	if got := e.fetched("also")[0].Offset; got != 7 {
		t.Fatalf("also's offset %d, want 7", got)
	}
	if n := strings.Count(logs.String(), "skipped malformed records"); n != 2 {
		t.Fatalf("%d warnings (one per partition load expected):\n%s", n, logs.String())
	}
	commitCode(t, e.commit("g", "", -1, map[int32]int64{0: 43}, ""), nil)
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
