package reassign

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// brokers returns brokers ids with racks assigned round-robin from racks
// (none when racks is 0).
func brokers(racks int, ids ...int32) []Broker {
	out := make([]Broker, len(ids))
	for i, id := range ids {
		out[i] = Broker{ID: id}
		if racks > 0 {
			out[i].Rack = fmt.Sprintf("r%d", i%racks)
		}
	}
	return out
}

// randomAssignment places topics x partitions of rf replicas randomly over
// ids.
func randomAssignment(rng *rand.Rand, topics, partitions, rf int, ids []int32) Assignment {
	a := Assignment{}
	for t := range topics {
		for p := range partitions {
			perm := rng.Perm(len(ids))
			r := make([]int32, rf)
			for i := range r {
				r[i] = ids[perm[i]]
			}
			a[TopicPartition{fmt.Sprintf("t%d", t), int32(p)}] = r
		}
	}
	return a
}

// checkTarget checks the properties every plan has: each partition keeps
// its replication factor, has no duplicate and uses only allowed brokers;
// with racks, no two replicas share a rack while there are enough racks.
func checkTarget(t *testing.T, current, target Assignment, allowed []Broker, rackAware bool) {
	t.Helper()
	rack := map[int32]string{}
	racks := map[string]bool{}
	for _, b := range allowed {
		rack[b.ID] = b.Rack
		racks[b.Rack] = true
	}
	for tp, r := range target {
		cur, ok := current[tp]
		if !ok {
			t.Fatalf("%s is planned but was not asked for", tp)
		}
		if len(r) != len(cur) {
			t.Fatalf("%s: %d replicas %v, had %d %v", tp, len(r), r, len(cur), cur)
		}
		if err := CheckBrokerList(r); err != nil {
			t.Fatalf("%s: %v", tp, err)
		}
		used := map[string]int{}
		for _, id := range r {
			if _, ok := rack[id]; !ok {
				t.Fatalf("%s: replicas %v use broker %d, not allowed", tp, r, id)
			}
			used[rack[id]]++
		}
		if rackAware {
			limit := (len(r) + len(racks) - 1) / len(racks)
			for rk, n := range used {
				if n > limit {
					t.Fatalf("%s: replicas %v put %d on rack %s (limit %d)", tp, r, n, rk, limit)
				}
			}
		}
	}
}

// spread returns max-min of the counts over ids (0 for missing ids).
func spread(counts map[int32]int, ids []int32) int {
	lo, hi := -1, -1
	for _, id := range ids {
		n := counts[id]
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return hi - lo
}

func ids(bs []Broker) []int32 {
	out := make([]int32, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

func TestGenerateMovesOntoNewBrokers(t *testing.T) {
	// Six partitions of RF 3 on 101,102,103, moved onto 101,102,104:
	// every replica on 103 goes to 104, nothing else moves.
	current := Assignment{}
	for p := range int32(6) {
		r := []int32{101, 102, 103}
		for range p % 3 {
			r = append(r[1:], r[0])
		}
		current[TopicPartition{"t", p}] = r
	}
	allowed := brokers(0, 101, 102, 104)
	target, err := Generate(current, allowed, false)
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, current, target, allowed, false)
	if got := Moves(current, target); got != 6 {
		t.Errorf("moves %d, want 6 (the replicas on 103)", got)
	}
	for tp, r := range target {
		if slices.Contains(r, 103) || !slices.Contains(r, 104) {
			t.Errorf("%s: %v", tp, r)
		}
	}
	_, leaders := Loads(target)
	if s := spread(leaders, ids(allowed)); s > 1 {
		t.Errorf("preferred leaders %v spread by %d", leaders, s)
	}
	// Where 103 led, the new leader must not be 104 on every partition.
	again, _ := Generate(current, allowed, false)
	if again.Plan().Format() != target.Plan().Format() {
		t.Errorf("not deterministic:\n%s\n%s", target.Plan().Format(), again.Plan().Format())
	}
}

func TestGenerateProperties(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		all := []int32{1, 2, 3, 4, 5, 6, 7, 8}
		nb := 3 + rng.IntN(4)
		rf := 1 + rng.IntN(3)
		current := randomAssignment(rng, 1+rng.IntN(3), 1+rng.IntN(12), rf, all[:nb])
		// Allowed: a random subset of at least rf brokers, maybe new ones.
		perm := rng.Perm(len(all))
		n := rf + rng.IntN(len(all)-rf+1)
		var allowedIDs []int32
		for _, i := range perm[:n] {
			allowedIDs = append(allowedIDs, all[i])
		}
		rackAware := rng.IntN(2) == 0
		racks := 0
		if rackAware {
			racks = 1 + rng.IntN(4)
		}
		allowed := brokers(racks, allowedIDs...)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			target, err := Generate(current, allowed, rackAware)
			if err != nil {
				t.Fatal(err)
			}
			if len(target) != len(current) {
				t.Fatalf("planned %d of %d partitions", len(target), len(current))
			}
			checkTarget(t, current, target, allowed, rackAware)
			// Minimal movement: a replica on an allowed broker stays
			// unless its rack is over its share.
			if !rackAware {
				ok := map[int32]bool{}
				for _, id := range allowedIDs {
					ok[id] = true
				}
				want := 0
				for _, r := range current {
					for _, id := range r {
						if !ok[id] {
							want++
						}
					}
				}
				if got := Moves(current, target); got != want {
					t.Fatalf("moves %d, want %d (the replicas on brokers not allowed)", got, want)
				}
			}
			again, err := Generate(current, slices.Clone(allowed), rackAware)
			if err != nil || again.Plan().Format() != target.Plan().Format() {
				t.Fatalf("not deterministic: %v", err)
			}
			// Planning the plan again changes nothing.
			if c := Changes(target, mustGenerate(t, target, allowed, rackAware)); len(c) != 0 {
				t.Fatalf("a second generate changes %v", c)
			}
		})
	}
}

