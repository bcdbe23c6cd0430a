package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller"
	"github.com/skein-io/skein/dataplane"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/httpserver"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/security"
)

// devControllerID is the node id of the dev cluster's controller; brokers
// are devFirstBrokerID, devFirstBrokerID+1, ...
const (
	devControllerID  = 1
	devFirstBrokerID = 101
)

// defaultDevHTTP is where `skein dev` serves /metrics, /healthz and
// /readyz for all its nodes.
const defaultDevHTTP = "127.0.0.1:8080"

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a whole local cluster (1 controller, N brokers) in one process",
		Description: "Ports: broker 101 listens on --base-port, the controller on --base-port+1,\n" +
			"   brokers 102, 103, ... on --base-port+2, +3, ... Data lives in --data-dir/controller-1,\n" +
			"   --data-dir/broker-101, ... Runs until SIGINT or SIGTERM.",
		Flags: withCommon(append([]cli.Flag{
			stringFlag("data-dir", "directory for the cluster's data", "./skein-data"),
			intFlag("brokers", "number of brokers (3: topics get 3 replicas and min.insync.replicas=2 by default)", 3),
			stringFlag("host", "address every listener binds to", "127.0.0.1"),
			intFlag("base-port", "Kafka port of the first broker; the others and the controller follow it", 9092),
			intFlag("raft-port", "Raft port of the controller (0: pick a free port)", 0),
			durationFlag("startup-timeout", "give up when the brokers have not registered after this long", time.Minute),
			boolFlag("tls", "every listener (and the Raft transport) on TLS, with a CA and node certificate generated at each start; "+
				"writes ca.pem and client.properties (for kcat -F and skein --command-config) into --data-dir", false),
			boolFlag("secure", "SASL_SSL on every listener (TLS as --tls, SCRAM logins) with ACLs on and one super user, admin: "+
				"client.properties in --data-dir holds admin's login (its password is kept in admin.password)", false),
			httpListenFlag(defaultDevHTTP),
			consoleReadOnlyFlag(),
			metricsPerPartitionFlag(),
			pprofFlag(),
			heapHeadroomFlag(),
			logWritebackFlag(),
			replicaFetchLingerFlag(),
		}, groupFlags()...)...),
		Action: runDev,
	}
}

// devLayout is where each node of a dev cluster listens and keeps its data.
type devLayout struct {
	dataDir        string
	controllerAddr string
	raftAddr       string
	brokerIDs      []int32
	brokerAddrs    []string
	// httpURL is where the console, /metrics, /healthz and /readyz are served ("":
	// not served).
	httpURL string
	// tls is the dev cluster's TLS (--tls or --secure; nil otherwise).
	tls *devTLS
	// secure is --secure's SASL login and ACLs (nil otherwise).
	secure *devSecure
}

