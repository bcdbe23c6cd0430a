package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// First node ids: controllers are 1, 2, 3...; brokers 101, 102, ...
const (
	FirstControllerID int32 = 1
	FirstBrokerID     int32 = 101
)

// Options describe a cluster to start.
type Options struct {
	Controllers int // default 1
	Brokers     int // default 1

	// ControllerArgs and BrokerArgs are appended to every controller's and
	// broker's command line (for example "--session-timeout", "3s").
	ControllerArgs []string
	BrokerArgs     []string

	// Proxies puts loopback proxies (see Proxy) in the broker's network
	// paths: each broker advertises a proxy in front of its listener, so
	// clients and other brokers' follower fetchers reach it through
	// Node.Proxy, and it reaches the controllers through its own proxies,
	// Node.ControllerProxies. Cluster.Isolate and CutControllers use them.
	Proxies bool

	// ExternalListener gives every broker two named listeners: INTERNAL
	// on Node.Addr (what the harness and Bootstrap use) and EXTERNAL on
	// Node.ExternalAddr, each advertising its own address.
	// InterBrokerListener is then --inter-broker-listener-name ("": the
	// first, INTERNAL).
	ExternalListener    bool
	InterBrokerListener string
	// HTTP gives every node an HTTP endpoint (--http-listen on a free
	// loopback port, Node.HTTPAddr): /metrics, /healthz, /readyz.
	HTTP bool

	// FsyncJournal starts every broker with FsyncJournalEnv set to its own
	// journal file, Node.JournalPath (next to its log file, outside its
	// data directory, appended to across restarts), for Node.MachineCrash.
	FsyncJournal bool

	// RaftHeartbeatTimeout is the controllers' --raft-heartbeat-timeout
	// (how long a voter waits for the leader before it starts an
	// election; the leader's lease is half of it). Default:
	// LoneControllerRaftTimeout for a cluster of one controller, which
	// elects itself after that long instead of the binary's 1-2 s;
	// QuorumRaftTimeout for a quorum of several. Ignored when the binary
	// has no such flag.
	RaftHeartbeatTimeout time.Duration

	// TLS puts the cluster on TLS (see TLSOptions); Cluster.TLS then has
	// the material, and the harness's clients use it.
	TLS *TLSOptions

	// StartTimeout bounds each node's readiness wait (default 60s).
	StartTimeout time.Duration
	// LogTailLines is how many lines of each node's log a failed test
	// prints (default 60).
	LogTailLines int
}

