package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestCompaction: 3 brokers, a topic with replication factor 3 and
// cleanup.policy=compact, small segments. A franz-go producer (default
// compression) writes 20,000 updates over 50 keys, some of them tombstones,
// then 2,000 records under other keys.
// Every replica's cleaner (each on its own schedule) must compact the
// sealed segments; then a consumer reading from the beginning must see,
// below the cleaned offset, every key once with its latest acknowledged
// value at its acknowledged offset, and everything above it as produced;
// the replicas' segment files must be byte-identical and `skein replicas
// verify` must pass.
func TestCompaction(t *testing.T) {
	const (
		topic   = "compacted"
		records = 20_000
		keys    = 50
	)
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: []string{"--log-cleaner-backoff", "200ms"}})
	createTopic(t, c, topic, 1, 3, map[string]*string{
		"cleanup.policy":            strPtr("compact"),
		"segment.bytes":             strPtr("16384"),
		"min.cleanable.dirty.ratio": strPtr("0.01"),
		"min.insync.replicas":       strPtr("2"),
	})

	cl := c.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.ProducerBatchMaxBytes(8<<10), // many batches, many segments
	)
	type acked struct {
		key   string
		value []byte // nil: tombstone
	}
	var (
		mu      sync.Mutex
		byOff   = map[int64]acked{}
		errs    int
		lastErr error
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// After the updates, filler records under other keys push the last
	// updates (tombstones among them) into sealed, cleanable segments.
	const total = records + 2000
	for i := range total {
		k := fmt.Sprintf("key-%02d", i%keys)
		if i >= records {
			k = fmt.Sprintf("filler-%02d", i%keys)
		}
		// Values carry hard-to-compress noise so the topic spans many
		// segments whatever the producer's batching.
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		r := &kgo.Record{Key: []byte(k), Value: []byte(fmt.Sprintf("%s@%d:%x", k, i, sum[:12]))}
		// Tombstones: now and then, and as the last update of keys 0-4.
		if i%97 == 13 || i >= records-keys && i < records && i%keys < 5 {
			r.Value = nil
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				lastErr = err
				return
			}
			byOff[r.Offset] = acked{key: string(r.Key), value: r.Value}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if errs > 0 {
		t.Fatalf("%d records failed; last error: %v", errs, lastErr)
	}
	if len(byOff) != total {
		t.Fatalf("%d distinct acknowledged offsets, want %d", len(byOff), total)
	}

	cleanedTo := waitCleaned(t, c, topic, 60*time.Second)
	checkReplicasIdentical(t, c, topic, 1, 10*time.Second)

	// Read everything back.
	end := int64(0)
	for off := range byOff {
		end = max(end, off+1)
	}
	cons := c.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	type stored struct {
		offset int64
		key    string
		value  []byte
	}
	var got []stored
	for done := false; !done; {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("reading back: %v (read %d records)", rctx.Err(), len(got))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, stored{offset: r.Offset, key: string(r.Key), value: r.Value})
			done = done || r.Offset >= end-1
		})
	}

	latest := map[string]int64{}
	for off, a := range byOff {
		if off < cleanedTo {
			if o, ok := latest[a.key]; !ok || off > o {
				latest[a.key] = off
			}
		}
	}
	seen := map[string]bool{}
	below, above, tombs := 0, 0, 0
	for i, r := range got {
		if i > 0 && r.offset <= got[i-1].offset {
			t.Fatalf("offset %d read after %d", r.offset, got[i-1].offset)
		}
		a, ok := byOff[r.offset]
		if !ok || a.key != r.key || string(a.value) != string(r.value) || (a.value == nil) != (r.value == nil) {
			t.Fatalf("offset %d holds %s=%q; the producer was acked %s=%q there", r.offset, r.key, r.value, a.key, a.value)
		}
		if r.offset >= cleanedTo {
			above++
			continue
		}
		below++
		if r.value == nil {
			tombs++
		}
		if seen[r.key] {
			t.Fatalf("key %s appears twice below the cleaned offset %d", r.key, cleanedTo)
		}
		seen[r.key] = true
		if latest[r.key] != r.offset {
			t.Fatalf("key %s at offset %d below %d; its latest update is at %d", r.key, r.offset, cleanedTo, latest[r.key])
		}
	}
	for k, off := range latest {
		if !seen[k] {
			t.Fatalf("key %s (latest update at %d, below %d) is gone", k, off, cleanedTo)
		}
	}
	wantAbove := 0
	for off := range byOff {
		if off >= cleanedTo {
			wantAbove++
		}
	}
	if above != wantAbove {
		t.Fatalf("%d records at or above %d, want %d", above, cleanedTo, wantAbove)
	}
	if tombs < 5 {
		t.Errorf("%d tombstones below %d; the last updates of 5 keys were tombstones (delete.retention.ms keeps them)", tombs, cleanedTo)
	}
	t.Logf("cleaned to %d of %d: %d records below (%d tombstones) for %d keys, %d above", cleanedTo, end, below, tombs, len(latest), above)

	res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic)
	if res.Err != nil {
		t.Fatalf("skein replicas verify: %v\nstdout:\n%s\nstderr:\n%s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("skein replicas verify:\n%s", res.Stdout)

	// A record without a key cannot be compacted: INVALID_RECORD.
	nokey := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	err := nokey.ProduceSync(pctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("produce without a key to a compacted topic: %v, want INVALID_RECORD", err)
	}
}

// waitCleaned waits until every replica of topic's partition 0 has
// cleaned up to its active segment (at least 4 segments) and the replicas'
// files agree, and returns the cleaned offset.
func waitCleaned(t *testing.T, c *harness.Cluster, topic string, timeout time.Duration) int64 {
	t.Helper()
	return waitCleanedOn(t, c.Brokers, topic, timeout)
}

// waitCleanedOn is waitCleaned for the replicas on brokers.
func waitCleanedOn(t *testing.T, brokers []*harness.Node, topic string, timeout time.Duration) int64 {
	t.Helper()
	var cleanedTo int64
	harness.WaitFor(t, timeout, func() (bool, string) {
		var sums []string
		for _, b := range brokers {
			cp, err := cleanerCheckpoint(b.DataDir, topic, 0)
			if err != nil {
				return false, err.Error()
			}
			segs, err := readSegments(filepath.Join(b.DataDir, topic+"-0"))
			if err != nil {
				return false, err.Error()
			}
			if len(segs) < 4 {
				return false, fmt.Sprintf("broker %d has %d segments", b.ID, len(segs))
			}
			active, _ := strconv.ParseInt(strings.TrimSuffix(segs[len(segs)-1].name, ".log"), 10, 64)
			if cp != active {
				return false, fmt.Sprintf("broker %d cleaned to %d, active segment at %d", b.ID, cp, active)
			}
			cleanedTo = cp
			sums = append(sums, digest(segs))
		}
		for _, s := range sums[1:] {
			if s != sums[0] {
				return false, "replicas differ: " + strings.Join(sums, " | ")
			}
		}
		return true, ""
	})
	return cleanedTo
}

// cleanerCheckpoint reads a broker's cleaner-offset-checkpoint entry for
// the partition (Kafka's format: version, count, "topic partition offset").
func cleanerCheckpoint(dataDir, topic string, partition int) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "cleaner-offset-checkpoint"))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return 0, fmt.Errorf("cleaner-offset-checkpoint: bad header %q", b)
	}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == topic && f[1] == strconv.Itoa(partition) {
			return strconv.ParseInt(f[2], 10, 64)
		}
	}
	return 0, fmt.Errorf("cleaner-offset-checkpoint has no entry for %s-%d", topic, partition)
}
