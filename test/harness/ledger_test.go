package harness

import (
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	v := func(seq int64) string { return Value("s", seq) }
	good := map[int32][]Stored{
		0: {{0, v(0)}, {1, v(2)}, {2, v(3)}},
		1: {{0, v(1)}, {1, v(4)}},
	}
	goodAcks := []Ack{{0, 0, v(0)}, {1, 0, v(1)}, {0, 1, v(2)}, {1, 1, v(4)}} // v(3) unacknowledged
	tests := []struct {
		name   string
		stored map[int32][]Stored
		acks   []Ack
		want   string // substring of the first problem; "" for none
	}{
		{"clean", good, goodAcks, ""},
		{"acknowledged record missing", good, append(goodAcks, Ack{1, 2, v(5)}), "is missing"},
		{"acknowledged at another offset", good, []Ack{{0, 2, v(2)}}, "but that offset holds"},
		{"duplicate across partitions", map[int32][]Stored{0: {{0, v(0)}}, 1: {{0, v(0)}}}, nil, "stored twice"},
		{"gap", map[int32][]Stored{0: {{0, v(0)}, {2, v(1)}}}, nil, "not contiguous"},
		{"order lost", map[int32][]Stored{0: {{0, v(1)}, {1, v(0)}}}, nil, "order lost"},
		{"not a numbered value", map[int32][]Stored{0: {{0, "hello"}}}, nil, "not stream-seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Verify(tc.stored, tc.acks)
			switch {
			case tc.want == "" && len(r.Problems) > 0:
				t.Errorf("problems %q, want none", r.Problems)
			case tc.want != "" && (len(r.Problems) == 0 || !strings.Contains(r.Problems[0], tc.want)):
				t.Errorf("problems %q, want one containing %q", r.Problems, tc.want)
			}
		})
	}
	if r := Verify(good, goodAcks); r.Records != 5 || r.Acked != 4 || r.Unacked != 1 || r.Partitions != 2 {
		t.Errorf("counts: %+v", r)
	}
}

func TestParseValue(t *testing.T) {
	stream, seq, ok := ParseValue(Value("kill-run", 42))
	if !ok || stream != "kill-run" || seq != 42 {
		t.Errorf("ParseValue(Value(kill-run, 42)) = %q, %d, %v", stream, seq, ok)
	}
	if _, _, ok := ParseValue("noseq"); ok {
		t.Error("ParseValue(noseq) ok")
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(5*time.Second, func() (bool, string) { n++; return n == 3, "not yet" }); err != nil || n != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, n)
	}
	err := Poll(100*time.Millisecond, func() (bool, string) { return false, "never" })
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Errorf("Poll of a false condition = %v, want a timeout naming the reason", err)
	}
}