func (o Options) withDefaults() Options {
	if o.Controllers <= 0 {
		o.Controllers = 1
	}
	if o.Brokers <= 0 {
		o.Brokers = 1
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.RaftHeartbeatTimeout <= 0 {
		o.RaftHeartbeatTimeout = QuorumRaftTimeout
		if o.Controllers == 1 {
			o.RaftHeartbeatTimeout = LoneControllerRaftTimeout
		}
	}
	if o.LogTailLines <= 0 {
		o.LogTailLines = 60
	}
	return o
}

// The default Options.RaftHeartbeatTimeout: of a cluster with one
// controller (a one-voter quorum has nobody to wait for), and of one with
// several, where half the binary's 1 s still leaves a leader whose
// followers answer within its 250 ms lease on a loaded machine (its
// heartbeats go out every 50 ms), and halves what a test waits for the
// first election and for each one after a controller is killed.
const (
	LoneControllerRaftTimeout = 100 * time.Millisecond
	QuorumRaftTimeout         = 500 * time.Millisecond
)

// Cluster is a set of running skein processes: a controller quorum and
// brokers, each with its own data directory under t.TempDir().
type Cluster struct {
	Controllers []*Node
	Brokers     []*Node
	// TLS is the cluster's TLS material (Options.TLS; nil otherwise).
	TLS *ClusterTLS

	t    testing.TB
	opts Options
	bin  string
	dir  string
}

// StartCluster starts opts.Controllers controllers, then opts.Brokers
// brokers, and waits until every broker is listed in Metadata. Cleanup
// stops brokers, then controllers, each with SIGTERM, and fails the test
// if one does not exit cleanly or if a node exited on its own during the
// test; on failure it prints the tail of every node's log.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts = opts.withDefaults()
	c := &Cluster{t: t, opts: opts, bin: Binary(t), dir: t.TempDir()}

	// Cleanups run last-registered-first: the log tails print after the
	// nodes were stopped, so they show the shutdown too.
	t.Cleanup(c.reportLogs)
	t.Cleanup(c.closeProxies)
	t.Cleanup(c.stopAll)

	if opts.TLS != nil {
		c.TLS = newClusterTLS(t, c.dir, *opts.TLS)
	}
	var voters []string
	for i := range opts.Controllers {
		id := FirstControllerID + int32(i)
		n := &Node{Role: RoleController, ID: id, Addr: FreeAddr(t), RaftAddr: FreeAddr(t), cluster: c}
		voters = append(voters, fmt.Sprintf("%d@%s", id, n.RaftAddr))
		c.Controllers = append(c.Controllers, n)
	}
	var raftArgs []string
	if opts.RaftHeartbeatTimeout > 0 && SupportsFlag(t, "controller", "raft-heartbeat-timeout") {
		raftArgs = []string{"--raft-heartbeat-timeout", opts.RaftHeartbeatTimeout.String()}
	}
	for _, n := range c.Controllers {
		n.DataDir = filepath.Join(c.dir, n.name())
		args := []string{"controller",
			"--node-id", strconv.Itoa(int(n.ID)),
			"--data-dir", n.DataDir,
			"--listen", n.Addr,
			"--raft-listen", n.RaftAddr,
			"--initial-controllers", strings.Join(voters, ","),
			"--log-level", logLevel(),
		}
		args = append(args, raftArgs...)
		args = append(args, c.httpArgs(n)...)
		if c.TLS != nil {
			args = append(args, c.TLS.nodeArgs(t, n)...)
		}
		n.Process = newProcess(n.name(), filepath.Join(c.dir, n.name()+".log"), c.bin, append(args, opts.ControllerArgs...))
	}
	for i := range opts.Brokers {
		id := FirstBrokerID + int32(i)
		n := &Node{Role: RoleBroker, ID: id, Addr: FreeAddr(t), cluster: c}
		n.DataDir = filepath.Join(c.dir, n.name())
		controllers := c.ControllerAddrs()
		listen := []string{"--listen", n.Addr}
		var extra []string
		if opts.Proxies {
			controllers = c.proxyBroker(n)
			extra = []string{"--advertised-listener", n.Proxy.Addr}
		}
		if opts.ExternalListener {
			if opts.Proxies {
				t.Fatal("harness: Options.ExternalListener does not go with Proxies")
			}
			n.ExternalAddr = FreeAddr(t)
			listen = []string{"--listeners", "INTERNAL://" + n.Addr + ",EXTERNAL://" + n.ExternalAddr}
			if opts.InterBrokerListener != "" {
				listen = append(listen, "--inter-broker-listener-name", opts.InterBrokerListener)
			}
		}
		args := []string{"broker",
			"--node-id", strconv.Itoa(int(n.ID)),
			"--data-dir", n.DataDir,
		}
		args = append(args, listen...)
		args = append(args,
			"--controllers", controllers,
			"--log-level", logLevel(),
		)
		args = append(args, extra...)
		args = append(args, c.httpArgs(n)...)
		if c.TLS != nil {
			args = append(args, c.TLS.nodeArgs(t, n)...)
		}
		n.Process = newProcess(n.name(), filepath.Join(c.dir, n.name()+".log"), c.bin, append(args, opts.BrokerArgs...))
		if opts.FsyncJournal {
			n.JournalPath = filepath.Join(c.dir, n.name()+".fsync-journal")
			n.Process.env = append(n.Process.env, FsyncJournalEnv+"="+n.JournalPath)
		}
		c.Brokers = append(c.Brokers, n)
	}

	for _, n := range c.Controllers {
		if err := n.Start(); err != nil {
			t.Fatalf("start %s: %v", n.Name, err)
		}
	}
	for _, n := range c.Controllers {
		c.waitReady(n)
	}
	for _, n := range c.Brokers {
		if err := n.Start(); err != nil {
			t.Fatalf("start %s: %v", n.Name, err)
		}
	}
	for _, n := range c.Brokers {
		c.waitReady(n)
	}
	c.WaitForBrokers(opts.StartTimeout)
	t.Logf("cluster up: controllers %s, bootstrap %s, data under %s", c.ControllerAddrs(), c.Bootstrap(), c.dir)
	return c
}

func (n *Node) name() string { return fmt.Sprintf("%s-%d", n.Role, n.ID) }

// httpArgs gives n an HTTP endpoint with Options.HTTP: a free port and
// --http-listen.
func (c *Cluster) httpArgs(n *Node) []string {
	if !c.opts.HTTP {
		return nil
	}
	n.HTTPAddr = FreeAddr(c.t)
	return []string{"--http-listen", n.HTTPAddr}
}

