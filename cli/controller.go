package cli

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller"
)

func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run a metadata controller (a Raft voter of the controller quorum)",
		Description: "Example:\n" +
			"   skein controller --node-id 1 --data-dir /var/lib/skein/c1 --listen 127.0.0.1:9093 \\\n" +
			"       --raft-listen 127.0.0.1:9193 --initial-controllers 1@127.0.0.1:9193\n\n" +
			"   Runs until SIGINT or SIGTERM, then shuts down cleanly.",
		Flags: withCommon(
			requiredIntFlag("node-id", "this controller's node id (unique among controllers and brokers)"),
			requiredStringFlag("data-dir", "directory for Raft log, stable store and snapshots"),
			stringFlag("listen", "Kafka listener for brokers and admin clients, host:port", ""),
			stringFlag("advertised-listener", "host:port others dial to reach --listen (default: --listen)", ""),
			stringFlag("raft-listen", "Raft transport address, host:port", ""),
			stringFlag("initial-controllers", "initial quorum, ID@host:port[,ID@host:port...] of the Raft listeners; used on first start only", ""),
			fromComponent("controller", durationFlag("session-timeout", "fence a broker without heartbeats for this long", 0)),
		),
		Action: runController,
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
	if c.IsSet("session-timeout") {
		cfg.SessionTimeout = c.Duration("session-timeout")
	}
	return cfg, nil
}

func runController(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := controllerConfig(c, controller.DefaultConfig())
	if err != nil {
		return err
	}
	cfg.Logger = log.Named("controller")
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid controller configuration: %w", err)
	}
	ctx, stop := signalContext(c)
	defer stop()

	ctl, err := startController(cfg)
	if err != nil {
		return err
	}
	log.Info("controller running", "node_id", cfg.NodeID, "listen", ctl.Addr(), "raft_listen", cfg.RaftListen)
	<-ctx.Done()
	return closeController(log, ctl)
}

func startController(cfg controller.Config) (*controller.Controller, error) {
	ctl, err := controller.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.NodeID, err)
	}
	if err := ctl.Start(); err != nil {
		_ = ctl.Close()
		return nil, fmt.Errorf("start controller %d: %w", cfg.NodeID, err)
	}
	return ctl, nil
}

func closeController(log hclog.Logger, ctl *controller.Controller) error {
	log.Info("shutting down controller")
	if err := ctl.Close(); err != nil {
		return fmt.Errorf("close controller: %w", err)
	}
	log.Info("controller stopped")
	return nil
}
