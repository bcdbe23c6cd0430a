package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// chaosRead is one record a chaos reader was given: its offset and the seq
// of its partition's producer stream (-1: another value, kept in
// chaosReader.odd; chaosFillerSeq: a filler record, not kept).
type chaosRead struct {
	offset, seq int64
}

const chaosFillerSeq = -2

// chaosReader is a consumer of every chaos partition from the start that
// keeps what it was given, per partition, in delivery order, and checks
// each delivery against the one before: offsets go up by one, or jump
// forward to at most the highest log start offset the brokers reported to
// it so far (records retention deleted before the consumer got to them).
// A broker reports its log start in every fetch response, and in the
// ListOffsets answer with which the client starts at the log start or
// resets to it after OFFSET_OUT_OF_RANGE; franz-go does not return the
// latter, but logs the offsets it resumes at ("handled list results", at
// debug level), which chaosListLog catches.
type chaosReader struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	seen     map[chaosTP][]chaosRead
	odd      map[chaosTP]map[int64]string // values not of the partition's stream
	logStart map[chaosTP]int64            // highest log start offset reported in a fetch
	listed   map[chaosTP]int64            // highest offset resumed at after a ListOffsets
	skipped  int64                        // records jumped over below a log start
	skips    int
	problems []string
	errs     []string
}

// chaosStream is the producer stream that writes tp (see runChaos).
func chaosStream(tp chaosTP) string { return fmt.Sprintf("%s%d", tp.topic, tp.p) }

func startChaosReader(t *testing.T, c *harness.Cluster, i int) *chaosReader {
	t.Helper()
	starts := make(map[string]map[int32]kgo.Offset)
	for _, tp := range chaosTPs() {
		if starts[tp.topic] == nil {
			starts[tp.topic] = make(map[int32]kgo.Offset)
		}
		starts[tp.topic][tp.p] = kgo.NewOffset().AtStart()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &chaosReader{
		name: fmt.Sprintf("consumer %d", i), cancel: cancel, done: make(chan struct{}),
		seen: make(map[chaosTP][]chaosRead), odd: make(map[chaosTP]map[int64]string),
		logStart: make(map[chaosTP]int64), listed: make(map[chaosTP]int64),
	}
	cl := c.Client(t,
		kgo.ClientID(fmt.Sprintf("chaos-reader-%d", i)),
		kgo.ConsumePartitions(starts),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.WithLogger(chaosListLog{r}),
	)
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			r.mu.Lock()
			fetches.EachError(func(topic string, p int32, err error) {
				// The client saw its position beyond the log end: records
				// it had been given (committed ones) are gone.
				if _, loss := errors.AsType[*kgo.ErrDataLoss](err); loss {
					r.problem("%s/%d: %v", topic, p, err)
				}
				if ctx.Err() == nil && len(r.errs) < 20 {
					r.errs = append(r.errs, fmt.Sprintf("%s/%d: %v", topic, p, err))
				}
			})
			fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
				tp := chaosTP{fp.Topic, fp.Partition}
				r.logStart[tp] = max(r.logStart[tp], fp.LogStartOffset)
				for _, rec := range fp.Records {
					r.deliver(tp, rec.Offset, string(rec.Value))
				}
			})
			r.mu.Unlock()
		}
	}()
	t.Logf("%s started", r.name)
	return r
}

// deliver checks and keeps one delivered record; r.mu is held.
func (r *chaosReader) deliver(tp chaosTP, offset int64, value string) {
	seen := r.seen[tp]
	last := int64(-1)
	if len(seen) > 0 {
		last = seen[len(seen)-1].offset
	}
	switch {
	case offset == last+1:
	case offset > last+1 && offset <= max(r.logStart[tp], r.listed[tp]):
		r.skips++
		r.skipped += offset - last - 1
	case offset > last+1:
		r.problem("%s: offsets %d to %d skipped, but the log start reported was %d in fetches, %d in ListOffsets", tp, last+1, offset-1, r.logStart[tp], r.listed[tp])
	default:
		r.problem("%s: offset %d delivered after %d (repeat or rewind)", tp, offset, last)
	}
	stream, seq, ok := harness.ParseValue(value)
	if strings.HasPrefix(value, harness.FillerMark) {
		seq = chaosFillerSeq
	} else if !ok || stream != chaosStream(tp) {
		if r.odd[tp] == nil {
			r.odd[tp] = make(map[int64]string)
		}
		r.odd[tp][offset] = value
		seq = -1
	}
	r.seen[tp] = append(seen, chaosRead{offset, seq})
}

