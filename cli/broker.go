package cli

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/dataplane"
)

func brokerCommand() *cli.Command {
	return &cli.Command{
		Name:  "broker",
		Usage: "run a broker (a data node serving Kafka clients)",
		Description: "Example:\n" +
			"   skein broker --node-id 101 --data-dir /var/lib/skein/b101 --listen 127.0.0.1:9092 \\\n" +
			"       --controllers 127.0.0.1:9093\n\n" +
			"   Runs until SIGINT or SIGTERM, then shuts down cleanly (controlled shutdown).",
		Flags: withCommon(
			requiredIntFlag("node-id", "this broker's node id (unique among controllers and brokers)"),
			requiredStringFlag("data-dir", "directory for partition logs"),
			stringFlag("listen", "Kafka listener, host:port", ""),
			stringFlag("advertised-listener", "host:port given to clients (default: --listen)", ""),
			stringFlag("rack", "rack id for rack-aware replica placement", ""),
			requiredStringFlag("controllers", "Kafka listeners of the controllers, host:port[,host:port...]"),
			fromComponent("broker", boolFlag("auto-create-topics", "auto.create.topics.enable", false)),
			fromComponent("broker", intFlag("num-partitions", "num.partitions for auto-created topics", 0)),
			fromComponent("broker", intFlag("default-replication-factor", "default.replication.factor", 0)),
			fromComponent("broker", intFlag("message-max-bytes", "message.max.bytes", 0)),
			fromComponent("broker", durationFlag("heartbeat-interval", "interval of heartbeats to the controller", 0)),
			fromComponent("broker", durationFlag("replica-lag-time-max", "replica.lag.time.max.ms: an in-sync follower not caught up for this long leaves the ISR", 0)),
		),
		Action: runBroker,
	}
}

// brokerConfig maps the flags onto base (dataplane.DefaultConfig() when
// running): only flags that are set override it.
func brokerConfig(c *cli.Context, base dataplane.Config) (dataplane.Config, error) {
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
	if c.IsSet("rack") {
		cfg.Rack = c.String("rack")
	}
	if c.IsSet("controllers") {
		cfg.Controllers = splitList(c.String("controllers"))
		if len(cfg.Controllers) == 0 {
			return cfg, fmt.Errorf("--controllers is empty: give the controllers' Kafka listeners, host:port[,host:port...]")
		}
	}
	if c.IsSet("auto-create-topics") {
		cfg.AutoCreateTopics = c.Bool("auto-create-topics")
	}
	if c.IsSet("num-partitions") {
		n, err := int32Value(c, "num-partitions")
		if err != nil {
			return cfg, err
		}
		cfg.NumPartitions = n
	}
	if c.IsSet("default-replication-factor") {
		rf, err := int16Value(c, "default-replication-factor")
		if err != nil {
			return cfg, err
		}
		cfg.DefaultReplicationFactor = rf
	}
	if c.IsSet("message-max-bytes") {
		n, err := int32Value(c, "message-max-bytes")
		if err != nil {
			return cfg, err
		}
		cfg.MessageMaxBytes = n
	}
	if c.IsSet("heartbeat-interval") {
		cfg.HeartbeatInterval = c.Duration("heartbeat-interval")
	}
	if c.IsSet("replica-lag-time-max") {
		cfg.ReplicaLagTimeMax = c.Duration("replica-lag-time-max")
	}
	return cfg, nil
}

func runBroker(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := brokerConfig(c, dataplane.DefaultConfig())
	if err != nil {
		return err
	}
	cfg.Logger = log.Named("broker")
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid broker configuration: %w", err)
	}
	ctx, stop := signalContext(c)
	defer stop()

	b, err := startBroker(cfg)
	if err != nil {
		return err
	}
	log.Info("broker running", "node_id", cfg.NodeID, "listen", b.Addr(), "controllers", cfg.Controllers)
	<-ctx.Done()
	return closeBroker(log, b)
}

func startBroker(cfg dataplane.Config) (*dataplane.Broker, error) {
	b, err := dataplane.NewBroker(cfg)
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", cfg.NodeID, err)
	}
	if err := b.Start(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("start broker %d: %w", cfg.NodeID, err)
	}
	return b, nil
}

func closeBroker(log hclog.Logger, b *dataplane.Broker) error {
	log.Info("shutting down broker")
	if err := b.Close(); err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	log.Info("broker stopped")
	return nil
}
