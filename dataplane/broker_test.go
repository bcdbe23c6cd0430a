package dataplane

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/controller"
	"github.com/skein-io/skein/internal/security"
)

func validConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = 1
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Controllers = []string{"127.0.0.1:9093"}
	return cfg
}

func TestDefaultConfigIsKafkas(t *testing.T) {
	c := DefaultConfig()
	if !c.AutoCreateTopics || c.NumPartitions != 1 || c.DefaultReplicationFactor != 0 || c.MessageMaxBytes != 1048588 || c.HeartbeatInterval != 2*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := validConfig(t.TempDir()).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"NodeID", func(c *Config) { c.NodeID = -1 }},
		{"DataDir", func(c *Config) { c.DataDir = "" }},
		{"Listen", func(c *Config) { c.Listen = "nowhere" }},
		{"AdvertisedListener", func(c *Config) { c.AdvertisedListener = "0.0.0.0:9092" }},
		{"Controllers", func(c *Config) { c.Controllers = nil }},
		{"Controllers", func(c *Config) { c.Controllers = []string{"127.0.0.1:0"} }},
		{"NumPartitions", func(c *Config) { c.NumPartitions = 0 }},
		{"DefaultReplicationFactor", func(c *Config) { c.DefaultReplicationFactor = -1 }},
		{"MessageMaxBytes", func(c *Config) { c.MessageMaxBytes = 0 }},
		{"HeartbeatInterval", func(c *Config) { c.HeartbeatInterval = 0 }},
		{"Logger", func(c *Config) { c.Logger = nil }},
		{"listener name", func(c *Config) { c.Listeners = []Listener{{Name: "", Addr: "127.0.0.1:0"}} }},
		{"listener name", func(c *Config) { c.Listeners = []Listener{{Name: "IN TERNAL", Addr: "127.0.0.1:0"}} }},
		{"given twice", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: "127.0.0.1:0"}, {Name: "a", Addr: "127.0.0.1:0"}}
		}},
		{"listener A address", func(c *Config) { c.Listeners = []Listener{{Name: "A", Addr: "nowhere"}} }},
		{"listener A advertised", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: "0.0.0.0:9092", Advertised: "0.0.0.0:9092"}}
		}},
		{"listener A advertised", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: "0.0.0.0:9092", Advertised: ":9092"}}
		}},
		{"inter-broker listener", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Addr: "127.0.0.1:0"}}
			c.InterBrokerListenerName = "B"
		}},
		{"inter-broker listener", func(c *Config) { c.InterBrokerListenerName = "INTERNAL" }},
		{"needs a certificate", func(c *Config) { c.ListenerProtocol = security.SSL }},
		{"not supported yet", func(c *Config) { c.ListenerProtocol = security.SASLSSL }},
		{"controller protocol", func(c *Config) { c.ControllerProtocol = security.SASLPlaintext }},
		{"controller protocol SSL needs TLS", func(c *Config) { c.ControllerProtocol = security.SSL }},
	}
	for _, tc := range cases {
		c := validConfig("/tmp/x")
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: want an error naming it, got %v", tc.field, err)
		}
	}
}

// TestListenerProtocols: --listen's listener (named PLAINTEXT for want of
// a name) speaks --listener-protocol; named listeners follow Kafka's map.
func TestListenerProtocols(t *testing.T) {
	c := validConfig("/tmp/x")
	if p := c.listenerProtocol("PLAINTEXT"); p != security.Plaintext {
		t.Fatalf("default: %s", p)
	}
	c.ListenerProtocol = security.SSL
	if p := c.listenerProtocol("PLAINTEXT"); p != security.SSL {
		t.Fatalf("--listen with --listener-protocol SSL speaks %s", p)
	}
	c.Listeners = []Listener{{Name: "PLAINTEXT", Addr: "127.0.0.1:0"}, {Name: "INTERNAL", Addr: "127.0.0.1:0"}}
	if p := c.listenerProtocol("PLAINTEXT"); p != security.Plaintext {
		t.Fatalf("a listener named PLAINTEXT speaks %s", p)
	}
	if p := c.listenerProtocol("INTERNAL"); p != security.SSL {
		t.Fatalf("INTERNAL speaks %s", p)
	}
}

