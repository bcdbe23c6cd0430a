package harness

import (
	"context"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceLoop hands numbered records (Value(prefix, seq)) to cl without
// pause, recording each outcome in ledger, until the returned stop is
// called. stop waits for the loop, returns how many records were handed to
// the client, and may be called more than once. Unless the test ends early
// (then a cleanup cancels the records still blocked in Produce), a record is
// never cancelled, only acknowledged or failed.
func ProduceLoop(t testing.TB, cl *kgo.Client, prefix string, ledger *Ledger) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	var produced int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := int64(0); ; seq++ {
			select {
			case <-done:
				produced = seq
				return
			default:
			}
			cl.Produce(ctx, &kgo.Record{Value: []byte(Value(prefix, seq))}, ledger.Promise)
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(func() { cancel(); stopOnce() })
	return func() int64 { stopOnce(); return produced }
}
