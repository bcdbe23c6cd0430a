package harness

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LoadRate is the pace, in records a second, at which the tests' produce
// loads (ProduceLoop) hand records to the client: enough to keep every
// replica of a partition busy fetching and the log end moving through a
// fault or a move, and bounded, so that what a test reads back and checks
// at its end stays about the same whatever the machine: unpaced, a load of
// small compressible records reached a million records a second here, and
// reading them back took longer than the rest of the test.
const LoadRate = 50_000

// ProduceLoop hands numbered records (Value(prefix, seq)) to cl, at most
// perSecond a second on average (0: without pause), recording each
// outcome in ledger, until the returned stop is called. stop waits for the
// loop, returns how many records were handed to the client, and may be
// called more than once. Unless the test ends early (then a cleanup
// cancels the records still blocked in Produce), a record is never
// cancelled, only acknowledged or failed.
func ProduceLoop(t testing.TB, cl *kgo.Client, prefix string, ledger *Ledger, perSecond int) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	var produced int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		pause := time.NewTimer(time.Hour)
		defer pause.Stop()
		for seq := int64(0); ; seq++ {
			select {
			case <-done:
				produced = seq
				return
			default:
			}
			// Paced by the clock, not by ticks: a late wake-up is made
			// up at once, so the average holds on a loaded machine.
			for perSecond > 0 && seq >= int64(time.Since(start).Seconds()*float64(perSecond)) {
				pause.Reset(time.Millisecond)
				select {
				case <-done:
					produced = seq
					return
				case <-pause.C:
				}
			}
			cl.Produce(ctx, &kgo.Record{Value: []byte(Value(prefix, seq))}, ledger.Promise)
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(func() { cancel(); stopOnce() })
	return func() int64 { stopOnce(); return produced }
}
