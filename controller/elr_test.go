package controller

import (
	"slices"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// elrStep is one decision in an ELR scenario, on partition 0 of topic "t"
// of electionImage.
type elrStep struct {
	op   string // fence, unfence, unclean (registration without a clean shutdown), alter, elect
	id   int32  // the broker of fence, unfence and unclean
	isr  []int32
	want string // partition 0 after the step, as applied prints it
}

// runELR applies steps in order; fenced are the brokers fenced at the
// start. Fencing sets the broker fenced, unfence and alter-free steps keep
// the flags, an unclean registration leaves the broker fenced (it
// registers fenced) until an unfence step.
func runELR(t *testing.T, fenced []int32, configs map[string]string, part string, steps []elrStep) {
	t.Helper()
	img := electionImage(t, fenced, configs, part)
	for i, st := range steps {
		next := img.Clone()
		var recs []record
		switch st.op {
		case "fence":
			next.Brokers[st.id].Fenced = true
			recs = fenceDecision(next, st.id, liveExcept(next, st.id))
		case "unclean":
			next.Brokers[st.id].Fenced = true
			next.Brokers[st.id].Epoch += 100
			recs = uncleanRestartDecision(next, st.id, liveExcept(next, st.id))
		case "unfence":
			next.Brokers[st.id].Fenced = false
			recs = unfenceDecision(next, st.id, liveExcept(next))
		case "elect":
			recs = electLeaderless(next, liveExcept(next))
		case "alter":
			p := next.Topics["t"].Partitions[0]
			s, _ := transition(p, st.isr, nil, policyOf(next, next.Topics["t"]), liveExcept(next))
			if rec, ok := changeTo(next.Topics["t"], p, s); ok {
				recs = append(recs, rec)
			}
		default:
			t.Fatalf("step %d: op %q", i, st.op)
		}
		if len(recs) > 0 {
			var err error
			if next, err = applyEntry(next, next.Index+1, entry{Records: recs}); err != nil {
				t.Fatalf("step %d (%s %d): %v", i, st.op, st.id, err)
			}
		}
		img = next
		got := applied(t, img, nil)[0]
		if got != st.want {
			t.Fatalf("step %d (%s %d %v): got %s, want %s", i, st.op, st.id, st.isr, got, st.want)
		}
		checkELRInvariants(t, img)
	}
}

// checkELRInvariants: the ELR is disjoint from the ISR and within the
// replicas, and empty once the ISR reaches min.insync.replicas; a leader is
// in the ISR.
func checkELRInvariants(t *testing.T, img *image.Image) {
	t.Helper()
	top := img.Topics["t"]
	for _, p := range top.Partitions {
		for _, r := range p.ELR {
			if slices.Contains(p.ISR, r) || !slices.Contains(p.Replicas, r) {
				t.Fatalf("ELR %v vs ISR %v replicas %v", p.ELR, p.ISR, p.Replicas)
			}
		}
		if len(p.ISR) >= minInsync(img, top) && (len(p.ELR) > 0 || len(p.LastKnownELR) > 0) {
			t.Fatalf("ISR %v at min.insync.replicas but ELR %v last known %v", p.ISR, p.ELR, p.LastKnownELR)
		}
		if p.Leader != -1 && !slices.Contains(p.ISR, p.Leader) {
			t.Fatalf("leader %d not in ISR %v", p.Leader, p.ISR)
		}
	}
}

func TestELR(t *testing.T) {
	min2 := map[string]string{minInsyncConfig: "2"}
	min1 := map[string]string{minInsyncConfig: "1"}
	for _, tc := range []struct {
		name    string
		fenced  []int32
		configs map[string]string
		part    string
		steps   []elrStep
	}{
		{"the issue's scenario: the uncleanly restarted last ISR member is not elected; the ELR member is",
			nil, min2, "1,2/1,2/1", []elrStep{
				{op: "fence", id: 2, want: "1,2/1/1/2 e5 p8"},
				{op: "unclean", id: 1, want: "1,2//-1/2/1 e6 p9"},
				{op: "unfence", id: 1, want: "1,2//-1/2/1 e6 p9"}, // 1 live but not eligible
				{op: "elect", want: "1,2//-1/2/1 e6 p9"},
				{op: "unfence", id: 2, want: "1,2/2/2//1 e7 p10"},
				{op: "alter", isr: []int32{2, 1}, want: "1,2/2,1/2 e7 p11"}, // caught up: ELR state cleared
			}},
		{"RF 3: a replica that left while the ISR was at the minimum is not eligible",
			nil, min2, "1,2,3/1,2,3/1", []elrStep{
				{op: "fence", id: 3, want: "1,2,3/1,2/1 e5 p8"},
				{op: "fence", id: 2, want: "1,2,3/1/1/2 e5 p9"},
				{op: "fence", id: 1, want: "1,2,3//-1/1,2 e6 p10"},
				{op: "unfence", id: 3, want: "1,2,3//-1/1,2 e6 p10"},
				{op: "unclean", id: 1, want: "1,2,3//-1/2/1 e6 p11"},
				{op: "unfence", id: 2, want: "1,2,3/2/2//1 e7 p12"},
			}},
		{"clean return of the last ISR member: elected from the ELR",
			nil, min2, "1,2/1/1", []elrStep{
				{op: "fence", id: 1, want: "1,2//-1/1 e6 p8"},
				{op: "unfence", id: 1, want: "1,2/1/1 e7 p9"},
			}},
		{"shrink below the minimum: removed replicas join the ELR; expansion clears it",
			nil, min2, "1,2,3/1,2/1", []elrStep{
				{op: "alter", isr: []int32{1}, want: "1,2,3/1/1/2 e5 p8"},
				{op: "alter", isr: []int32{1, 3}, want: "1,2,3/1,3/1 e5 p9"},
			}},
		{"a replica rejoining the ISR leaves the ELR",
			nil, map[string]string{minInsyncConfig: "3"}, "1,2,3/1/1/2,3", []elrStep{
				{op: "alter", isr: []int32{1, 2}, want: "1,2,3/1,2/1/3 e5 p8"},
			}},
		{"min.insync.replicas=1: no ELR while one member is in the ISR",
			nil, min1, "1,2/1,2/1", []elrStep{
				{op: "fence", id: 2, want: "1,2/1/1 e5 p8"},
				{op: "fence", id: 1, want: "1,2//-1/1 e6 p9"},
			}},
		{"last replica standing: the sole last known member leads again",
			[]int32{2}, min1, "1,2/1/1", []elrStep{
				{op: "unclean", id: 1, want: "1,2//-1//1 e6 p8"},
				{op: "unfence", id: 1, want: "1,2/1/1 e7 p9"},
			}},
		{"every eligible replica restarted uncleanly: the last leader, not another, leads again",
			nil, min2, "1,2/1/1/2", []elrStep{
				{op: "unclean", id: 2, want: "1,2/1/1//2 e5 p8"},
				{op: "unclean", id: 1, want: "1,2//-1//1,2 e6 p9"},
				{op: "unfence", id: 2, want: "1,2//-1//1,2 e6 p9"},
				{op: "unfence", id: 1, want: "1,2/1/1 e7 p10"},
			}},
		{"whole-cluster power loss, fast restarts: the last leader leads again",
			nil, min2, "1,2,3/1,2,3/1", []elrStep{
				{op: "unclean", id: 1, want: "1,2,3/2,3/2 e6 p8"},
				{op: "unclean", id: 2, want: "1,2,3/3/3//2 e7 p9"},
				{op: "unclean", id: 3, want: "1,2,3//-1//3,2 e8 p10"},
				{op: "unfence", id: 1, want: "1,2,3//-1//3,2 e8 p10"},
				{op: "unfence", id: 2, want: "1,2,3//-1//3,2 e8 p10"},
				{op: "unfence", id: 3, want: "1,2,3/3/3 e9 p11"},
			}},
		{"whole-cluster power loss, fenced first: a replica that held every committed record leads again",
			nil, min2, "1,2,3/1,2,3/1", []elrStep{
				{op: "fence", id: 1, want: "1,2,3/2,3/2 e6 p8"},
				{op: "fence", id: 2, want: "1,2,3/3/3/2 e7 p9"},
				{op: "fence", id: 3, want: "1,2,3//-1/2,3 e8 p10"},
				{op: "unclean", id: 1, want: "1,2,3//-1/2,3 e8 p10"},
				{op: "unclean", id: 2, want: "1,2,3//-1/3/2 e8 p11"},
				{op: "unclean", id: 3, want: "1,2,3//-1//2,3 e8 p12"},
				{op: "unfence", id: 1, want: "1,2,3//-1//2,3 e8 p12"},
				{op: "unfence", id: 2, want: "1,2,3/2/2 e9 p13"},
			}},
		{"unclean election allowed: only when no ISR or ELR member is live; it clears the ELR",
			[]int32{1, 2}, map[string]string{minInsyncConfig: "2", uncleanConfig: "true"}, "1,2,3//-1/2/1", []elrStep{
				{op: "elect", want: "1,2,3/3/3 e6 p8"},
			}},
		{"elected from the ELR: ISR members not live join the ELR",
			[]int32{1}, map[string]string{minInsyncConfig: "3"}, "1,2,3/1/-1/2", []elrStep{
				{op: "elect", want: "1,2,3/2/2/1 e6 p8"},
			}},
		{"an ELR member restarting uncleanly leaves the ELR",
			nil, min2, "1,2,3/1/1/2,3", []elrStep{
				{op: "unclean", id: 3, want: "1,2,3/1/1/2/3 e5 p8"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { runELR(t, tc.fenced, tc.configs, tc.part, tc.steps) })
	}
}

// TestELRRecordJSON: records without the ELR fields (written before them)
// leave the ELR unchanged; an explicit empty list empties it; an empty ISR
// is expressible; an entry leaving ISR and ELR overlapping is discarded.
func TestELRRecordJSON(t *testing.T) {
	img := electionImage(t, nil, map[string]string{minInsyncConfig: "3"}, "1,2,3/1/1/2,3")
	const head = `{"type":"ChangePartition","change_partition":{"topic_id":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partition":0`
	for _, tc := range []struct {
		body string
		want string // "" : discarded
	}{
		{`,"leader":-1}`, "1,2,3/1/-1/2,3 e6 p8"}, // no ELR field: unchanged
		{`,"elr":[]}`, "1,2,3/1/1 e5 p8"},
		{`,"leader":-1,"isr":[],"elr":[1,2,3]}`, "1,2,3//-1/1,2,3 e6 p8"},
		{`,"isr":[1,2,3],"elr":[]}`, "1,2,3/1,2,3/1 e5 p8"},
		{`,"isr":[1,2]}`, ""}, // old format, but 2 is in the ELR
	} {
		e, err := decodeEntry([]byte(`{"records":[` + head + tc.body + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		next, err := applyEntry(img, 1, e)
		got := applied(t, next, nil)[0]
		switch {
		case tc.want == "" && err == nil:
			t.Fatalf("%s: applied (%s), want discarded", tc.body, got)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Fatalf("%s: got %s (%v), want %s", tc.body, got, err, tc.want)
		}
	}
}

// TestMinInsyncChangeClearsELR: a change of a topic's effective
// min.insync.replicas (its own or the cluster default) empties its ELRs;
// other topics and other configs leave them.
func TestMinInsyncChangeClearsELR(t *testing.T) {
	before := electionImage(t, nil, map[string]string{minInsyncConfig: "3"}, "1,2,3/1/1/2,3", "1,2,3/1,2/1/3/")
	for _, tc := range []struct {
		name   string
		change func(img *image.Image)
		want   []string
	}{
		{"lowered", func(img *image.Image) { img.Topics["t"].Configs = map[string]string{minInsyncConfig: "2"} },
			[]string{"1,2,3/1/1 e5 p8", "1,2,3/1,2/1 e5 p8"}},
		{"another config", func(img *image.Image) {
			img.Topics["t"].Configs = map[string]string{minInsyncConfig: "3", "retention.ms": "1"}
		},
			[]string{"1,2,3/1/1/2,3 e5 p7", "1,2,3/1,2/1/3 e5 p7"}},
		{"cluster default, topic's own set", func(img *image.Image) { img.BrokerConfigs[minInsyncConfig] = "1" },
			[]string{"1,2,3/1/1/2,3 e5 p7", "1,2,3/1,2/1/3 e5 p7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := before.Clone()
			tc.change(after)
			if got := applied(t, before, minInsyncChangeDecision(before, after)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
