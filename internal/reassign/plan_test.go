package reassign

import (
	"strings"
	"testing"
)

func TestParsePlanAndFormat(t *testing.T) {
	in := `{"version":1,"partitions":[
	  {"topic":"b","partition":1,"replicas":[3,1],"log_dirs":["any","any"]},
	  {"topic":"a","partition":0,"replicas":[101,102,104]}
	]}`
	p, err := ParsePlan([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Partitions) != 2 || p.Partitions[0].Topic != "b" || p.Partitions[0].LogDirs[0] != "any" {
		t.Fatalf("parsed %+v", p)
	}
	want := `{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[101,102,104]},{"topic":"b","partition":1,"replicas":[3,1]}]}`
	if got := p.Format(); got != want {
		t.Fatalf("Format:\n got %s\nwant %s", got, want)
	}
	// Format's output parses back to the same assignment.
	back, err := ParsePlan([]byte(p.Format()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Format() != want {
		t.Fatalf("round trip: %s", back.Format())
	}
	a := back.Assignment()
	if r := a[TopicPartition{"a", 0}]; len(r) != 3 || r[2] != 104 {
		t.Fatalf("assignment %v", a)
	}
	if got := a.Plan().Format(); got != want {
		t.Fatalf("Assignment.Plan: %s", got)
	}
	if got := (Assignment{}).Plan().Format(); got != `{"version":1,"partitions":[]}` {
		t.Fatalf("empty plan: %s", got)
	}
}

func TestParsePlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty file", "", "the plan file is empty"},
		{"malformed", "{\"version\":1,\n \"partitions\": [ {\"topic\": \"t\",, } ]}", "malformed plan JSON at line 2, column"},
		{"wrong type", `{"version":1,"partitions":[{"topic":"t","partition":"0","replicas":[1]}]}`, `"partitions.partition" must be int32`},
		{"trailing", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]} {}`, "unexpected data after"},
		{"version", `{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`, "plan version 2 is not supported"},
		{"no version", `{"partitions":[{"topic":"t","partition":0,"replicas":[1]}]}`, "plan version 0 is not supported"},
		{"empty plan", `{"version":1,"partitions":[]}`, "lists no partitions"},
		{"no topic", `{"version":1,"partitions":[{"partition":0,"replicas":[1]}]}`, `partitions[0] has no "topic"`},
		{"negative partition", `{"version":1,"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}`, "partition -1 is negative"},
		{"no replicas", `{"version":1,"partitions":[{"topic":"t","partition":0}]}`, `partitions[0] (t-0) has no "replicas"`},
		{"duplicate broker", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,1]}]}`, "broker 1 is listed twice in 1,2,1"},
		{"negative broker", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,-2]}]}`, "broker id -2 is negative"},
		{"log dirs", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, "1 log_dirs for 2 replicas"},
		{"partition twice", `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"u","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}`,
			"partition t-0 is listed twice (partitions[0] and partitions[2])"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParsePlan(%q) succeeded; want an error containing %q", tc.in, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1048576},
		{"50MB/s", 50_000_000},
		{"50mb/s", 50_000_000},
		{"1MiB/s", 1 << 20},
		{"1 MiB/s", 1 << 20},
		{"512KB", 512_000},
		{"512KiB/sec", 512 << 10},
		{"1.5GiB/s", 3 << 29},
		{"10MBps", 10_000_000},
		{"100B/s", 100},
		{" 2GB ", 2_000_000_000},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "0", "0MB/s", "-5MB/s", "fast", "50XB/s", "/s", "MB/s"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %d; want an error", in, got)
		} else if !strings.Contains(err.Error(), "50MB/s, 1MiB/s or 1048576") {
			t.Errorf("ParseRate(%q) error %q does not say what to give", in, err)
		}
	}
	if got := FormatRate(1 << 20); got != "1.0 MiB/s" {
		t.Errorf("FormatRate = %q", got)
	}
}

func TestThrottleFor(t *testing.T) {
	current := Assignment{
		{"t", 0}: {1, 2, 3},
		{"t", 1}: {2, 3, 1},
		{"t", 2}: {3, 1, 2}, // only reordered: moves no data
		{"u", 0}: {1, 2},
		{"v", 0}: {1}, // not in the plan
	}
	target := Assignment{
		{"t", 0}: {1, 2, 4},
		{"t", 1}: {5, 4, 1},
		{"t", 2}: {1, 2, 3},
		{"u", 0}: {2, 6},
	}
	th := ThrottleFor(current, target)
	want := map[string][2]string{
		"t": {"0:1,0:2,0:3,1:2,1:3,1:1", "0:4,1:5,1:4"},
		"u": {"0:1,0:2", "0:6"},
	}
	if len(th.Leader) != len(want) || len(th.Follower) != len(want) {
		t.Fatalf("throttle %+v", th)
	}
	for topic, w := range want {
		if th.Leader[topic] != w[0] {
			t.Errorf("%s leader throttled replicas %q, want %q", topic, th.Leader[topic], w[0])
		}
		if th.Follower[topic] != w[1] {
			t.Errorf("%s follower throttled replicas %q, want %q", topic, th.Follower[topic], w[1])
		}
	}
	if got := FormatIDs(th.Brokers); got != "1,2,3,4,5,6" {
		t.Errorf("brokers %s", got)
	}
	if got := strings.Join(th.Topics(), ","); got != "t,u" {
		t.Errorf("topics %s", got)
	}
	if th := ThrottleFor(current, Assignment{{"t", 2}: {1, 2, 3}}); len(th.Leader)+len(th.Follower)+len(th.Brokers) != 0 {
		t.Errorf("a reorder is throttled: %+v", th)
	}
}
