package storage

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// DefaultRecoveryThreads is the default Config.RecoveryThreads:
// min(GOMAXPROCS*2, 16). Opening a log is mostly waiting on the disk
// (reads, and fsyncs when recovering), so twice the cores keeps them busy
// without an unbounded number of open files in flight.
func DefaultRecoveryThreads() int {
	return min(runtime.GOMAXPROCS(0)*2, 16)
}

// forEachBounded calls fn(i) for every i in [0, n) on at most workers
// goroutines and waits for all of them. Indexes are handed out in
// increasing order. It returns the lowest index whose call failed and its
// error (-1, nil when none did), so the error reported does not depend on
// scheduling: it is the one a sequential loop would have met first. With
// stopAtError, indexes above a failed one are not started (every index
// below it was handed out already, so the lowest failure is still found);
// without it every index runs.
func forEachBounded(n, workers int, stopAtError bool, fn func(i int) error) (int, error) {
	workers = max(1, min(workers, n))
	errs := make([]error, n)
	var next atomic.Int64
	// failed is the lowest index known to have failed (n: none yet).
	var failed atomic.Int64
	failed.Store(int64(n))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || (stopAtError && i > failed.Load()) {
					return
				}
				if errs[i] = fn(int(i)); errs[i] != nil {
					for {
						cur := failed.Load()
						if i >= cur || failed.CompareAndSwap(cur, i) {
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return -1, nil
}