func TestListenersDefaults(t *testing.T) {
	c := validConfig("/tmp/x")
	c.AdvertisedListener = "kafka.example:9092"
	if got := c.listeners(); !slices.Equal(got, []Listener{{Name: "PLAINTEXT", Addr: "127.0.0.1:0", Advertised: "kafka.example:9092"}}) {
		t.Fatalf("--listen alone: %+v", got)
	}
	if c.interBrokerListener() != "PLAINTEXT" {
		t.Fatalf("inter-broker listener of --listen: %q", c.interBrokerListener())
	}
	c.InterBrokerListenerName = "plaintext"
	if err := c.Validate(); err != nil {
		t.Fatalf("PLAINTEXT names --listen's listener: %v", err)
	}
	c.InterBrokerListenerName = ""
	c.Listeners = []Listener{{Name: "internal", Addr: "0.0.0.0:9092"}, {Name: "External", Addr: "0.0.0.0:19092", Advertised: "127.0.0.1:19092"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Listener{{Name: "INTERNAL", Addr: "0.0.0.0:9092"}, {Name: "EXTERNAL", Addr: "0.0.0.0:19092", Advertised: "127.0.0.1:19092"}}
	if got := c.listeners(); !slices.Equal(got, want) {
		t.Fatalf("listeners: %+v, want %+v", got, want)
	}
	if c.interBrokerListener() != "INTERNAL" {
		t.Fatalf("inter-broker listener defaults to the first: %q", c.interBrokerListener())
	}
	c.InterBrokerListenerName = "external"
	if err := c.Validate(); err != nil || c.interBrokerListener() != "EXTERNAL" {
		t.Fatalf("inter-broker listener external: %q %v", c.interBrokerListener(), err)
	}
}

func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4321}
	cases := []struct {
		listen, advertised string
		host               string
		port               int32
	}{
		{"127.0.0.1:0", "", "127.0.0.1", 4321},
		{"localhost:0", "", "localhost", 4321},
		{"127.0.0.1:4321", "kafka.example:19092", "kafka.example", 19092},
		{"127.0.0.1:0", "kafka.example:0", "kafka.example", 4321},
	}
	for _, c := range cases {
		host, port, err := advertised(Listener{Addr: c.listen, Advertised: c.advertised}, bound)
		if err != nil || host != c.host || port != c.port {
			t.Errorf("listen %q advertised %q: got %s:%d %v, want %s:%d", c.listen, c.advertised, host, port, err, c.host, c.port)
		}
	}
	// Bound to every interface: clients get this host's name.
	host, _, err := advertised(Listener{Addr: ":0"}, &net.TCPAddr{IP: net.IPv6unspecified, Port: 1})
	if err != nil || host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		t.Fatalf("unspecified bind: %q %v", host, err)
	}
}

