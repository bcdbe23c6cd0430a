package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/internal/workload"
)

func TestWriteVerifyReport(t *testing.T) {
	r := &workload.Report{Topic: "t", Partitions: 3, Invoked: 10, Acknowledged: 9, Indeterminate: 1,
		FinalRecords: 7, Reads: map[string]int{"c0": 7, "final": 7}}
	for o := range int64(5) {
		r.Anomalies = append(r.Anomalies, workload.Anomaly{Kind: workload.Lost, Partition: 1, Offset: o, Detail: "gone"})
	}
	r.Anomalies = append(r.Anomalies, workload.Anomaly{Kind: workload.Unseen, Partition: 2, Offset: 4, Detail: "never read by c0"})
	var out strings.Builder
	if err := writeVerifyReport(&out, r, "/tmp/h.jsonl"); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{
		"Topic t, 3 partitions: 10 values produced, 9 acknowledged, 1 indeterminate",
		"Records read: c0 7, final 7.",
		"CHECK          COUNT  EXAMPLES\n",
		"lost           5      partition 1 offset 0: gone\n",
		"                      partition 1 offset 2: gone\n",
		"                      (2 more)\n",
		"duplicated     0      -\n",
		"unseen         1      partition 2 offset 4: never read by c0\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "No anomalies") {
		t.Errorf("a report with anomalies says there are none")
	}

	out.Reset()
	if err := writeVerifyReport(&out, &workload.Report{}, "h"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "\nNo anomalies.\n") {
		t.Errorf("a clean report does not end with 'No anomalies.':\n%s", out.String())
	}
}

func TestVerifyJoinDelay(t *testing.T) {
	p := verifyPlan{duration: 60 * time.Second}
	for _, tc := range []struct {
		k, n  int
		group bool
		want  time.Duration
	}{
		{0, 2, false, 0},
		{0, 2, true, 0},
		{1, 2, false, 20 * time.Second},
		{1, 2, true, 30 * time.Second},
		{2, 3, true, 37500 * time.Millisecond},
	} {
		if got := p.joinDelay(tc.k, tc.n, tc.group); got != tc.want {
			t.Errorf("joinDelay(%d, %d, %v) = %s, want %s", tc.k, tc.n, tc.group, got, tc.want)
		}
	}
}

// A run without a duration (until interrupted) spaces the later
// consumers verifyJoinStep apart.
func TestVerifyJoinDelayUntilInterrupted(t *testing.T) {
	p := verifyPlan{}
	for _, tc := range []struct {
		k, n  int
		group bool
		want  time.Duration
	}{
		{0, 2, false, 0},
		{0, 2, true, 0},
		{1, 2, false, verifyJoinStep},
		{1, 2, true, verifyJoinStep * 3 / 2},
		{2, 3, false, 2 * verifyJoinStep},
	} {
		if got := p.joinDelay(tc.k, tc.n, tc.group); got != tc.want {
			t.Errorf("joinDelay(%d, %d, %v) = %s, want %s", tc.k, tc.n, tc.group, got, tc.want)
		}
	}
}