func mustGenerate(t *testing.T, current Assignment, allowed []Broker, rackAware bool) Assignment {
	t.Helper()
	a, err := Generate(current, allowed, rackAware)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGenerateRackAware(t *testing.T) {
	// Everything on rack r0's brokers; three racks available.
	current := Assignment{}
	for p := range int32(9) {
		current[TopicPartition{"t", p}] = []int32{1, 4, 7}
	}
	allowed := brokers(3, 1, 2, 3, 4, 5, 6, 7, 8, 9) // r0: 1,4,7  r1: 2,5,8  r2: 3,6,9
	target := mustGenerate(t, current, allowed, true)
	checkTarget(t, current, target, allowed, true)
	for tp, r := range target {
		if !slices.Contains([]int32{1, 4, 7}, r[0]) && Moves(Assignment{tp: current[tp]}, Assignment{tp: r}) != 2 {
			t.Errorf("%s: %v", tp, r)
		}
	}
	if got := Moves(current, target); got != 18 {
		t.Errorf("moves %d, want 18: two replicas of each partition leave rack r0", got)
	}
	replicas, _ := Loads(target)
	if s := spread(replicas, []int32{2, 3, 5, 6, 8, 9}); s > 1 {
		t.Errorf("new replicas spread by %d: %v", s, replicas)
	}
	// Fewer racks than replicas: at most ceil(3/2) = 2 per rack.
	two := brokers(2, 1, 2, 3, 4)
	target = mustGenerate(t, Assignment{{"t", 0}: {1, 3, 2}}, two, true) // 1,3 on r0
	checkTarget(t, Assignment{{"t", 0}: {1, 3, 2}}, target, two, true)
	if Moves(Assignment{{"t", 0}: {1, 3, 2}}, target) != 0 {
		t.Errorf("moved %v though two racks allow two replicas on one", target)
	}
}

func TestGenerateErrors(t *testing.T) {
	current := Assignment{{"orders", 0}: {1, 2, 3}}
	for _, tc := range []struct {
		name      string
		brokers   []Broker
		rackAware bool
		want      string
	}{
		{"rf above brokers", brokers(0, 1, 2), false, "orders-0 has 3 replicas but only 2 broker(s) (1,2) may hold them: give at least 3 brokers"},
		{"duplicate broker", []Broker{{ID: 1}, {ID: 2}, {ID: 1}}, false, "broker 1 is listed twice"},
		{"no racks", []Broker{{ID: 1, Rack: "a"}, {ID: 2}, {ID: 3, Rack: "b"}}, true, "broker 2 has none"},
		{"no brokers", nil, false, "no broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(current, tc.brokers, tc.rackAware)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Generate(Assignment{}, brokers(0, 1), false); err == nil {
		t.Fatal("planning no partitions succeeded")
	}
}

func TestDecommission(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		nb := 3 + rng.IntN(5)
		all := make([]int32, nb)
		for i := range all {
			all[i] = int32(101 + i)
		}
		rf := 1 + rng.IntN(min(3, nb-1))
		racks := []int{0, 0, 2, 3}[rng.IntN(4)]
		live := brokers(racks, all...)
		var current Assignment
		if racks > 0 {
			// Start from a rack-correct assignment.
			current = mustGenerate(t, randomAssignment(rng, 2, 1+rng.IntN(10), rf, all), live, true)
		} else {
			current = randomAssignment(rng, 2, 1+rng.IntN(10), rf, all)
		}
		gone := all[rng.IntN(nb)]
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			changes, err := Decommission(current, live, gone)
			if err != nil {
				t.Fatal(err)
			}
			var rest []Broker
			for _, b := range live {
				if b.ID != gone {
					rest = append(rest, b)
				}
			}
			checkTarget(t, current, changes, rest, racks > 0)
			want := 0
			for tp, r := range current {
				if slices.Contains(r, gone) {
					want++
					if _, ok := changes[tp]; !ok {
						t.Fatalf("%s %v keeps a replica on %d", tp, r, gone)
					}
				}
			}
			if len(changes) != want {
				t.Fatalf("%d partitions change, want %d (those on %d)", len(changes), want, gone)
			}
			if got := Moves(current, changes); got != want {
				t.Fatalf("moves %d, want %d", got, want)
			}
			for tp, r := range changes {
				cur := current[tp]
				if cur[0] != gone && r[0] != cur[0] {
					t.Fatalf("%s: leader changed %v -> %v though %d did not lead", tp, cur, r, gone)
				}
			}
			again, _ := Decommission(current, live, gone)
			if again.Plan().Format() != changes.Plan().Format() {
				t.Fatal("not deterministic")
			}
			// The new replicas go to the least loaded brokers: after the
			// move no broker that received one holds more than one above
			// the least loaded broker that did not.
			after, _ := Loads(Merge(current, changes))
			if racks == 0 && rf == 1 { // with rf 1 every other broker may take a replica
				before, _ := Loads(current)
				lo := -1
				for _, b := range rest {
					if n := after[b.ID]; after[b.ID] == before[b.ID] && (lo < 0 || n < lo) {
						lo = n
					}
				}
				for _, b := range rest {
					if after[b.ID] > before[b.ID] && lo >= 0 && after[b.ID] > lo+1 {
						t.Fatalf("broker %d got replicas up to %d while broker(s) at %d got none: %v -> %v", b.ID, after[b.ID], lo, before, after)
					}
				}
			}
		})
	}
}

