package storage

import (
	"math/rand/v2"
	"testing"
)

// spanFromAll is span's answer computed over every batch of a segment.
func spanFromAll(all []batchSpan, offset int64, maxBytes int32, maxOffset int64) (start, end, last int64, found bool) {
	i := 0
	for i < len(all) && all[i].last < offset {
		i++
	}
	if i == len(all) {
		return 0, 0, -1, false
	}
	start = all[i].pos
	end, last = start, -1
	for ; i < len(all); i++ {
		b := all[i]
		if b.last >= maxOffset || end > start && end-start+b.size > int64(maxBytes) {
			break
		}
		end += b.size
		last = b.last
	}
	return start, end, last, true
}

// TestRecentBatchesSpan checks the ring against the whole segment: where
// it answers, the answer is the one reading every header would give.
func TestRecentBatchesSpan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var r recentBatches
		var all []batchSpan
		pos, next := int64(0), int64(rng.IntN(100))
		batches := rng.IntN(3 * recentBatchesKept)
		for i := 0; i < batches; i++ {
			b := batchSpan{pos: pos, size: int64(61 + rng.IntN(3000)), last: next + int64(rng.IntN(5))}
			if rng.IntN(4) == 0 {
				b.last += int64(rng.IntN(10)) // a compacted log's gap
			}
			all = append(all, b)
			r.push(b)
			pos += b.size
			next = b.last + 1
		}
		for q := 0; q < 100; q++ {
			offset := int64(rng.IntN(int(next) + 5))
			maxBytes := int32(1 + rng.IntN(20000))
			maxOffset := offset + int64(rng.IntN(200))
			start, end, last, found, known := r.span(offset, maxBytes, maxOffset, pos)
			if !known {
				if len(all) > recentBatchesKept && offset > all[len(all)-recentBatchesKept].last {
					t.Fatalf("round %d: offset %d inside the ring not answered", round, offset)
				}
				continue
			}
			ws, we, wl, wf := spanFromAll(all, offset, maxBytes, maxOffset)
			if found != wf || found && (start != ws || end != we || last != wl) {
				t.Fatalf("round %d offset %d maxBytes %d maxOffset %d: ring (%d, %d, last %d, %v), headers (%d, %d, last %d, %v)",
					round, offset, maxBytes, maxOffset, start, end, last, found, ws, we, wl, wf)
			}
		}
		// A ring that does not end where the segment ends is not used.
		if _, _, _, _, known := r.span(next, 1<<20, next+10, pos+1); known {
			t.Fatalf("round %d: ring used for a segment it does not end", round)
		}
	}
}
