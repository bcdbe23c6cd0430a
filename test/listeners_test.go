package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestBrokerListeners runs two brokers, each with two named listeners
// (INTERNAL and EXTERNAL on their own ports), followers dialing leaders
// on EXTERNAL (--inter-broker-listener-name, not the first listener). A
// client is answered, on whichever broker it asks, with the addresses of
// the listener it connected through: Metadata, DescribeCluster and
// FindCoordinator; a client seeded with EXTERNAL addresses only produces
// (acks=all, RF 2) and consumes in a group; the followers fetched from
// their leader's EXTERNAL address.
func TestBrokerListeners(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 2, ExternalListener: true, InterBrokerListener: "EXTERNAL",
		BrokerArgs: []string{"--group-initial-rebalance-delay", "100ms", "--offsets-topic-num-partitions", "4"}})
	addrsOn := func(listener string) []string {
		var out []string
		for _, b := range c.Brokers {
			addr := b.Addr
			if listener == "EXTERNAL" {
				addr = b.ExternalAddr
			}
			out = append(out, fmt.Sprintf("%d@%s", b.ID, addr))
		}
		return out
	}
	external := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		external[i] = b.ExternalAddr
	}

	// Every broker answers on each listener with that listener's addresses.
	for _, listener := range []string{"INTERNAL", "EXTERNAL"} {
		want := addrsOn(listener)
		for _, b := range c.Brokers {
			seed := b.Addr
			if listener == "EXTERNAL" {
				seed = b.ExternalAddr
			}
			md := requestTo(t, seed, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
			got := []string{}
			for _, mb := range md.Brokers {
				got = append(got, fmt.Sprintf("%d@%s", mb.NodeID, net.JoinHostPort(mb.Host, fmt.Sprint(mb.Port))))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Metadata from broker %d on %s: %v, want %v", b.ID, listener, got, want)
			}
			dreq := kmsg.NewPtrDescribeClusterRequest()
			dreq.EndpointType = 1
			dc := requestTo(t, seed, dreq).(*kmsg.DescribeClusterResponse)
			got = got[:0]
			for _, db := range dc.Brokers {
				got = append(got, fmt.Sprintf("%d@%s", db.NodeID, net.JoinHostPort(db.Host, fmt.Sprint(db.Port))))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("DescribeCluster from broker %d on %s: %v, want %v", b.ID, listener, got, want)
			}
		}
	}

	// A client that knows only the EXTERNAL addresses does everything.
	const topic, n = "listeners", 200
	cl := c.Client(t, kgo.SeedBrokers(external...), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopic(t, c, topic, 2, 2, nil)
	ledger := &harness.Ledger{}
	produceNumbered(t, cl, topic, "x", n, ledger)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "readers", []string{"readers"} // v0-3, v4+
	var addr string
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := requestTo(t, c.Brokers[0].ExternalAddr, fc).(*kmsg.FindCoordinatorResponse)
		code, host, port := r.ErrorCode, r.Host, r.Port
		if len(r.Coordinators) == 1 {
			code, host, port = r.Coordinators[0].ErrorCode, r.Coordinators[0].Host, r.Coordinators[0].Port
		}
		addr = net.JoinHostPort(host, fmt.Sprint(port))
		return code == 0, fmt.Sprintf("FindCoordinator v%d: error %d", r.Version, code)
	})
	if !slices.Contains(external, addr) {
		t.Fatalf("FindCoordinator on EXTERNAL: %s, want one of %v", addr, external)
	}
	consumer := c.Client(t, kgo.SeedBrokers(external...), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := 0
	for seen < n {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records through EXTERNAL", seen, n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		seen += fs.NumRecords()
	}

	// Each follower fetched from its leader's EXTERNAL address.
	for _, b := range c.Brokers {
		log := b.LogSince(0)
		for _, line := range strings.Split(log, "\n") {
			if !strings.Contains(line, "replica fetcher started") {
				continue
			}
			if !slices.ContainsFunc(external, func(a string) bool { return strings.Contains(line, "address="+a) }) {
				t.Errorf("%s: fetcher not on an EXTERNAL address: %s", b.Name, line)
			}
		}
		if !strings.Contains(log, "replica fetcher started") {
			t.Errorf("%s started no replica fetcher", b.Name)
		}
	}
}

// requestTo sends req to the broker at addr itself (not routed through
// metadata) and fails the test on error.
func requestTo(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to %s: %v", kmsg.NameForKey(req.Key()), addr, err)
	}
	return resp
}
