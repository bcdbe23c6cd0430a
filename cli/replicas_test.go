package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// testBatch builds a record batch header (magic 2) for offsets
// [base, base+count) followed by payload; only the fields hashBatches reads
// are meaningful.
func testBatch(base int64, count int32, payload string) []byte {
	b := make([]byte, 61, 61+len(payload))
	binary.BigEndian.PutUint64(b[0:8], uint64(base))
	binary.BigEndian.PutUint32(b[8:12], uint32(49+len(payload)))
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:27], uint32(count-1))
	return append(b, payload...)
}

func TestHashBatches(t *testing.T) {
	b0, b1, b2 := testBatch(0, 5, "a"), testBatch(5, 5, "bb"), testBatch(10, 2, "c")
	all := bytes.Join([][]byte{b0, b1, b2}, nil)
	tests := []struct {
		name             string
		data             []byte
		next, start, end int64
		wantNext         int64
		wantHashed       []byte
		wantDone         bool
		wantErr          bool
	}{
		{name: "all below end", data: all, end: 12, wantNext: 12, wantHashed: all, wantDone: true},
		{name: "stops at end", data: all, end: 10, wantNext: 10, wantHashed: all[:len(b0)+len(b1)], wantDone: true},
		{name: "batch reaching past end is left out", data: all, end: 7, wantNext: 5, wantHashed: b0, wantDone: true},
		{name: "skips batches before start", data: all, start: 5, next: 5, end: 12, wantNext: 12, wantHashed: all[len(b0):], wantDone: true},
		{name: "batch straddling start is left out", data: all, start: 3, next: 3, end: 12, wantNext: 12, wantHashed: all[len(b0):], wantDone: true},
		{name: "partial batch waits for the next fetch", data: all[:len(b0)+10], end: 12, wantNext: 5, wantHashed: b0},
		{name: "more to fetch", data: b0, end: 12, wantNext: 5, wantHashed: b0},
		{name: "empty", data: nil, end: 12, wantNext: 0},
		{name: "nothing to compare", data: all, end: 0, wantNext: 0, wantDone: true},
		{name: "bad length", data: func() []byte { b := testBatch(0, 1, ""); b[11] = 1; return b }(), end: 5, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sha256.New()
			next, hashed, done, err := hashBatches(h, tt.data, tt.next, tt.start, tt.end)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if next != tt.wantNext || done != tt.wantDone || hashed != int64(len(tt.wantHashed)) {
				t.Errorf("got next %d done %v hashed %d, want %d %v %d", next, done, hashed, tt.wantNext, tt.wantDone, len(tt.wantHashed))
			}
			want := sha256.Sum256(tt.wantHashed)
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("hashed bytes differ from the expected batches")
			}
		})
	}
}

func TestCompareReplicas(t *testing.T) {
	ok := func(id int32, sum string) replicaDigest {
		return replicaDigest{Replica: id, HighWatermark: 10, Bytes: 100, Checksum: sum}
	}
	failed := replicaDigest{Replica: 3, HighWatermark: -1, Err: errors.New("unreachable")}
	tests := []struct {
		name      string
		rows      []replicaDigest
		leader    int32
		wantBad   int
		wantMatch []bool
	}{
		{name: "identical", rows: []replicaDigest{ok(1, "aa"), ok(2, "aa"), ok(3, "aa")}, leader: 2, wantMatch: []bool{true, true, true}},
		{name: "follower differs", rows: []replicaDigest{ok(1, "aa"), ok(2, "bb"), ok(3, "aa")}, leader: 1, wantBad: 1, wantMatch: []bool{true, false, true}},
		{name: "leader is the reference", rows: []replicaDigest{ok(1, "aa"), ok(2, "aa"), ok(3, "bb")}, leader: 3, wantBad: 2, wantMatch: []bool{false, false, true}},
		{name: "same checksum, other length", rows: []replicaDigest{ok(1, "aa"), {Replica: 2, Bytes: 7, Checksum: "aa"}}, leader: 1, wantBad: 1, wantMatch: []bool{true, false}},
		{name: "unreadable replica", rows: []replicaDigest{ok(1, "aa"), ok(2, "aa"), failed}, leader: 1, wantBad: 1, wantMatch: []bool{true, true, false}},
		{name: "leader unreadable: first readable is the reference", rows: []replicaDigest{ok(1, "aa"), ok(2, "aa"), failed}, leader: 3, wantBad: 1, wantMatch: []bool{true, true, false}},
		{name: "offline leader (-1)", rows: []replicaDigest{ok(1, "aa"), ok(2, "bb")}, leader: -1, wantBad: 1, wantMatch: []bool{true, false}},
		{name: "nothing readable", rows: []replicaDigest{failed}, leader: 3, wantBad: 1, wantMatch: []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bad := compareReplicas(tt.rows, tt.leader); bad != tt.wantBad {
				t.Errorf("bad = %d, want %d", bad, tt.wantBad)
			}
			for i, r := range tt.rows {
				if r.Match != tt.wantMatch[i] {
					t.Errorf("replica %d: match %v, want %v", r.Replica, r.Match, tt.wantMatch[i])
				}
			}
		})
	}
}
