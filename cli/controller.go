package cli

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller"
	"github.com/skein-io/skein/internal/httpserver"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/security"
)

func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run a metadata controller (a Raft voter of the controller quorum)",
		Description: "Example:\n" +
			"   skein controller --node-id 1 --data-dir /var/lib/skein/c1 --listen 127.0.0.1:9093 \\\n" +
			"       --raft-listen 127.0.0.1:9193 --initial-controllers 1@127.0.0.1:9193\n\n" +
			"   Runs until SIGINT or SIGTERM, then shuts down cleanly.",
		Flags: append(withCommon(
			// Required when running; not marked Required so that the
			// add-voter / remove-voter subcommands run without them.
			intFlag("node-id", "this controller's node id (unique among controllers and brokers) (required)", -1),
			stringFlag("data-dir", "directory for Raft log, stable store and snapshots (required)", ""),
			stringFlag("listen", "Kafka listener for brokers and admin clients, host:port", ""),
			stringFlag("advertised-listener", "host:port others dial to reach --listen (default: --listen)", ""),
			stringFlag("raft-listen", "Raft transport address, host:port", ""),
			stringFlag("listener-protocol", "security protocol of --listen (and of the controllers' requests to each other): PLAINTEXT or SSL", "PLAINTEXT"),
			stringFlag("raft-protocol", "security protocol of the Raft transport: PLAINTEXT or SSL (TLS with --tls-cert/--tls-key, mutual with --tls-client-ca); the same on every voter", "PLAINTEXT"),
			stringFlag("initial-controllers", "initial quorum, ID@host:port[,ID@host:port...] of the Raft listeners, the same on every initial voter; "+
				"used on first start only (empty data dir). A controller not in the list (or without it) does not bootstrap: "+
				"it waits to be added with `skein controller add-voter`", ""),
			fromComponent("controller", intFlag("snapshot-threshold", "take a metadata snapshot once this many Raft entries follow the last one (and compact the Raft log, keeping as many)", 0)),
			fromComponent("controller", durationFlag("snapshot-interval", "how often the snapshot threshold is checked (plus up to as much random jitter)", 0)),
			fromComponent("controller", durationFlag("session-timeout", "fence a broker without heartbeats for this long", 0)),
			fromComponent("controller", durationFlag("raft-heartbeat-timeout", "Raft heartbeat and election timeout (1s; the leader lease is half of it): how long a voter waits for the leader before it starts an election. Lower it only in tests", 0)),
			fromComponent("controller", boolFlag("auto-leader-rebalance-enable", "auto.leader.rebalance.enable: move leadership back to preferred replicas periodically", false)),
			fromComponent("controller", durationFlag("leader-imbalance-check-interval", "leader.imbalance.check.interval: how often leadership balance is checked", 0)),
			httpListenFlag(""),
			consoleReadOnlyFlag(),
			authorizerFlag(), superUsersFlag(), allowEveryoneFlag(),
			pprofFlag(),
		), tlsFlags()...),
		Action: runController,
		Subcommands: []*cli.Command{
			addVoterCommand(),
			removeVoterCommand(),
		},
	}
}