func TestCloseWithoutStartAndTwice(t *testing.T) {
	b, err := NewBroker(validConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// startController runs a one-voter controller quorum on loopback.
func startController(t testing.TB, log hclog.Logger) *controller.Controller {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.NodeID = 1000
	cfg.DataDir = filepath.Join(t.TempDir(), "controller")
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.InitialControllers = []controller.Voter{{ID: 1000, RaftAddr: "127.0.0.1:0"}}
	cfg.RaftHeartbeatTimeout = 200 * time.Millisecond
	cfg.Logger = log.Named("controller")
	c, err := controller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func startBroker(t *testing.T, log hclog.Logger, ctl *controller.Controller, dir string) *Broker {
	t.Helper()
	cfg := validConfig(dir)
	cfg.Logger = log.Named("broker")
	return startBrokerWith(t, ctl, cfg)
}

// startBrokerWith starts a broker of cfg that registers with ctl and
// heartbeats every 100 ms; it stops at the end of the test.
func startBrokerWith(t testing.TB, ctl *controller.Controller, cfg Config) *Broker {
	t.Helper()
	cfg.Controllers = []string{ctl.Addr()}
	cfg.HeartbeatInterval = 100 * time.Millisecond
	b, err := NewBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		_ = b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func consumeAll(t *testing.T, ctx context.Context, addr, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the deadline", len(got), want, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestBrokerServesKafkaClients is the cluster of one: a controller and a
// broker on loopback, driven by franz-go. It creates a topic with kadm,
// produces and consumes, auto-creates a topic by producing to it, reads
// topic configs, deletes a topic, and restarts the broker on the same data
// dir to read the records again.
func TestBrokerServesKafkaClients(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
	ctl := startController(t, log)
	dir := t.TempDir()
	b := startBroker(t, log, ctl, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	created, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	if err != nil || created.Error() != nil {
		t.Fatalf("create topic: %v %v", err, created.Error())
	}
	// The broker answered after its own metadata had the topic.
	md, err := adm.Metadata(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics["orders"]; td.Err != nil || len(td.Partitions) != 2 || td.Partitions[0].Leader != 1 {
		t.Fatalf("metadata after create: %+v", td)
	}

	const n = 10
	for i := range n {
		r := &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	if got := consumeAll(t, ctx, b.Addr(), "orders", n); len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}

	// Auto-creation through Metadata when producing to an unknown topic.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v %v", err, rc.Err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			found = c.MaybeValue() == "3600000" && c.Source == 1
		}
	}
	if !found {
		t.Fatalf("retention.ms not described as set on the topic: %+v", rc.Configs)
	}

	deleted, err := adm.DeleteTopics(ctx, "auto")
	if err != nil || deleted.Error() != nil {
		t.Fatalf("delete topic: %v %v", err, deleted.Error())
	}
	md, err = adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["auto"]; ok {
		t.Fatal("deleted topic still in metadata")
	}

	// Restart on the same data dir: the records are still there.
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, log, ctl, dir)
	got := consumeAll(t, ctx, b.Addr(), "orders", n)
	slices.Sort(got)
	if len(got) != n || got[0] != "v0" || got[n-1] != "v9" {
		t.Fatalf("after restart: %v", got)
	}
}

// TestBrokerListeners runs a broker with two named listeners: a client on
// each is given the broker's address on that listener, and the broker
// serves both (produce through one, consume through the other).
func TestBrokerListeners(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
	ctl := startController(t, log)
	cfg := validConfig(t.TempDir())
	cfg.Listeners = []Listener{{Name: "internal", Addr: "127.0.0.1:0"}, {Name: "EXTERNAL", Addr: "127.0.0.1:0", Advertised: "localhost:0"}}
	cfg.Logger = log.Named("broker")
	b := startBrokerWith(t, ctl, cfg)
	internal, external := b.ListenerAddr("INTERNAL"), b.ListenerAddr("external")
	if internal == "" || external == "" || internal == external || b.Addr() != internal {
		t.Fatalf("bound INTERNAL %q EXTERNAL %q, Addr %q", internal, external, b.Addr())
	}
	_, externalPort, _ := net.SplitHostPort(external)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ seed, want string }{
		{internal, internal},
		{external, net.JoinHostPort("localhost", externalPort)},
	} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seed))
		if err != nil {
			t.Fatal(err)
		}
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)) != c.want {
			t.Fatalf("metadata through %s: brokers %+v, want one at %s", c.seed, md.Brokers, c.want)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(internal), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "both", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, ctx, external, "both", 1); len(got) != 1 || got[0] != "v" {
		t.Fatalf("consumed through EXTERNAL: %q", got)
	}
}