// planDev computes the dev cluster's layout. raftPort 0 must have been
// resolved by the caller.
func planDev(dataDir, host string, brokers, basePort, raftPort int) (devLayout, error) {
	if brokers < 1 {
		return devLayout{}, fmt.Errorf("--brokers %d: want at least 1", brokers)
	}
	if basePort < 1 || basePort+brokers > 65535 {
		return devLayout{}, fmt.Errorf("--base-port %d: the cluster needs ports %d..%d", basePort, basePort, basePort+brokers)
	}
	if raftPort < 1 || raftPort > 65535 {
		return devLayout{}, fmt.Errorf("--raft-port %d is out of range", raftPort)
	}
	if raftPort >= basePort && raftPort <= basePort+brokers {
		return devLayout{}, fmt.Errorf("--raft-port %d collides with the Kafka ports %d..%d", raftPort, basePort, basePort+brokers)
	}
	l := devLayout{
		dataDir:        dataDir,
		controllerAddr: net.JoinHostPort(host, strconv.Itoa(basePort+1)),
		raftAddr:       net.JoinHostPort(host, strconv.Itoa(raftPort)),
	}
	for i := range brokers {
		port := basePort
		if i > 0 {
			port = basePort + 1 + i
		}
		l.brokerIDs = append(l.brokerIDs, int32(devFirstBrokerID+i))
		l.brokerAddrs = append(l.brokerAddrs, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return l, nil
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free raft port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func runDev(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	raftPort := c.Int("raft-port")
	if raftPort == 0 {
		if raftPort, err = freePort(c.String("host")); err != nil {
			return err
		}
	}
	layout, err := planDev(c.String("data-dir"), c.String("host"), c.Int("brokers"), c.Int("base-port"), raftPort)
	if err != nil {
		return err
	}
	if c.Bool("tls") || c.Bool("secure") {
		if layout.tls, err = makeDevTLS(layout.dataDir, c.String("host"), log.Named("tls")); err != nil {
			return err
		}
	}
	if c.Bool("secure") {
		if layout.secure, err = makeDevSecure(layout.dataDir, layout.tls, log.Named("tls")); err != nil {
			return err
		}
	}
	ctx, stop := signalContext(c)
	defer stop()
	if err := keepHeapHeadroom(ctx, c, log); err != nil {
		return err
	}
	stopPprof, err := servePprofFlag(c, log)
	if err != nil {
		return err
	}
	defer stopPprof()

	groups, err := groupConfig(c, dataplane.DefaultConfig().Groups)
	if err != nil {
		return err
	}
	txns, err := txnConfig(c, dataplane.DefaultConfig().Txns)
	if err != nil {
		return err
	}
	writeback, err := logWriteback(c)
	if err != nil {
		return err
	}
	linger, err := replicaFetchLinger(c)
	if err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	cluster := &devCluster{log: log, groups: &groups, txns: &txns, metrics: reg, perPartition: c.Bool("metrics-per-partition"),
		writeback: writeback, linger: &linger}
	defer cluster.close()
	if err := cluster.create(layout); err != nil {
		return err
	}
	srv, err := startHTTP(c, reg, cluster.checks(), log)
	switch {
	case err != nil && !c.IsSet("http-listen") && errors.Is(err, syscall.EADDRINUSE):
		// The default port is taken (another dev cluster, another
		// program): the cluster runs without the HTTP endpoint.
		log.Warn("HTTP endpoint off: its default address is in use; pick one with --http-listen", "address", c.String("http-listen"))
		srv = nil
	case err != nil:
		return err
	}
	if srv != nil {
		defer srv.Close()
		layout.httpURL = srv.URL()
	}
	ccfg := consoleConfig(c, "dev cluster (controller "+strconv.Itoa(devControllerID)+")", cluster.controller.Image)
	ccfg.QuorumAddr = controllerAddr(cluster.controller)
	if layout.tls != nil {
		ccfg.Dial, ccfg.QuorumDial = layout.tls.material.Dial(), layout.tls.material.Dial()
	}
	if layout.secure != nil {
		ccfg.SASL, ccfg.QuorumSASL = layout.secure.login.ClientMechanism(), layout.secure.login.ClientMechanism()
	}
	stopConsole, err := serveConsole(srv, ccfg, log)
	if err != nil {
		return err
	}
	defer stopConsole()
	if err := cluster.start(); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, c.Duration("startup-timeout"))
	err = waitForBrokers(waitCtx, log, layout)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	printDevWelcome(c.App.Writer, layout)
	<-ctx.Done()
	log.Info("shutting down dev cluster")
	return cluster.close()
}

// devCluster is the nodes of a dev cluster: create makes them, start
// runs them.
type devCluster struct {
	log        hclog.Logger
	controller *controller.Controller
	brokers    []*dataplane.Broker
	closed     bool
	// groups, when set, configures every broker's group coordinator.
	groups *group.Config
	// writeback is --log-writeback-bytes (dataplane.Config.LogWritebackBytes).
	writeback int64
	// linger, when set, is --replica-fetch-linger
	// (dataplane.Config.ReplicaFetchLinger).
	linger *time.Duration
	// txns, when set, configures every broker's transaction coordinator.
	txns *txn.Config
	// metrics, when set, is where every node registers its metrics;
	// perPartition turns on the brokers' per-partition series.
	metrics      prometheus.Registerer
	perPartition bool
	layout       devLayout
}

// create makes the controller and the brokers of l, without starting them.
func (d *devCluster) create(l devLayout) error {
	d.layout = l
	ccfg := controller.DefaultConfig()
	ccfg.NodeID = devControllerID
	ccfg.DataDir = filepath.Join(l.dataDir, "controller-"+strconv.Itoa(devControllerID))
	ccfg.Listen = l.controllerAddr
	ccfg.RaftListen = l.raftAddr
	ccfg.InitialControllers = []controller.Voter{{ID: devControllerID, RaftAddr: l.raftAddr}}
	ccfg.Logger = d.log.Named("controller-" + strconv.Itoa(devControllerID))
	ccfg.Metrics = d.metrics
	if l.tls != nil {
		ccfg.TLS, ccfg.ListenerProtocol, ccfg.RaftProtocol = l.tls.material, security.SSL, security.SSL
	}
	if s := l.secure; s != nil {
		ccfg.ListenerProtocol, ccfg.PeerSASL = security.SASLSSL, s.login
		ccfg.BootstrapScram = []controller.BootstrapScram{{Mechanism: s.login.Mechanism, User: s.login.User,
			Password: s.login.Password, Iterations: 4096}}
		ccfg.Authorizer, ccfg.SuperUsers = true, []string{"User:" + s.login.User}
	}
	if err := os.MkdirAll(ccfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := ccfg.Validate(); err != nil {
		return fmt.Errorf("invalid controller configuration: %w", err)
	}
	ctl, err := controller.New(ccfg)
	if err != nil {
		return fmt.Errorf("controller %d: %w", ccfg.NodeID, err)
	}
	d.controller = ctl

	for i, id := range l.brokerIDs {
		bcfg := dataplane.DefaultConfig()
		bcfg.NodeID = id
		bcfg.DataDir = filepath.Join(l.dataDir, "broker-"+strconv.Itoa(int(id)))
		bcfg.Listen = l.brokerAddrs[i]
		bcfg.Controllers = []string{l.controllerAddr}
		bcfg.Logger = d.log.Named("broker-" + strconv.Itoa(int(id)))
		bcfg.Metrics = d.metrics
		bcfg.MetricsPerPartition = d.perPartition
		if d.txns != nil {
			bcfg.Txns = *d.txns
		}
		if l.tls != nil {
			bcfg.TLS, bcfg.ListenerProtocol, bcfg.ControllerProtocol = l.tls.material, security.SSL, security.SSL
		}
		if s := l.secure; s != nil {
			bcfg.ListenerProtocol, bcfg.ControllerProtocol, bcfg.InterBrokerSASL = security.SASLSSL, security.SASLSSL, s.login
			bcfg.Authorizer, bcfg.SuperUsers = true, []string{"User:" + s.login.User}
		}
		if d.groups != nil {
			bcfg.Groups = *d.groups
		}
		bcfg.LogWritebackBytes = d.writeback
		if d.linger != nil {
			bcfg.ReplicaFetchLinger = *d.linger
		}
		if err := os.MkdirAll(bcfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if err := bcfg.Validate(); err != nil {
			return fmt.Errorf("invalid broker configuration: %w", err)
		}
		b, err := dataplane.NewBroker(bcfg)
		if err != nil {
			return fmt.Errorf("broker %d: %w", id, err)
		}
		d.brokers = append(d.brokers, b)
	}
	return nil
}

// checks are the nodes' readiness checks, for /readyz.
func (d *devCluster) checks() []httpserver.Check {
	checks := []httpserver.Check{{Name: "controller " + strconv.Itoa(devControllerID), Ready: d.controller.Ready}}
	for i, b := range d.brokers {
		checks = append(checks, httpserver.Check{Name: "broker " + strconv.Itoa(int(d.layout.brokerIDs[i])), Ready: b.Ready})
	}
	return checks
}

// start starts the nodes create made: the controller, then each broker
// (each returns once registered and unfenced).
func (d *devCluster) start() error {
	l := d.layout
	if err := d.controller.Start(); err != nil {
		return fmt.Errorf("start controller %d: %w", devControllerID, err)
	}
	if s := l.secure; s != nil {
		// The brokers log in as admin: wait (bounded) until the controller
		// has written admin's credential, rather than have them refused.
		deadline := time.Now().Add(30 * time.Second)
		for len(d.controller.Image().ScramUsers[s.login.User]) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, b := range d.brokers {
		if err := b.Start(); err != nil {
			return fmt.Errorf("start broker %d: %w", l.brokerIDs[i], err)
		}
	}
	d.log.Info("dev cluster started", "controller", l.controllerAddr, "raft", l.raftAddr, "brokers", l.brokerAddrs)
	return nil
}

// close stops the brokers (each a controlled shutdown while the controller
// still runs), then the controller. Idempotent.
func (d *devCluster) close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, b := range d.brokers {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close broker: %w", err))
		}
	}
	if d.controller != nil {
		if err := d.controller.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close controller: %w", err))
		}
	}
	return errors.Join(errs...)
}

// waitForBrokers polls the brokers' metadata until every broker of the
// layout is listed, or ctx ends.
func waitForBrokers(ctx context.Context, log hclog.Logger, l devLayout) error {
	opts := []kgo.Opt{kgo.SeedBrokers(l.brokerAddrs...), kgo.ClientID("skein-dev"),
		kgo.WithLogger(kgoLogger{log: log.Named("client")})}
	if l.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(l.tls.material.ClientConfig()))
	}
	if l.secure != nil {
		opts = append(opts, kgo.SASL(l.secure.login.ClientMechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	missing := l.brokerIDs
	for {
		// A Metadata request of its own each time: kadm's BrokerMetadata
		// answers from the client's cached broker list, which franz-go
		// refreshes only every metadata.max.age (5 minutes), so a broker
		// missing from the first answer stayed missing.
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		md, err := req.RequestWith(reqCtx, cl)
		cancel()
		if err == nil {
			missing = missingBrokers(l.brokerIDs, md.Brokers)
			if len(missing) == 0 {
				return nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("brokers %v did not register in time (last error: %v); see the log above", missing, lastErr)
			}
			return fmt.Errorf("brokers %v did not register in time; see the log above", missing)
		case <-tick.C:
		}
	}
}

// missingBrokers returns the ids of want that are not in have.
func missingBrokers(want []int32, have []kmsg.MetadataResponseBroker) []int32 {
	seen := make(map[int32]bool, len(have))
	for _, b := range have {
		seen[b.NodeID] = true
	}
	var missing []int32
	for _, id := range want {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// printDevWelcome tells the operator how to reach the cluster. Its first
// line is stable: scripts wait for "Bootstrap server: ".
func printDevWelcome(w io.Writer, l devLayout) {
	bootstrap := l.brokerAddrs[0]
	flag := ""
	if bootstrap != defaultBootstrapServer {
		flag = " --bootstrap-server " + bootstrap
	}
	kcat := "kcat -b " + bootstrap
	if l.tls != nil {
		flag += " --command-config " + l.tls.clientProperties
		kcat += " -F " + l.tls.clientProperties
	}
	fmt.Fprintf(w, "Skein dev cluster ready. Bootstrap server: %s\n", bootstrap)
	t := newTable(w)
	fmt.Fprintf(t, "  controller %d\t%s\t(raft %s)\n", devControllerID, l.controllerAddr, l.raftAddr)
	for i, id := range l.brokerIDs {
		fmt.Fprintf(t, "  broker %d\t%s\t\n", id, l.brokerAddrs[i])
	}
	_ = t.Flush()
	fmt.Fprintf(w, "  data dir: %s\n", l.dataDir)
	if l.httpURL != "" {
		fmt.Fprintf(w, "  web console: %s\n", l.httpURL)
		fmt.Fprintf(w, "  metrics and health: %smetrics  %shealthz  %sreadyz\n", l.httpURL, l.httpURL, l.httpURL)
	}
	switch {
	case l.secure != nil:
		fmt.Fprintf(w, "  SASL_SSL on every listener, ACLs on: CA %s\n", l.tls.caPath)
		fmt.Fprintf(w, "  super user %s (SCRAM-SHA-512), its login in client properties %s\n", l.secure.login.User, l.tls.clientProperties)
		fmt.Fprintf(w, "  add users with: skein user create NAME --password-file F%s\n", flag)
		fmt.Fprintf(w, "  and grant them: skein acl create --allow-principal User:NAME --operation Read --topic T%s\n", flag)
	case l.tls != nil:
		fmt.Fprintf(w, "  TLS on every listener: CA %s, client properties %s\n", l.tls.caPath, l.tls.clientProperties)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Topics get %s by default.\n", defaultReplicationText(len(l.brokerIDs)))
	fmt.Fprintf(w, "Try:\n")
	fmt.Fprintf(w, "  skein topic create demo --partitions 3%s\n", flag)
	fmt.Fprintf(w, "  skein topic describe demo%s\n", flag)
	fmt.Fprintf(w, "  echo hello | skein produce demo%s\n", flag)
	fmt.Fprintf(w, "  skein consume demo --from-beginning%s\n", flag)
	fmt.Fprintf(w, "  %s -L\n", kcat)
	fmt.Fprintf(w, "  echo hello | %s -P -t demo\n", kcat)
	fmt.Fprintf(w, "  %s -C -t demo -o beginning -e\n", kcat)
	fmt.Fprintf(w, "  skein replicas verify demo%s\n", flag)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// defaultReplicationText says what the controller's defaults give a new
// topic on a cluster of n brokers (see controller.Config).
func defaultReplicationText(n int) string {
	if n >= 3 {
		return "replication factor 3 and min.insync.replicas=2"
	}
	return fmt.Sprintf("replication factor %d and min.insync.replicas=1", n)
}
