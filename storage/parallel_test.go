package storage

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// TestForEachBounded: at most workers calls run at once; the error
// returned is the lowest failing index's whatever the scheduling; with
// stopAtError every index below it still ran, without it every index ran.
func TestForEachBounded(t *testing.T) {
	const n, workers = 1000, 8
	fails := map[int]bool{37: true, 500: true, 900: true}
	for _, stop := range []bool{true, false} {
		for try := 0; try < 20; try++ {
			var running, peak atomic.Int64
			ran := make([]atomic.Bool, n)
			i, err := forEachBounded(n, workers, stop, func(i int) error {
				cur := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
				}
				ran[i].Store(true)
				if fails[i] {
					return fmt.Errorf("index %d failed", i)
				}
				return nil
			})
			if i != 37 || err == nil || err.Error() != "index 37 failed" {
				t.Fatalf("stop %v try %d: got %d, %v; want 37", stop, try, i, err)
			}
			if p := peak.Load(); p > workers {
				t.Fatalf("stop %v: %d calls at once, want at most %d", stop, p, workers)
			}
			for j := 0; j < n; j++ {
				if (j <= 37 || !stop) && !ran[j].Load() {
					t.Fatalf("stop %v: index %d did not run", stop, j)
				}
			}
		}
	}
	if i, err := forEachBounded(0, workers, true, func(int) error { t.Fatal("called"); return nil }); i != -1 || err != nil {
		t.Fatalf("empty: %d, %v", i, err)
	}
}