func logLevel() string {
	if l := os.Getenv("SKEIN_TEST_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// waitReady waits until n accepts connections and, for a broker, until the
// broker itself lists n in Metadata. It fails fast if n exits meanwhile.
func (c *Cluster) waitReady(n *Node) {
	c.t.Helper()
	WaitFor(c.t, c.opts.StartTimeout, func() (bool, string) {
		if exited, err := n.Exited(); exited {
			c.t.Fatalf("%s exited while starting (%s); log tail:\n%s", n.Name, exitText(err), n.Tail(c.opts.LogTailLines))
		}
		if ok, why := dialable(n.Addr); !ok {
			return false, fmt.Sprintf("%s: dial %s: %s", n.Name, n.Addr, why)
		}
		if n.Role == RoleBroker {
			return brokerListed(n.Addr, c.TLS.kgoOpts(), n.ID)
		}
		return true, ""
	})
}

// WaitForBrokers waits until every running broker lists every running
// broker in Metadata.
func (c *Cluster) WaitForBrokers(timeout time.Duration) {
	c.t.Helper()
	WaitFor(c.t, timeout, func() (bool, string) {
		var ids []int32
		for _, b := range c.Brokers {
			if b.Running() {
				ids = append(ids, b.ID)
			}
		}
		for _, b := range c.Brokers {
			if !b.Running() {
				continue
			}
			if ok, why := brokerListed(b.Addr, c.TLS.kgoOpts(), ids...); !ok {
				return false, why
			}
		}
		return true, ""
	})
}

// Bootstrap returns the Kafka listeners of all brokers, comma-separated
// (for --bootstrap-server, kcat -b, kgo.SeedBrokers); with Options.Proxies,
// their proxies' addresses.
func (c *Cluster) Bootstrap() string {
	addrs := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		addrs[i] = b.Addr
		if b.Proxy != nil {
			addrs[i] = b.Proxy.Addr
		}
	}
	return strings.Join(addrs, ",")
}

// ControllerAddrs returns the Kafka listeners of all controllers,
// comma-separated (for a broker's --controllers).
func (c *Cluster) ControllerAddrs() string {
	addrs := make([]string, len(c.Controllers))
	for i, n := range c.Controllers {
		addrs[i] = n.Addr
	}
	return strings.Join(addrs, ",")
}

// Broker returns the broker with node id id, failing the test if there is
// none.
func (c *Cluster) Broker(id int32) *Node {
	for _, b := range c.Brokers {
		if b.ID == id {
			return b
		}
	}
	c.t.Fatalf("no broker %d", id)
	return nil
}

// Defaults of Client that franz-go sets for long-lived production
// clients, where a test waits on them:
//   - ClientMetadataMinAge (kgo.MetadataMinAge): how soon a client may ask
//     for metadata again. At franz-go's 5 s, a client kept sending to a
//     killed leader (or asking a dead coordinator) for seconds after the
//     cluster had moved on.
//   - ClientFetchMaxWait (kgo.FetchMaxWait): how long a broker holds a
//     fetch that finds nothing new. A partition a consumer adds while its
//     fetch to that broker is held (say, once its start offset is listed)
//     waits for the held fetch to return: at franz-go's 5 s, a group
//     member took 5 s to read records that were there when it joined.
const (
	ClientMetadataMinAge = 250 * time.Millisecond
	ClientFetchMaxWait   = 500 * time.Millisecond
)

// Client returns a franz-go client seeded with the brokers, with opts
// applied after the defaults (ClientMetadataMinAge, ClientFetchMaxWait);
// it is closed at cleanup.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, c.Bootstrap(), append(c.TLS.kgoOpts(), opts...)...)
}

// newClient is a client of Cluster.Client (or Compose.Client) seeded with
// bootstrap (host:port,...).
func newClient(t testing.TB, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.ClientID("skein-harness"),
		kgo.MetadataMinAge(ClientMetadataMinAge),
		kgo.FetchMaxWait(ClientFetchMaxWait),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client on a new franz-go client (closed at cleanup).
func (c *Cluster) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(c.Client(t))
}

// CLIResult is the outcome of one skein CLI run.
type CLIResult struct {
	Stdout, Stderr string
	Err            error // nil when the command exited with status 0
}

// RunCLI runs `skein args...` with stdin (may be nil) and the
// --bootstrap-server of this cluster appended (and, with Options.TLS,
// --command-config naming the harness's client properties), bounded by
// timeout.
func (c *Cluster) RunCLI(t testing.TB, timeout time.Duration, stdin io.Reader, args ...string) CLIResult {
	t.Helper()
	args = append(args, "--bootstrap-server", c.Bootstrap())
	if c.TLS != nil {
		args = append(args, "--command-config", c.TLS.ClientProperties)
	}
	return RunCommand(t, timeout, stdin, c.bin, args...)
}

// RunCommand runs any command with stdin (may be nil), bounded by timeout,
// without the caller's SKEIN_* environment, and logs its command line.
func RunCommand(t testing.TB, timeout time.Duration, stdin io.Reader, bin string, args ...string) CLIResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	t.Logf("ran %s %s (%v, %s)", filepath.Base(bin), strings.Join(args, " "), time.Since(start).Round(time.Millisecond), exitText(err))
	return CLIResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// stopAll stops the brokers, then the controllers, and reports unclean
// exits and nodes that exited on their own.
func (c *Cluster) stopAll() {
	for _, group := range [][]*Node{c.Brokers, c.Controllers} {
		for _, n := range group {
			if n.Process == nil {
				continue
			}
			if err := n.Stop(DefaultStopTimeout); err != nil {
				c.t.Errorf("cleanup: %v", err)
			}
			for _, s := range n.surprises() {
				c.t.Errorf("%s: %s", n.Name, s)
			}
		}
	}
}

// reportLogs prints every node's log tail when the test failed.
func (c *Cluster) reportLogs() {
	if !c.t.Failed() {
		return
	}
	for _, n := range append(append([]*Node(nil), c.Controllers...), c.Brokers...) {
		if n.Process == nil {
			continue
		}
		c.t.Logf("---- %s: last %d lines of %s ----\n%s", n.Name, c.opts.LogTailLines, n.LogPath, n.Tail(c.opts.LogTailLines))
	}
}
