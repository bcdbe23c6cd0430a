package image

import (
	"slices"
	"testing"
)

func TestParseThrottledReplicas(t *testing.T) {
	for _, tc := range []struct {
		in    string
		all   bool
		pairs []ReplicaRef
		bad   bool
	}{
		{in: ""},
		{in: "  "},
		{in: "*", all: true},
		{in: " * ", all: true},
		{in: "0:101", pairs: []ReplicaRef{{0, 101}}},
		{in: "0:101, 1:102 ,2:103", pairs: []ReplicaRef{{0, 101}, {1, 102}, {2, 103}}},
		{in: "0:101,,1:102", pairs: []ReplicaRef{{0, 101}, {1, 102}}},
		{in: "0-101", bad: true},
		{in: "0:101:1", bad: true},
		{in: "a:101", bad: true},
		{in: "-1:101", bad: true},
		{in: "0:+101", bad: true},
		{in: "*,0:101", bad: true},
		{in: "0:99999999999", bad: true},
		{in: "0 :101", bad: true},
	} {
		got, err := ParseThrottledReplicas(tc.in)
		if (err != nil) != tc.bad {
			t.Fatalf("%q: error %v, want bad %v", tc.in, err, tc.bad)
		}
		if tc.bad {
			if ValidateTopicConfig(LeaderThrottledReplicasConfig, tc.in) == nil {
				t.Fatalf("%q accepted as %s", tc.in, LeaderThrottledReplicasConfig)
			}
			continue
		}
		if got.All != tc.all || !slices.Equal(got.Pairs, tc.pairs) {
			t.Fatalf("%q: got %+v, want all %v pairs %v", tc.in, got, tc.all, tc.pairs)
		}
		if err := ValidateTopicConfig(FollowerThrottledReplicasConfig, tc.in); err != nil {
			t.Fatalf("%q refused: %v", tc.in, err)
		}
	}
	r, _ := ParseThrottledReplicas("1:101,0:101,1:101,0:102")
	if all, parts := r.Partitions(101); all || !slices.Equal(parts, []int32{0, 1}) {
		t.Fatalf("partitions of 101: %v %v", all, parts)
	}
	if all, parts := r.Partitions(103); all || parts != nil {
		t.Fatalf("partitions of 103: %v %v", all, parts)
	}
	if !r.Has(0, 102) || r.Has(1, 102) {
		t.Fatal("Has")
	}
	if all, _ := (ThrottledReplicas{All: true}).Partitions(7); !all {
		t.Fatal("* is not all")
	}
}

func TestValidateDynamicBrokerConfig(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{LeaderThrottledRateConfig, "0", true},
		{LeaderThrottledRateConfig, "1048576", true},
		{FollowerThrottledRateConfig, "9223372036854775807", true},
		{FollowerThrottledRateConfig, "-1", false},
		{FollowerThrottledRateConfig, "1MB", false},
		{FollowerThrottledRateConfig, "", false},
		{"log.retention.ms", "1", false},
	} {
		if err := ValidateDynamicBrokerConfig(tc.key, tc.value); (err == nil) != tc.ok {
			t.Errorf("%s=%q: error %v, want ok %v", tc.key, tc.value, err, tc.ok)
		}
	}
}
