// Command kfakeref runs franz-go's in-memory test broker (kfake) on a given
// port. It is the reference that test/bench/compare.sh measures skein
// against with `skein bench produce`; it is never part of skein itself.
//
//	kfakeref --port 19092 [--brokers 1] [--data-dir D [--sync-writes]]
//
// It prints "kfake listening on HOST:PORT[,...]" on stdout once it accepts
// connections and runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kfakeref:", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 0, "first listener port (0: random ports); brokers listen on port, port+1, ...")
	brokers := flag.Int("brokers", 1, "number of brokers")
	partitions := flag.Int("partitions", 1, "default partitions of auto-created topics")
	seed := flag.String("seed-topics", "", "comma-separated topics to create at start with --partitions partitions")
	dataDir := flag.String("data-dir", "", "persist to this directory (default: in memory only)")
	syncWrites := flag.Bool("sync-writes", false, "fsync every write (with --data-dir)")
	flag.Parse()
	if *brokers < 1 {
		return fmt.Errorf("--brokers %d: want at least 1", *brokers)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(*brokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *port > 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	if *seed != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*seed, ",")...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	fmt.Printf("kfake listening on %s\n", strings.Join(cluster.ListenAddrs(), ","))

	sig := <-sigs
	fmt.Fprintf(os.Stderr, "kfakeref: %v, shutting down\n", sig)
	return nil
}