// chaosListLog is the chaos readers' franz-go logger: it drops everything
// but the offsets the client resumes at after listing offsets, which it
// records in the reader.
type chaosListLog struct{ r *chaosReader }

func (chaosListLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l chaosListLog) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	if msg != "handled list results" {
		return
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		using, ok := keyvals[i+1].(map[string]map[int32]kgo.EpochOffset)
		if keyvals[i] != "using" || !ok {
			continue
		}
		l.r.mu.Lock()
		for topic, parts := range using {
			for p, eo := range parts {
				tp := chaosTP{topic, p}
				l.r.listed[tp] = max(l.r.listed[tp], eo.Offset)
			}
		}
		l.r.mu.Unlock()
	}
}

func (r *chaosReader) problem(format string, args ...any) {
	if len(r.problems) < 20 {
		r.problems = append(r.problems, r.name+": "+fmt.Sprintf(format, args...))
	}
}

func (r *chaosReader) stop() {
	r.cancel()
	<-r.done
}

// value returns the value of a delivered record.
func (r *chaosReader) value(tp chaosTP, rd chaosRead) string {
	if rd.seq < 0 {
		return r.odd[tp][rd.offset]
	}
	return harness.Value(chaosStream(tp), rd.seq)
}

// has reports whether the reader was delivered tp's record at offset.
func (r *chaosReader) has(tp chaosTP, offset int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen[tp]
	i := sort.Search(len(seen), func(i int) bool { return seen[i].offset >= offset })
	return i < len(seen) && seen[i].offset == offset
}

// check waits until the reader has read every partition up to the end of
// final (offset -> value per partition), stops it, and returns the
// problems: those found at delivery, a record that differs from the final
// log or (deleted by retention) from its acknowledgement (ackAt), a value
// delivered at another offset than the one it was acknowledged at
// (ackedAt: value -> "topic/p@offset"), a stream's seqs not increasing.
func (r *chaosReader) check(t *testing.T, final map[chaosTP]map[int64]string, ackAt map[chaosTP]map[int64]string, ackedAt map[string]string, timeout time.Duration) []string {
	t.Helper()
	start, end := make(map[chaosTP]int64), make(map[chaosTP]int64)
	for tp, recs := range final {
		start[tp] = -1
		for o := range recs {
			end[tp] = max(end[tp], o+1)
			if start[tp] < 0 || o < start[tp] {
				start[tp] = o
			}
		}
	}
	err := harness.Poll(timeout, func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for tp, e := range end {
			seen := r.seen[tp]
			if len(seen) == 0 || seen[len(seen)-1].offset < e-1 {
				got := int64(-1)
				if len(seen) > 0 {
					got = seen[len(seen)-1].offset
				}
				return false, fmt.Sprintf("%s: %s: read up to %d of %d", r.name, tp, got, e-1)
			}
		}
		return true, ""
	})
	r.stop()
	problems := append([]string(nil), r.problems...)
	if err != nil {
		problems = append(problems, fmt.Sprintf("%v (fetch errors: %v)", err, r.errs))
	}
	total := 0
	for tp, seen := range r.seen {
		lastSeq := int64(-1)
		for _, rd := range seen {
			total++
			if len(problems) > 20 {
				break
			}
			fv, inFinal := final[tp][rd.offset]
			if rd.seq == chaosFillerSeq {
				if inFinal && !strings.HasPrefix(fv, harness.FillerMark) || !inFinal && len(final[tp]) > 0 && rd.offset >= start[tp] {
					problems = append(problems, fmt.Sprintf("%s: %s: offset %d delivered a filler record, final log holds %q", r.name, tp, rd.offset, fv))
				}
				continue
			}
			v := r.value(tp, rd)
			av, acked := ackAt[tp][rd.offset]
			switch {
			case !inFinal && len(final[tp]) > 0 && rd.offset >= start[tp]:
				problems = append(problems, fmt.Sprintf("%s: %s: offset %d delivered %q, which is not in the final log (%d to %d)", r.name, tp, rd.offset, v, start[tp], end[tp]))
			case inFinal && fv != v:
				problems = append(problems, fmt.Sprintf("%s: %s: offset %d delivered %q, final log holds %q", r.name, tp, rd.offset, v, fv))
			case !inFinal && acked && av != v: // deleted by retention since
				problems = append(problems, fmt.Sprintf("%s: %s: offset %d delivered %q, acknowledged %q", r.name, tp, rd.offset, v, av))
			}
			if at, ok := ackedAt[v]; ok && at != fmt.Sprintf("%s@%d", tp, rd.offset) {
				problems = append(problems, fmt.Sprintf("%s: %q delivered at %s@%d, acknowledged at %s (duplicate)", r.name, v, tp, rd.offset, at))
			}
			if rd.seq >= 0 {
				if rd.seq <= lastSeq {
					problems = append(problems, fmt.Sprintf("%s: %s: offset %d: seq %d after seq %d (duplicate or order lost)", r.name, tp, rd.offset, rd.seq, lastSeq))
				}
				lastSeq = rd.seq
			}
		}
	}
	if len(problems) == 0 {
		t.Logf("%s: %d records in order, %d records skipped below the log start in %d jumps", r.name, total, r.skipped, r.skips)
	}
	return problems
}

