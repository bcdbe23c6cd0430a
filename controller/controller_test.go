package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
)

// testLogger logs through t.Log until the test ends.
func testLogger(t *testing.T, name string) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: w, Level: hclog.Info})
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

var _ io.Writer = (*testWriter)(nil)

// freeAddrs returns n distinct free loopback addresses: each is held open
// until all are picked, so two picks cannot return the same port.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

func testConfig(t *testing.T, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = 1
	cfg.DataDir = dir
	addrs := freeAddrs(t, 2)
	cfg.Listen, cfg.RaftListen = addrs[0], addrs[1]
	cfg.InitialControllers = []Voter{{ID: 1, RaftAddr: cfg.RaftListen}}
	// Long enough that a loaded machine does not fence a live broker; the
	// test that needs expiry lowers it.
	cfg.SessionTimeout = 10 * time.Second
	cfg.RaftHeartbeatTimeout = 50 * time.Millisecond
	cfg.Logger = testLogger(t, "controller")
	return cfg
}

func startController(t *testing.T, cfg Config) *Controller {
	t.Helper()
	c, err := New(cfg)
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

// startClientConfig starts a broker's controller client from cfg
// (Controllers, NodeID and whatever else the test sets) with the tests'
// listener (unless cfg has Listeners), fast heartbeats and, unless cfg has one, a named logger.
func startClientConfig(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if len(cfg.Listeners) == 0 {
		cfg.AdvertisedHost, cfg.AdvertisedPort = "127.0.0.1", 9092
	}
	cfg.HeartbeatInterval, cfg.MetadataMaxWait = 100*time.Millisecond, time.Second
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, fmt.Sprintf("broker-%d", cfg.NodeID))
	}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

func startClient(t *testing.T, ctl *Controller, brokerID int32, controllers ...string) *client.Client {
	t.Helper()
	if len(controllers) == 0 {
		controllers = []string{ctl.Addr()}
	}
	cl := startClientConfig(t, client.Config{Controllers: controllers, NodeID: brokerID})
	if b := cl.Image().Brokers[brokerID]; b == nil || b.Epoch != cl.BrokerEpoch() {
		t.Fatalf("Start returned before the image held the registration: %+v", b)
	}
	return cl
}

// waitImage waits until the controller's image satisfies cond.
func waitImage(t *testing.T, ctl *Controller, what string, cond func(*image.Image) bool) *image.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		st := ctl.fsm.state.Load()
		if cond(st.img) {
			return st.img
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; image index %d", what, st.img.Index)
		}
	}
}

func waitClient(t *testing.T, cl *client.Client, what string, cond func(*image.Image) bool) *image.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	img, err := cl.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return img
}

