// Package heaptune keeps the Go garbage collector from running many times
// a second on a small heap. With Go's default (GOGC=100) a broker whose
// live heap is 5 MB collects every 5 MB allocated: at 20 MB/s of produce
// traffic that is about fifteen collections a second, each a burst of
// mark work and assists on the request path. Keep raises the collector's
// percentage while the live heap is small, so the next collection comes
// after at least a fixed headroom of allocation; once the live heap is
// large the default percentage already gives that headroom and applies
// unchanged. Memory cost: at most the headroom of extra garbage.
package heaptune

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/hashicorp/go-hclog"
)

// basePercent is Go's default GOGC.
const basePercent = 100

// minHeap is the runtime's minimum heap size at GOGC=100.
const minHeap = 4 << 20

// interval is how often the live heap is re-read.
const interval = 2 * time.Second

// Percent is the GC percentage that makes the heap goal at least live +
// headroom, and never below the default.
func Percent(live, headroom uint64) int {
	// Go never sets a heap goal below 4 MB x GOGC/100, so a smaller
	// (or not yet measured) live heap counts as 4 MB.
	live = max(live, minHeap)
	p := headroom * 100 / live
	if p < basePercent {
		return basePercent
	}
	return int(p)
}

// Keep adjusts the GC percentage every few seconds until ctx ends, for a
// heap goal of at least live + headroom bytes. It does nothing when
// headroom is 0 or when GOGC is set in the environment (the operator's
// choice wins).
func Keep(ctx context.Context, headroom uint64, log hclog.Logger) {
	if headroom == 0 {
		return
	}
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Debug("GOGC is set; heap headroom not applied", "GOGC", v)
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() int {
		metrics.Read(sample)
		var live uint64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		p := Percent(live, headroom)
		debug.SetGCPercent(p)
		return p
	}
	p := set()
	log.Debug("heap headroom", "bytes", headroom, "gc_percent", p)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		defer debug.SetGCPercent(basePercent)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				set()
			}
		}
	}()
}