// controllerConfig maps the flags onto base (controller.DefaultConfig() when
// running): only flags that are set override it.
func controllerConfig(c *cli.Context, base controller.Config) (controller.Config, error) {
	cfg := base
	if c.IsSet("node-id") {
		id, err := int32Value(c, "node-id")
		if err != nil {
			return cfg, err
		}
		cfg.NodeID = id
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir")
	}
	if c.IsSet("listen") {
		cfg.Listen = c.String("listen")
	}
	if c.IsSet("advertised-listener") {
		cfg.AdvertisedListener = c.String("advertised-listener")
	}
	for _, p := range []struct {
		flag string
		dst  *security.Protocol
	}{{"listener-protocol", &cfg.ListenerProtocol}, {"raft-protocol", &cfg.RaftProtocol}} {
		if c.IsSet(p.flag) {
			v, err := protocolValue(c, p.flag)
			if err != nil {
				return cfg, err
			}
			*p.dst = v
		}
	}
	if c.IsSet("raft-listen") {
		cfg.RaftListen = c.String("raft-listen")
	}
	if c.IsSet("initial-controllers") {
		voters, err := controller.ParseVoters(c.String("initial-controllers"))
		if err != nil {
			return cfg, fmt.Errorf("--initial-controllers: %w", err)
		}
		cfg.InitialControllers = voters
	}
	if c.IsSet("snapshot-threshold") {
		n := c.Int("snapshot-threshold")
		if n < 1 {
			return cfg, fmt.Errorf("--snapshot-threshold %d: must be at least 1", n)
		}
		cfg.SnapshotThreshold = uint64(n)
	}
	if c.IsSet("snapshot-interval") {
		cfg.SnapshotInterval = c.Duration("snapshot-interval")
	}
	if c.IsSet("session-timeout") {
		cfg.SessionTimeout = c.Duration("session-timeout")
	}
	if c.IsSet("raft-heartbeat-timeout") {
		cfg.RaftHeartbeatTimeout = c.Duration("raft-heartbeat-timeout")
	}
	if c.IsSet("auto-leader-rebalance-enable") {
		cfg.AutoLeaderRebalanceEnable = c.Bool("auto-leader-rebalance-enable")
	}
	if c.IsSet("leader-imbalance-check-interval") {
		cfg.LeaderImbalanceCheckInterval = c.Duration("leader-imbalance-check-interval")
	}
	az, err := authorizerFlags(c)
	if err != nil {
		return cfg, err
	}
	cfg.Authorizer, cfg.SuperUsers, cfg.AllowEveryoneIfNoACL = az.enabled, az.superUsers, az.allowEveryone
	return cfg, nil
}

func runController(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if c.Args().Present() {
		return fmt.Errorf("unknown controller subcommand %q: use add-voter or remove-voter, or no argument to run a controller", c.Args().First())
	}
	if !c.IsSet("node-id") || !c.IsSet("data-dir") {
		return fmt.Errorf("skein controller needs --node-id and --data-dir")
	}
	cfg, err := controllerConfig(c, controller.DefaultConfig())
	if err != nil {
		return err
	}
	cfg.Logger = log.Named("controller")
	if cfg.TLS, err = loadNodeTLS(c, log.Named("tls")); err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	cfg.Metrics = reg
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid controller configuration: %w", err)
	}
	ctx, stop := signalContext(c)
	defer stop()
	stopPprof, err := servePprofFlag(c, log)
	if err != nil {
		return err
	}
	defer stopPprof()

	ctl, err := controller.New(cfg)
	if err != nil {
		return fmt.Errorf("controller %d: %w", cfg.NodeID, err)
	}
	srv, err := startHTTP(c, reg, []httpserver.Check{{Ready: ctl.Ready}}, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer srv.Close()
	}
	ccfg := consoleConfig(c, fmt.Sprintf("controller %d", cfg.NodeID), ctl.Image)
	ccfg.QuorumAddr = controllerAddr(ctl)
	if cfg.ListenerProtocol.TLS() {
		// The controller knows not the brokers' protocol: it takes its
		// own listener's for theirs too.
		ccfg.Dial, ccfg.QuorumDial = cfg.TLS.Dial(), cfg.TLS.Dial()
	}
	stopConsole, err := serveConsole(srv, ccfg, log)
	if err != nil {
		return err
	}
	defer stopConsole()
	if err := ctl.Start(); err != nil {
		_ = ctl.Close()
		return fmt.Errorf("start controller %d: %w", cfg.NodeID, err)
	}
	watchTLS(ctx, c, cfg.TLS)
	log.Info("controller running", "node_id", cfg.NodeID, "listen", ctl.Addr(), "raft_listen", cfg.RaftListen)
	<-ctx.Done()
	return closeController(log, ctl)
}

// controllerAddr is ctl's Kafka listener once it is started (and in the
// quorum), else "": the console then asks through the brokers.
func controllerAddr(ctl *controller.Controller) func() string {
	return func() string {
		if ok, _ := ctl.Ready(); !ok {
			return ""
		}
		return ctl.Addr()
	}
}

func closeController(log hclog.Logger, ctl *controller.Controller) error {
	log.Info("shutting down controller")
	if err := ctl.Close(); err != nil {
		return fmt.Errorf("close controller: %w", err)
	}
	log.Info("controller stopped")
	return nil
}