func forward[R kmsg.Response](t *testing.T, cl *client.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Forward(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(R)
}

func createTopic(name string, partitions int32, rf int16, configs ...string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	return req
}

const broker = int32(101)

func unfenced(img *image.Image) bool {
	b := img.Brokers[broker]
	return b != nil && !b.Fenced
}

// TestBrokerLifecycle covers registration, topic creation, fencing on session
// timeout, re-registration with a new incarnation, producer id blocks,
// deletion and a controller restart from its data dir.
func TestBrokerLifecycle(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SessionTimeout = 1500 * time.Millisecond
	ctl := startController(t, cfg)
	cl := startClient(t, ctl, broker)

	img := waitClient(t, cl, "broker unfenced", unfenced)
	if img.ClusterID == "" || img.Controllers[1].Port == 0 || img.ActiveController != 1 {
		t.Fatalf("cluster metadata missing: cluster %q controllers %v active %d", img.ClusterID, img.Controllers, img.ActiveController)
	}

	// CreateTopics through Forward.
	ctResp := forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("orders", 3, -1, "retention.ms", "1000"))
	rt := ctResp.Topics[0]
	if rt.ErrorCode != 0 || rt.NumPartitions != 3 || rt.ReplicationFactor != 1 || len(rt.Configs) == 0 {
		t.Fatalf("create topic: %+v", rt)
	}
	img = waitClient(t, cl, "topic in image", func(img *image.Image) bool { return img.Topics["orders"] != nil })
	for _, p := range img.Topics["orders"].Partitions {
		if p.Leader != broker || !slices.Equal(p.ISR, []int32{broker}) {
			t.Fatalf("partition %+v", p)
		}
	}

	// Validation errors.
	for _, tc := range []struct {
		req  *kmsg.CreateTopicsRequest
		want *kerr.Error
	}{
		{createTopic("orders", 1, 1), kerr.TopicAlreadyExists},
		{createTopic("bad/name", 1, 1), kerr.InvalidTopicException},
		{createTopic("orders.x", 0, 1), kerr.InvalidPartitions},
		{createTopic("orders.y", 1, 2), kerr.InvalidReplicationFactor},
		{createTopic("orders.z", 1, 1, "retention.ms", "soon"), kerr.InvalidConfig},
	} {
		got := forward[*kmsg.CreateTopicsResponse](t, cl, tc.req).Topics[0]
		if got.ErrorCode != tc.want.Code {
			t.Errorf("create %q: got %v, want %v", got.Topic, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
	}

	// Producer id blocks are disjoint.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f1, n1, err := cl.AllocateProducerIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f2, n2, err := cl.AllocateProducerIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n1 <= 0 || n2 <= 0 || f2 < f1+int64(n1) {
		t.Fatalf("blocks overlap: [%d,+%d) [%d,+%d)", f1, n1, f2, n2)
	}

	// The broker goes silent: its session times out, the partitions go
	// offline, the broker moving from the ISR to the ELR (KIP-966).
	before := img.Topics["orders"].Partitions[0].LeaderEpoch
	_ = cl.Close()
	img = waitImage(t, ctl, "broker fenced", func(img *image.Image) bool { return img.Brokers[broker].Fenced })
	for _, p := range img.Topics["orders"].Partitions {
		if p.Leader != -1 || len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{broker}) || p.LeaderEpoch != before+1 {
			t.Fatalf("after fence: %+v", p)
		}
	}

	// The broker restarts (new incarnation, no clean shutdown): it leaves
	// the ELR, and as the sole last known member leads again once
	// unfenced (KIP-966's last known leader).
	cl = startClient(t, ctl, broker)
	img = waitClient(t, cl, "partitions led again", func(img *image.Image) bool {
		for _, p := range img.Topics["orders"].Partitions {
			if p.Leader != broker {
				return false
			}
		}
		return unfenced(img)
	})
	if p := img.Topics["orders"].Partitions[0]; p.LeaderEpoch != before+2 {
		t.Fatalf("leader epoch %d, want %d", p.LeaderEpoch, before+2)
	}

	// DeleteTopics by name at v4 (TopicNames), forwarded as v6.
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("doomed", 1, 1))
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(4)
	del.TopicNames = []string{"doomed", "missing"}
	dresp := forward[*kmsg.DeleteTopicsResponse](t, cl, del)
	if len(dresp.Topics) != 2 || dresp.Topics[0].ErrorCode != 0 || dresp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete: %+v", dresp.Topics)
	}
	waitClient(t, cl, "topic deleted", func(img *image.Image) bool { return img.Topics["doomed"] == nil })

	// Restart from the data dir: snapshot, then one more entry in the log
	// only. The broker is stopped and fenced first so nothing changes after.
	if err := ctl.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("after-snapshot", 2, 1))
	_ = cl.Close()
	img = waitImage(t, ctl, "broker fenced", func(img *image.Image) bool { return img.Brokers[broker].Fenced })
	want, _ := image.Marshal(img)
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.InitialControllers = nil // later starts ignore it anyway
	ctl = startController(t, cfg)
	waitImage(t, ctl, "replayed", func(got *image.Image) bool { return got.Index >= img.Index })
	got, _ := image.Marshal(ctl.fsm.current())
	if string(got) != string(want) {
		t.Fatalf("image after restart differs:\n got %s\nwant %s", got, want)
	}
}

