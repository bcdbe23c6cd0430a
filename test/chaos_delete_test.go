package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/skein-io/skein/test/harness"
)

// chaosDeletes sends DeleteRecords while faults are on: half-way between
// a chaos partition's log start and its high watermark. It keeps the low
// watermark of every answered one, the log start the partition may never
// fall below again (no later leader brings the records back). Refusals and
// timeouts during a fault are expected and only counted.
type chaosDeletes struct {
	adm         *kadm.Client
	floor       map[chaosTP]int64
	ok, refused int
}

func newChaosDeletes(t *testing.T, c *harness.Cluster) *chaosDeletes {
	adm := kadm.NewClient(c.Client(t))
	adm.SetTimeoutMillis(3000)
	return &chaosDeletes{adm: adm, floor: map[chaosTP]int64{}}
}

// once deletes on a partition picked by rng. Called from one goroutine.
func (d *chaosDeletes) once(rng *rand.Rand) {
	tps := chaosTPs()
	tp := tps[rng.IntN(len(tps))]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	starts, err := d.adm.ListStartOffsets(ctx, tp.topic)
	if err != nil {
		d.refused++
		return
	}
	ends, err := d.adm.ListEndOffsets(ctx, tp.topic)
	if err != nil {
		d.refused++
		return
	}
	s, okS := starts.Lookup(tp.topic, tp.p)
	e, okE := ends.Lookup(tp.topic, tp.p)
	if !okS || !okE || s.Err != nil || e.Err != nil || e.Offset-s.Offset < 2 {
		d.refused++
		return
	}
	target := s.Offset + (e.Offset-s.Offset)/2
	resp, err := d.adm.DeleteRecords(ctx, kadm.Offsets{tp.topic: {tp.p: {Topic: tp.topic, Partition: tp.p, At: target, LeaderEpoch: -1}}})
	r, ok := resp.Lookup(tp.topic, tp.p)
	if err != nil || !ok || r.Err != nil {
		d.refused++
		return
	}
	if r.LowWatermark < target {
		// An answer without an error promises the low watermark
		// reached the offset.
		d.floor[tp] = max(d.floor[tp], target)
	}
	d.ok++
	d.floor[tp] = max(d.floor[tp], r.LowWatermark)
}

// check returns a problem for every partition whose log start, through
// its leader at the end, is below what a DeleteRecords set.
func (d *chaosDeletes) check(t *testing.T) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var problems []string
	for _, topic := range chaosTopics {
		var starts kadm.ListedOffsets
		err := harness.Poll(time.Minute, func() (bool, string) {
			var err error
			starts, err = d.adm.ListStartOffsets(ctx, topic)
			if err == nil {
				err = starts.Error()
			}
			if err != nil {
				return false, err.Error()
			}
			return true, ""
		})
		if err != nil {
			problems = append(problems, fmt.Sprintf("delete records: list start offsets of %s: %v", topic, err))
			continue
		}
		for tp, floor := range d.floor {
			if tp.topic != topic {
				continue
			}
			if o, ok := starts.Lookup(topic, tp.p); !ok || o.Offset < floor {
				problems = append(problems, fmt.Sprintf("delete records: %s starts at %d at the end, below %d that a DeleteRecords answered", tp, o.Offset, floor))
			}
		}
	}
	return problems, fmt.Sprintf("delete records: %d answered during faults (%d refused or timed out); log starts at or above each: %d problems", d.ok, d.refused, len(problems))
}