func TestDecommissionErrors(t *testing.T) {
	current := Assignment{{"t", 0}: {1, 2, 3}}
	if _, err := Decommission(current, brokers(0, 1, 2, 3), 3); err == nil ||
		!strings.Contains(err.Error(), "t-0 has 3 replicas but only 2 broker(s)") {
		t.Fatalf("error %v", err)
	}
	if _, err := Decommission(current, brokers(0, 1, 2, 3), 9); err == nil || !strings.Contains(err.Error(), "broker 9 is not a live broker") {
		t.Fatalf("error %v", err)
	}
	// A live broker without replicas: nothing to do.
	if c, err := Decommission(current, brokers(0, 1, 2, 3, 4), 4); err != nil || len(c) != 0 {
		t.Fatalf("%v %v", c, err)
	}
}

func TestRebalance(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 13))
		nb := 2 + rng.IntN(6)
		all := make([]int32, nb)
		for i := range all {
			all[i] = int32(1 + i)
		}
		rf := 1 + rng.IntN(min(3, nb))
		// Skewed: everything on the first rf+k brokers, then new ones join.
		on := rf + rng.IntN(nb-rf+1)
		current := randomAssignment(rng, 1+rng.IntN(3), 1+rng.IntN(20), rf, all[:on])
		live := brokers(0, all...)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			changes, err := Rebalance(current, live)
			if err != nil {
				t.Fatal(err)
			}
			checkTarget(t, current, changes, live, false)
			after := Merge(current, changes)
			replicas, leaders := Loads(after)
			if s := spread(replicas, all); s > 1 {
				t.Fatalf("replica counts %v spread by %d", replicas, s)
			}
			if s := spread(leaders, all); s > 1 {
				t.Fatalf("leader counts %v spread by %d\n%v", leaders, s, after)
			}
			// As few moves as possible.
			if got, want := Moves(current, changes), minMoves(current, all); got != want {
				t.Fatalf("moves %d, want %d", got, want)
			}
			// Balanced now: a second rebalance changes nothing.
			if c, err := Rebalance(after, live); err != nil || len(c) != 0 {
				t.Fatalf("second rebalance: %v %v", c, err)
			}
			again, _ := Rebalance(current, live)
			if again.Plan().Format() != changes.Plan().Format() {
				t.Fatal("not deterministic")
			}
		})
	}
}