// TestClientSkipsNonController: a voter that is not the active controller
// answers NOT_CONTROLLER, and the client moves on to the next controller.
func TestClientSkipsNonController(t *testing.T) {
	leader := startController(t, testConfig(t, t.TempDir()))
	// A voter of a two-voter quorum whose peer never exists: never leader.
	cfg := testConfig(t, t.TempDir())
	cfg.NodeID = 2
	cfg.InitialControllers = []Voter{{ID: 2, RaftAddr: cfg.RaftListen}, {ID: 3, RaftAddr: "127.0.0.1:1"}} // nothing listens on port 1
	cfg.Logger = hclog.NewNullLogger()
	follower := startController(t, cfg)

	cl := startClient(t, leader, broker, follower.Addr(), leader.Addr())
	waitClient(t, cl, "broker unfenced", unfenced)
	resp := forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("routed", 1, 1))
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	waitClient(t, cl, "topic", func(img *image.Image) bool { return img.Topics["routed"] != nil })
}

func TestParseVoters(t *testing.T) {
	v, err := ParseVoters("1@127.0.0.1:9193, 2@h:9194")
	if err != nil || len(v) != 2 || v[1].ID != 2 || v[1].RaftAddr != "h:9194" {
		t.Fatalf("%v %v", v, err)
	}
	for _, bad := range []string{"", "1", "x@h:1", "1@h", "1@h:1,1@h:2"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("ParseVoters(%q) accepted", bad)
		}
	}
}

