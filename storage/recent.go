package storage

// recentBatchesKept is how many of a segment's last batches it remembers.
const recentBatchesKept = 32

// batchSpan is where one batch lies in its segment file.
type batchSpan struct {
	pos, size int64
	last      int64 // the batch's last offset
}

// recentBatches remembers where the last batches appended to a segment
// lie, so that a read near the end of the log (a caught-up follower's or
// consumer's fetch, the common case) finds its batches without reading
// their headers back from the file. The entries are contiguous: the
// newest ends where the segment ends (span checks it and ignores the ring
// otherwise). Guarded like the segment (the log's lock).
type recentBatches struct {
	b    [recentBatchesKept]batchSpan
	n    int // entries held
	next int // slot the next push fills
}

func (r *recentBatches) reset() { r.n, r.next = 0, 0 }

func (r *recentBatches) push(b batchSpan) {
	r.b[r.next] = b
	r.next = (r.next + 1) % len(r.b)
	r.n = min(r.n+1, len(r.b))
}

// at is the i-th oldest entry.
func (r *recentBatches) at(i int) batchSpan {
	return r.b[(r.next-r.n+i+len(r.b))%len(r.b)]
}

// span answers what Log.Read asks of one segment from the remembered
// batches alone: the byte range [start, end) of the batches from the first
// whose last offset is >= offset, stopping before a batch whose last offset
// is >= maxOffset or that would take the range past maxBytes (the first
// batch always counts), and the last offset of the last batch in it (-1
// for an empty range). known is false when the ring cannot tell (offset
// before the oldest entry, or the ring does not end at size); the caller
// then reads headers from the file.
func (r *recentBatches) span(offset int64, maxBytes int32, maxOffset, size int64) (start, end, last int64, found, known bool) {
	if r.n == 0 {
		return 0, 0, -1, false, false
	}
	if newest := r.at(r.n - 1); newest.pos+newest.size != size {
		return 0, 0, -1, false, false
	}
	oldest := r.at(0)
	if oldest.pos != 0 && oldest.last >= offset {
		return 0, 0, -1, false, false // an earlier batch may hold offset
	}
	i := 0
	for i < r.n && r.at(i).last < offset {
		i++
	}
	if i == r.n {
		return 0, 0, -1, false, true // nothing at or after offset here
	}
	start = r.at(i).pos
	end, last = start, -1
	for ; i < r.n; i++ {
		b := r.at(i)
		if b.last >= maxOffset || end > start && end-start+b.size > int64(maxBytes) {
			break
		}
		end += b.size
		last = b.last
	}
	return start, end, last, true, true
}
