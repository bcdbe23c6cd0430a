package reassign

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRebalanceScale: 6,000 partitions of RF 3 on 12 brokers, 3 new
// brokers join; the plan must be balanced, minimal and quick (without
// racks: with them, the random start also has rack conflicts to fix).
func TestRebalanceScale(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var old, all []int32
	for id := int32(1); id <= 15; id++ {
		all = append(all, id)
		if id <= 12 {
			old = append(old, id)
		}
	}
	current := randomAssignment(rng, 20, 300, 3, old)
	start := time.Now()
	changes, err := Rebalance(current, brokers(0, all...))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	replicas, leaders := Loads(Merge(current, changes))
	t.Logf("rebalance of %d partitions over %d brokers: %d partitions change, %d replicas move (minimum %d), %v",
		len(current), len(all), len(changes), Moves(current, changes), minMoves(current, all), took)
	if spread(replicas, all) > 1 || spread(leaders, all) > 1 {
		t.Fatalf("replicas %v leaders %v", replicas, leaders)
	}
	if got, want := Moves(current, changes), minMoves(current, all); got != want {
		t.Fatalf("moves %d, want %d", got, want)
	}
	if took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
}
