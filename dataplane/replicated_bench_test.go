package dataplane

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkReplicatedProduce is the cost of one acks=all produce request
// through three brokers (one process, loopback, RF 3, the followers
// fetching as they do in a cluster), closed loop: one request in flight,
// so every op is exactly one produce request and the figures do not
// depend on how a loaded machine happens to batch. ns/op is the round
// trip; cpu-us/op is the whole process's CPU (brokers, controller and the
// client) per request, the figure a change to the request path moves.
//
//	go test -run XXX -bench ReplicatedProduce -benchtime 20000x ./dataplane/
func BenchmarkReplicatedProduce(b *testing.B) {
	for _, records := range []int{1, 16} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) { benchmarkReplicatedProduce(b, records) })
	}
}

func benchmarkReplicatedProduce(b *testing.B, records int) {
	log := hclog.NewNullLogger()
	ctl := startController(b, log)
	var bootstrap []string
	for i := 0; i < 3; i++ {
		cfg := validConfig(filepath.Join(b.TempDir(), fmt.Sprintf("broker-%d", i)))
		cfg.NodeID = int32(101 + i)
		cfg.Logger = log
		bootstrap = append(bootstrap, startBrokerWith(b, ctl, cfg).Addr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic("bench"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(cl)
	for {
		resp, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{}, "bench")
		if err == nil && resp.Err == nil {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("create topic: %v %v", err, resp.Err)
		}
		time.Sleep(50 * time.Millisecond) // brokers still registering
	}
	value := make([]byte, 1024)
	batch := make([]*kgo.Record, records)
	produce := func() {
		for i := range batch {
			batch[i] = &kgo.Record{Value: value}
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ { // warm up: leader elected, followers in the ISR
		produce()
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		produce()
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	b.SetBytes(int64(records * len(value)))
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