// TestAdminRequests covers CreatePartitions, IncrementalAlterConfigs,
// ValidateOnly and DeleteTopics by id.
func TestAdminRequests(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	cl := startClient(t, ctl, broker)
	waitClient(t, cl, "broker unfenced", unfenced)

	vo := createTopic("dry", 1, 1)
	vo.ValidateOnly = true
	if r := forward[*kmsg.CreateTopicsResponse](t, cl, vo).Topics[0]; r.ErrorCode != 0 || r.TopicID != [16]byte{} {
		t.Fatalf("validate only: %+v", r)
	}
	ct := forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("grow", 1, 1))
	if ct.Topics[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(ct.Topics[0].ErrorCode))
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	for _, n := range []int32{3, 2} {
		ct := kmsg.NewCreatePartitionsRequestTopic()
		ct.Topic, ct.Count = "grow", n
		cp.Topics = []kmsg.CreatePartitionsRequestTopic{ct}
		r := forward[*kmsg.CreatePartitionsResponse](t, cl, cp).Topics[0]
		if want := map[int32]int16{3: 0, 2: kerr.InvalidPartitions.Code}[n]; r.ErrorCode != want {
			t.Fatalf("grow to %d: %v", n, kerr.ErrorForCode(r.ErrorCode))
		}
	}

	alter := func(rtype kmsg.ConfigResourceType, name, key string, op kmsg.IncrementalAlterConfigOp, value string) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = rtype, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = key, op, kmsg.StringPtr(value)
		res.Configs = append(res.Configs, c)
		req.Resources = append(req.Resources, res)
		return forward[*kmsg.IncrementalAlterConfigsResponse](t, cl, req).Resources[0].ErrorCode
	}
	for _, tc := range []struct {
		rtype     kmsg.ConfigResourceType
		name, key string
		op        kmsg.IncrementalAlterConfigOp
		value     string
		want      *kerr.Error
	}{
		{kmsg.ConfigResourceTypeTopic, "grow", "retention.ms", kmsg.IncrementalAlterConfigOpSet, "5000", nil},
		{kmsg.ConfigResourceTypeTopic, "grow", "retention.ms", kmsg.IncrementalAlterConfigOpSet, "x", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeTopic, "grow", "cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact", kerr.InvalidRequest},
		{kmsg.ConfigResourceTypeTopic, "nope", "retention.ms", kmsg.IncrementalAlterConfigOpSet, "1", kerr.UnknownTopicOrPartition},
		{kmsg.ConfigResourceTypeBroker, "", "log.retention.ms", kmsg.IncrementalAlterConfigOpSet, "7000", nil},
		// Per-broker configs: only the dynamic broker configs, for a
		// registered broker, longs >= 0.
		{kmsg.ConfigResourceTypeBroker, fmt.Sprint(broker), "leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1000000", nil},
		{kmsg.ConfigResourceTypeBroker, fmt.Sprint(broker), "follower.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "-1", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeBroker, fmt.Sprint(broker), "follower.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1MB", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeBroker, fmt.Sprint(broker), "log.retention.ms", kmsg.IncrementalAlterConfigOpSet, "1", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeBroker, fmt.Sprint(broker), "no.such.config", kmsg.IncrementalAlterConfigOpDelete, "", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeBroker, "999", "leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1", kerr.InvalidRequest},
		{kmsg.ConfigResourceTypeBroker, "-1", "leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1", kerr.InvalidRequest},
		{kmsg.ConfigResourceTypeBroker, "b1", "leader.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "1", kerr.InvalidRequest},
		{kmsg.ConfigResourceTypeBroker, "", "follower.replication.throttled.rate", kmsg.IncrementalAlterConfigOpSet, "2000000", nil},
		{kmsg.ConfigResourceTypeTopic, "grow", "leader.replication.throttled.replicas", kmsg.IncrementalAlterConfigOpSet, "0:1,2:1", nil},
		{kmsg.ConfigResourceTypeTopic, "grow", "follower.replication.throttled.replicas", kmsg.IncrementalAlterConfigOpSet, "0-1", kerr.InvalidConfig},
		{kmsg.ConfigResourceTypeTopic, "grow", "follower.replication.throttled.replicas", kmsg.IncrementalAlterConfigOpSet, "*", nil},
	} {
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if got := alter(tc.rtype, tc.name, tc.key, tc.op, tc.value); got != want {
			t.Errorf("alter %s %s %s: got %v want %v", tc.name, tc.key, tc.value, kerr.ErrorForCode(got), tc.want)
		}
	}
	img := waitClient(t, cl, "changes", func(img *image.Image) bool {
		g := img.Topics["grow"]
		return g != nil && len(g.Partitions) == 3 && g.Configs["retention.ms"] == "5000" && img.BrokerConfigs["log.retention.ms"] == "7000" &&
			g.Configs["follower.replication.throttled.replicas"] == "*"
	})
	if o := img.BrokerOverrides[broker]; len(o) != 1 || o["leader.replication.throttled.rate"] != "1000000" ||
		img.BrokerConfigs["follower.replication.throttled.rate"] != "2000000" {
		t.Errorf("broker %d overrides %v, cluster-wide %v", broker, o, img.BrokerConfigs)
	}
	if img.Topics["dry"] != nil {
		t.Fatal("ValidateOnly created a topic")
	}

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(6)
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = img.Topics["grow"].ID
	del.Topics = append(del.Topics, dt)
	if r := forward[*kmsg.DeleteTopicsResponse](t, cl, del).Topics[0]; r.ErrorCode != 0 || r.Topic == nil || *r.Topic != "grow" {
		t.Fatalf("delete by id: %+v", r)
	}
	waitClient(t, cl, "deleted", func(img *image.Image) bool { return len(img.Topics) == 0 })
}

// TestControlledShutdown: Shutdown returns once the controller moved the
// broker's leaderships away (RF=1: partitions go offline, the broker moving
// from the ISR to the ELR, from which it is elected again on a clean return).
func TestControlledShutdown(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	cl := startClient(t, ctl, broker)
	waitClient(t, cl, "broker unfenced", unfenced)
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("t", 2, 1))
	waitClient(t, cl, "topic", func(img *image.Image) bool { return img.Topics["t"] != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	img := ctl.fsm.current()
	if !img.Brokers[broker].Fenced || leadsAny(img, broker) {
		t.Fatalf("after controlled shutdown: broker %+v", img.Brokers[broker])
	}
	if p := img.Partition("t", 0); len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{broker}) {
		t.Fatalf("want ISR [] ELR [%d]: %+v", broker, p)
	}
}