// minMoves is the fewest replica moves that bring the counts over ids
// within one of each other: the brokers with the most replicas end at the
// ceiling of the average, the others at its floor, and every replica above
// a broker's final count moves.
func minMoves(current Assignment, ids []int32) int {
	before, _ := Loads(current)
	counts := make([]int, len(ids))
	total := 0
	for i, id := range ids {
		counts[i] = before[id]
		total += counts[i]
	}
	slices.Sort(counts)
	slices.Reverse(counts)
	lo := total / len(ids)
	atHi := total - lo*len(ids)
	moves := 0
	for i, n := range counts {
		final := lo
		if i < atHi {
			final = lo + 1
		}
		moves += max(0, n-final)
	}
	return moves
}

func TestRebalanceBalancedIsEmpty(t *testing.T) {
	current := Assignment{
		{"t", 0}: {1, 2, 3},
		{"t", 1}: {2, 3, 1},
		{"t", 2}: {3, 1, 2},
		{"u", 0}: {1, 2},
		{"u", 1}: {3, 1},
		{"u", 2}: {2, 3},
	}
	c, err := Rebalance(current, brokers(0, 1, 2, 3))
	if err != nil || len(c) != 0 {
		t.Fatalf("balanced cluster: changes %v, %v", c, err)
	}
}

func TestRebalanceNewBrokerAndFencedOne(t *testing.T) {
	// 4 partitions RF 2 on 1,2 and one replica on 9, not live: 9's replica
	// must move, and broker 3 (new) takes its share.
	current := Assignment{
		{"t", 0}: {1, 2},
		{"t", 1}: {2, 1},
		{"t", 2}: {1, 2},
		{"t", 3}: {2, 9},
	}
	live := brokers(0, 1, 2, 3)
	changes, err := Rebalance(current, live)
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, current, changes, live, false)
	replicas, leaders := Loads(Merge(current, changes))
	if replicas[9] != 0 || spread(replicas, []int32{1, 2, 3}) > 1 || spread(leaders, []int32{1, 2, 3}) > 1 {
		t.Fatalf("after %v: replicas %v leaders %v", Merge(current, changes), replicas, leaders)
	}
	if got := Moves(current, changes); got != 2 {
		t.Fatalf("moves %d, want 2 (9's replica and one more to reach 3,3,2)", got)
	}
}

func TestRebalanceRacks(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 17))
		all := []int32{1, 2, 3, 4, 5, 6}
		live := brokers(3, all...)
		current := mustGenerate(t, randomAssignment(rng, 2, 1+rng.IntN(15), 3, all[:3]), brokers(3, all[:3]...), true)
		changes, err := Rebalance(current, live)
		if err != nil {
			t.Fatal(err)
		}
		checkTarget(t, current, changes, live, true)
		replicas, _ := Loads(Merge(current, changes))
		if s := spread(replicas, all); s > 1 {
			t.Fatalf("seed %d: replica counts %v spread by %d", seed, replicas, s)
		}
	}
}

func TestGenerateChangesFewLeaders(t *testing.T) {
	// 103 leaves; it led a-2 only. Kept leaders are counted before a-2
	// gets one, so a-2 goes to 102 (one leadership) instead of 101 (two),
	// and no other partition's leader moves.
	current := Assignment{
		{"a", 0}: {101, 102},
		{"a", 1}: {102, 103},
		{"a", 2}: {103, 101},
		{"a", 3}: {101, 102},
	}
	target := mustGenerate(t, current, brokers(0, 101, 102), false)
	changes := Changes(current, target)
	want := `{"version":1,"partitions":[{"topic":"a","partition":1,"replicas":[102,101]},{"topic":"a","partition":2,"replicas":[102,101]}]}`
	if got := changes.Plan().Format(); got != want {
		t.Fatalf("changes\n got %s\nwant %s", got, want)
	}
}

func TestDecommissionKeepsReplicasOnDeadBrokers(t *testing.T) {
	// Broker 9 is not live; decommissioning 1 moves only 1's replicas and
	// leaves the ones on 9 alone (moving them is rebalance's job).
	current := Assignment{
		{"t", 0}: {1, 9},
		{"t", 1}: {9, 2},
		{"t", 2}: {2, 1},
	}
	changes, err := Decommission(current, brokers(0, 1, 2, 3), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[3,9]},{"topic":"t","partition":2,"replicas":[2,3]}]}`
	if got := changes.Plan().Format(); got != want {
		t.Fatalf("changes\n got %s\nwant %s", got, want)
	}
	// Only broker 2 is left, and it leads more partitions than the dead
	// 9: t-0 goes to [2,9], still led by a live broker.
	current = Assignment{
		{"t", 0}: {1, 9},
		{"u", 0}: {2},
		{"u", 1}: {2},
	}
	changes, err = Decommission(current, brokers(0, 1, 2), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(changes[TopicPartition{"t", 0}]); got != "[2 9]" {
		t.Fatalf("t-0 -> %s, want [2 9]", got)
	}
}