// chaosWatch asks every broker directly (not through its proxy), several
// times a second, for the log start and then the high watermark of every
// chaos partition it leads, and records a log start above the high
// watermark: retention must delete only committed records (below the high
// watermark), and both only grow on a leader, so a log start read before a
// high watermark and above it means uncommitted records were deleted.
type chaosWatch struct {
	quit     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex
	n     int
	probs []chaosSighting // first sighting per broker and partition
	times map[string]int  // sightings per broker and partition
}

// chaosSighting is a chaosWatch finding: what, and for which broker and
// partition (key).
type chaosSighting struct{ key, msg string }

func startChaosWatch(t *testing.T, c *harness.Cluster) *chaosWatch {
	t.Helper()
	w := &chaosWatch{quit: make(chan struct{}), times: make(map[string]int)}
	for _, b := range c.Brokers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer cl.Close()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-w.quit:
					return
				case <-tick.C:
				}
				if !b.Running() {
					continue
				}
				start, err1 := chaosListOffsets(cl, -2)
				hw, err2 := chaosListOffsets(cl, -1)
				if err1 != nil || err2 != nil {
					continue
				}
				w.mu.Lock()
				w.n++
				for tp, s := range start {
					h, ok := hw[tp]
					if !ok || s <= h {
						continue
					}
					key := b.Name + " " + tp.String()
					if w.times[key]++; w.times[key] == 1 {
						w.probs = append(w.probs, chaosSighting{key, fmt.Sprintf("%s: %s: log start %d above the high watermark %d (read after it): records deleted before they were committed (at %s)",
							b.Name, tp, s, h, time.Now().Format("15:04:05.000"))})
					}
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// chaosListOffsets lists the offset at timestamp ts (-2 log start, -1 high
// watermark) of every chaos partition the broker behind cl leads.
func chaosListOffsets(cl *kgo.Client, ts int64) (map[chaosTP]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for _, topic := range chaosTopics {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for p := range int32(chaosPartitions) {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = ts
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return nil, err
	}
	out := make(map[chaosTP]int64)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode == 0 && rp.Offset >= 0 {
				out[chaosTP{rt.Topic, rp.Partition}] = rp.Offset
			}
		}
	}
	return out, nil
}

func (w *chaosWatch) stop() {
	w.stopOnce.Do(func() { close(w.quit) })
	w.wg.Wait()
}

func (w *chaosWatch) rounds() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// problems returns the first sighting of a log start above the high
// watermark per broker and partition, with how often it was seen.
func (w *chaosWatch) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range w.probs {
		out = append(out, fmt.Sprintf("%s; seen in %d samples", p.msg, w.times[p.key]))
	}
	return out
}
