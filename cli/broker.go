package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/dataplane"
	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/httpserver"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/internal/security/sasl"
	"github.com/skein-io/skein/storage"
)

func brokerCommand() *cli.Command {
	return &cli.Command{
		Name:  "broker",
		Usage: "run a broker (a data node serving Kafka clients)",
		Description: "Example:\n" +
			"   skein broker --node-id 101 --data-dir /var/lib/skein/b101 --listen 127.0.0.1:9092 \\\n" +
			"       --controllers 127.0.0.1:9093\n\n" +
			"   Two listeners, one for the brokers' network and one for clients elsewhere:\n" +
			"   skein broker ... --listeners INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092 \\\n" +
			"       --advertised-listeners INTERNAL://broker-1:9092,EXTERNAL://203.0.113.7:19092 \\\n" +
			"       --inter-broker-listener-name INTERNAL\n" +
			"   A client is given the brokers' addresses on the listener it connected through.\n\n" +
			"   Runs until SIGINT or SIGTERM, then shuts down cleanly (controlled shutdown).",
		Flags: withCommon(append([]cli.Flag{
			checkedByAction(requiredIntFlag("node-id", "this broker's node id (unique among controllers and brokers)")),
			checkedByAction(requiredStringFlag("data-dir", "directory for partition logs")),
			stringFlag("listen", "Kafka listener, host:port: one listener, named PLAINTEXT (or --listeners)", ""),
			stringFlag("advertised-listener", "host:port given to clients of --listen (default: --listen)", ""),
			stringFlag("listeners", "named Kafka listeners, NAME://host:port[,NAME://host:port...] (Kafka's listeners; instead of --listen)", ""),
			stringFlag("advertised-listeners", "addresses given to the clients of each listener, NAME://host:port[,...]; "+
				"a listener not named here advertises its own address (Kafka's advertised.listeners)", ""),
			stringFlag("inter-broker-listener-name", "the listener followers dial leaders on; every broker needs one of that name (default: the first listener)", ""),
			stringFlag("listener-security-protocol-map", "each listener's security protocol, NAME:PROTOCOL[,...] (Kafka's listener.security.protocol.map); "+
				"a listener not named here speaks the protocol its name names (SSL://...), else --listener-protocol", ""),
			stringFlag("listener-protocol", "security protocol of the listeners the map does not name: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", "PLAINTEXT"),
			stringFlag("sasl-enabled-mechanisms", "SASL mechanisms the SASL listeners offer (sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; "+
				"every one checks against the SCRAM credentials of the metadata log (skein user create)", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
			fromComponent("broker", durationFlag("connections-max-reauth", "connections.max.reauth.ms: a SASL session lasts this long, then the client must re-authenticate (KIP-368); 0: forever", 0)),
			stringFlag("inter-broker-sasl-mechanism", "SASL mechanism followers log in to leaders with when the inter-broker listener is SASL_* (sasl.mechanism.inter.broker.protocol)", "SCRAM-SHA-512"),
			stringFlag("inter-broker-sasl-username", "user followers log in to leaders as when the inter-broker listener is SASL_*", ""),
			stringFlag("inter-broker-sasl-password", "that user's password (prefer the env twin SKEIN_INTER_BROKER_SASL_PASSWORD: flags show in ps)", ""),
			stringFlag("rack", "rack id for rack-aware replica placement", ""),
			checkedByAction(requiredStringFlag("controllers", "Kafka listeners of the controllers, host:port[,host:port...]")),
			stringFlag("controller-protocol", "security protocol of the controllers' listener: PLAINTEXT, SSL (then --tls-ca names the CA to trust), "+
				"SASL_PLAINTEXT or SASL_SSL (the broker logs in with --inter-broker-sasl-*)", "PLAINTEXT"),
			fromComponent("broker", boolFlag("auto-create-topics", "auto.create.topics.enable", false)),
			fromComponent("broker", intFlag("num-partitions", "num.partitions for auto-created topics", 0)),
			fromComponent("broker", intFlag("default-replication-factor", "default.replication.factor", 0)),
			fromComponent("broker", intFlag("message-max-bytes", "message.max.bytes", 0)),
			fromComponent("broker", durationFlag("heartbeat-interval", "interval of heartbeats to the controller", 0)),
			fromComponent("broker", durationFlag("replica-lag-time-max", "replica.lag.time.max.ms: an in-sync follower not caught up for this long leaves the ISR", 0)),
			fromComponent("broker", durationFlag("replica-fetch-wait-max", "replica.fetch.wait.max.ms: how long a leader may hold a follower's fetch that finds nothing new (500ms)", 0)),
			fromComponent("broker", durationFlag("log-retention-check-interval", "log.retention.check.interval.ms: how often retention looks for segments to delete (5m)", 0)),
			fromComponent("broker", durationFlag("log-cleaner-backoff", "log.cleaner.backoff.ms: how often the log cleaner looks for compacted logs to clean", 0)),
			fromComponent("broker", intFlag("max-incremental-fetch-session-cache-slots", "max.incremental.fetch.session.cache.slots: fetch sessions (KIP-227) kept at once (1000); 0 turns them off", 0)),
			httpListenFlag(""),
			consoleReadOnlyFlag(),
			metricsPerPartitionFlag(),
			authorizerFlag(), superUsersFlag(), allowEveryoneFlag(),
			pprofFlag(),
			heapHeadroomFlag(),
			fromComponent("storage", durationFlag("producer-id-expiration", "producer.id.expiration.ms: an idempotent producer idle this long (no open transaction) is forgotten by each partition (24h; negative: never)", 0)),
			logWritebackFlag(),
			replicaFetchLingerFlag(),
			fromComponent("storage", intFlag("recovery-threads", "num.recovery.threads.per.data.dir: how many partition logs are opened (recovered after a crash), created or closed at once (min(2 x CPUs, 16))", 0)),
		}, append(groupFlags(), tlsFlags()...)...)...),
		Action: runBroker,
		// `skein broker` runs a broker and takes no arguments, so a
		// subcommand name cannot be mistaken for one.
		Subcommands: []*cli.Command{decommissionCommand()},
	}
}

// brokerRequiredFlags are the flags running a broker needs. urfave/cli
// would check Required flags before dispatching to a subcommand (so
// `skein broker decommission 103` would ask for --node-id): runBroker
// checks them instead.
var brokerRequiredFlags = []string{"node-id", "data-dir", "controllers"}

// checkedByAction keeps a required flag's help text ("(required)") but
// leaves the check to the command's action.
func checkedByAction(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.Required = false
	case *cli.IntFlag:
		f.Required = false
	}
	return f
}

// checkRequired fails like urfave/cli does when a required flag is unset.
func checkRequired(c *cli.Context, names ...string) error {
	var missing []string
	for _, name := range names {
		if !c.IsSet(name) {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("Required flag %q not set", missing[0])
	}
	return fmt.Errorf("Required flags %q not set", strings.Join(missing, ", "))
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
	if err := listenerFlags(c, &cfg); err != nil {
		return cfg, err
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
	if c.IsSet("replica-fetch-wait-max") {
		d := c.Duration("replica-fetch-wait-max")
		if d < time.Millisecond {
			return cfg, fmt.Errorf("--replica-fetch-wait-max %v must be at least 1ms", d)
		}
		cfg.ReplicaFetchWaitMax = d
	}
	if c.IsSet("log-retention-check-interval") {
		cfg.LogRetentionCheckInterval = c.Duration("log-retention-check-interval")
	}
	if c.IsSet("max-incremental-fetch-session-cache-slots") {
		n := c.Int("max-incremental-fetch-session-cache-slots")
		if n < 0 {
			return cfg, fmt.Errorf("--max-incremental-fetch-session-cache-slots %d must be >= 0", n)
		}
		cfg.FetchSessionCacheSlots = n
	}
	if c.IsSet("log-cleaner-backoff") {
		cfg.LogCleanerBackoff = c.Duration("log-cleaner-backoff")
	}
	if c.IsSet("metrics-per-partition") {
		cfg.MetricsPerPartition = c.Bool("metrics-per-partition")
	}
	az, err := authorizerFlags(c)
	if err != nil {
		return cfg, err
	}
	cfg.Authorizer, cfg.SuperUsers, cfg.AllowEveryoneIfNoACL = az.enabled, az.superUsers, az.allowEveryone
	if c.IsSet("producer-id-expiration") {
		cfg.ProducerIDExpiration = c.Duration("producer-id-expiration")
	}
	if cfg.LogWritebackBytes, err = logWriteback(c); err != nil {
		return cfg, err
	}
	if cfg.ReplicaFetchLinger, err = replicaFetchLinger(c); err != nil {
		return cfg, err
	}
	if c.IsSet("recovery-threads") {
		n := c.Int("recovery-threads")
		if n < 1 {
			return cfg, fmt.Errorf("--recovery-threads %d: must be at least 1", n)
		}
		cfg.RecoveryThreads = n
	}
	gc, err := groupConfig(c, cfg.Groups)
	if err != nil {
		return cfg, err
	}
	cfg.Groups = gc
	tc, err := txnConfig(c, cfg.Txns)
	if err != nil {
		return cfg, err
	}
	cfg.Txns = tc
	return cfg, nil
}

// listenerFlags maps --listeners, --advertised-listeners and
// --inter-broker-listener-name onto cfg.
func listenerFlags(c *cli.Context, cfg *dataplane.Config) error {
	if c.IsSet("listener-security-protocol-map") {
		m, err := security.ParseProtocolMap(c.String("listener-security-protocol-map"))
		if err != nil {
			return fmt.Errorf("--listener-security-protocol-map: %w", err)
		}
		cfg.ListenerProtocols = m
	}
	if c.IsSet("controller-protocol") {
		p, err := protocolValue(c, "controller-protocol")
		if err != nil {
			return err
		}
		cfg.ControllerProtocol = p
	}
	if c.IsSet("listener-protocol") {
		p, err := security.ParseProtocol(c.String("listener-protocol"))
		if err != nil {
			return fmt.Errorf("--listener-protocol: %w", err)
		}
		cfg.ListenerProtocol = p
	}
	if c.IsSet("sasl-enabled-mechanisms") {
		ms, err := sasl.ParseMechanisms(c.String("sasl-enabled-mechanisms"))
		if err != nil {
			return fmt.Errorf("--sasl-enabled-mechanisms: %w", err)
		}
		cfg.SASLEnabledMechanisms = ms
	}
	if c.IsSet("connections-max-reauth") {
		cfg.ConnectionsMaxReauth = c.Duration("connections-max-reauth")
	}
	m, err := sasl.ParseMechanism(c.String("inter-broker-sasl-mechanism"))
	if err != nil {
		return fmt.Errorf("--inter-broker-sasl-mechanism: %w", err)
	}
	cfg.InterBrokerSASL = sasl.Login{Mechanism: m,
		User: c.String("inter-broker-sasl-username"), Password: c.String("inter-broker-sasl-password")}
	if c.IsSet("inter-broker-listener-name") {
		cfg.InterBrokerListenerName = strings.ToUpper(strings.TrimSpace(c.String("inter-broker-listener-name")))
	}
	if !c.IsSet("listeners") {
		if c.IsSet("advertised-listeners") {
			return errors.New("--advertised-listeners needs --listeners (with --listen, use --advertised-listener host:port)")
		}
		return nil
	}
	if c.IsSet("listen") || c.IsSet("advertised-listener") {
		return errors.New("give either --listeners (with --advertised-listeners) or --listen (with --advertised-listener), not both")
	}
	listeners, err := parseListeners(c.String("listeners"))
	if err != nil {
		return fmt.Errorf("--listeners: %w", err)
	}
	if len(listeners) == 0 {
		return errors.New("--listeners is empty: give NAME://host:port[,NAME://host:port...]")
	}
	index := map[string]int{}
	for i, l := range listeners {
		if _, dup := index[l.Name]; dup {
			return fmt.Errorf("--listeners: listener %s is given twice", l.Name)
		}
		index[l.Name] = i
	}
	if c.IsSet("advertised-listeners") {
		adv, err := parseListeners(c.String("advertised-listeners"))
		if err != nil {
			return fmt.Errorf("--advertised-listeners: %w", err)
		}
		seen := map[string]bool{}
		for _, a := range adv {
			i, ok := index[a.Name]
			if !ok {
				return fmt.Errorf("--advertised-listeners: %s is not one of --listeners", a.Name)
			}
			if seen[a.Name] {
				return fmt.Errorf("--advertised-listeners: listener %s is given twice", a.Name)
			}
			seen[a.Name] = true
			listeners[i].Advertised = a.Addr
		}
	}
	cfg.Listeners = listeners
	return nil
}

// parseListeners parses NAME://host:port[,NAME://host:port...] (names in
// upper case; host may be empty or an [IPv6] literal).
func parseListeners(s string) ([]dataplane.Listener, error) {
	var out []dataplane.Listener
	for _, part := range splitList(s) {
		name, addr, ok := strings.Cut(part, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME://host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out = append(out, dataplane.Listener{Name: strings.ToUpper(name), Addr: addr})
	}
	return out, nil
}

// groupFlags are the group coordinator's settings (broker and dev).
func groupFlags() []cli.Flag {
	return []cli.Flag{
		fromComponent("broker", intFlag("offsets-topic-num-partitions", "offsets.topic.num.partitions (50): partitions of __consumer_offsets when it is created", 0)),
		fromComponent("broker", intFlag("offsets-topic-replication-factor", "offsets.topic.replication.factor (3): replicas of __consumer_offsets, capped at the live brokers", 0)),
		fromComponent("broker", intFlag("offsets-topic-segment-bytes", "offsets.topic.segment.bytes (100 MiB): segment size of __consumer_offsets", 0)),
		fromComponent("broker", durationFlag("group-min-session-timeout", "group.min.session.timeout.ms (6s): shortest session timeout a member may ask for", 0)),
		fromComponent("broker", durationFlag("group-max-session-timeout", "group.max.session.timeout.ms (30m): longest session timeout a member may ask for", 0)),
		fromComponent("broker", durationFlag("group-initial-rebalance-delay", "group.initial.rebalance.delay.ms (3s): how long the first rebalance of an empty group waits for more members", 0)),
		fromComponent("broker", intFlag("group-max-size", "group.max.size (0: unlimited): members per group", 0)),
		fromComponent("broker", intFlag("offset-metadata-max-bytes", "offset.metadata.max.bytes (4096): largest metadata of a committed offset", 0)),
		fromComponent("broker", durationFlag("offsets-retention", "offsets.retention.minutes (168h): committed offsets of an empty group are deleted this long after it became empty", 0)),
		fromComponent("broker", durationFlag("offsets-retention-check-interval", "offsets.retention.check.interval.ms (10m): how often offsets are checked for expiry", 0)),
		fromComponent("broker", durationFlag("offsets-commit-timeout", "offsets.commit.timeout.ms (5s): how long a commit waits for the ISR", 0)),
		fromComponent("broker", intFlag("transaction-state-log-num-partitions", "transaction.state.log.num.partitions (50): partitions of __transaction_state when it is created", 0)),
		fromComponent("broker", intFlag("transaction-state-log-replication-factor", "transaction.state.log.replication.factor (3): replicas of __transaction_state, capped at the live brokers", 0)),
		fromComponent("broker", intFlag("transaction-state-log-min-isr", "transaction.state.log.min.isr (2): min.insync.replicas of __transaction_state, capped at its replicas", 0)),
		fromComponent("broker", durationFlag("transaction-max-timeout", "transaction.max.timeout.ms (15m): longest transaction.timeout.ms a producer may ask for", 0)),
		fromComponent("broker", boolFlag("transaction-partition-verification-enable", "transaction.partition.verification.enable (true, KIP-890): a partition leader asks the transaction coordinator before a producer's first transactional batch lands on it", true)),
		fromComponent("broker", durationFlag("transaction-abort-timed-out-interval", "transaction.abort.timed.out.transaction.cleanup.interval.ms (10s): how often transactions past their timeout are aborted", 0)),
	}
}

// txnConfig maps the transaction coordinator flags that are set onto base.
func txnConfig(c *cli.Context, base txn.Config) (txn.Config, error) {
	cfg := base
	if c.IsSet("transaction-state-log-num-partitions") {
		n, err := int32Value(c, "transaction-state-log-num-partitions")
		if err != nil {
			return cfg, err
		}
		cfg.StateLogNumPartitions = n
	}
	if c.IsSet("transaction-state-log-replication-factor") {
		rf, err := int16Value(c, "transaction-state-log-replication-factor")
		if err != nil {
			return cfg, err
		}
		cfg.StateLogReplicationFactor = rf
	}
	if c.IsSet("transaction-state-log-min-isr") {
		cfg.StateLogMinISR = c.Int("transaction-state-log-min-isr")
	}
	if c.IsSet("transaction-max-timeout") {
		cfg.MaxTimeout = c.Duration("transaction-max-timeout")
	}
	if c.IsSet("transaction-partition-verification-enable") {
		cfg.PartitionVerification = c.Bool("transaction-partition-verification-enable")
	}
	if c.IsSet("transaction-abort-timed-out-interval") {
		cfg.AbortTimedOutInterval = c.Duration("transaction-abort-timed-out-interval")
	}
	return cfg, nil
}

// groupConfig maps the group flags that are set onto base.
func groupConfig(c *cli.Context, base group.Config) (group.Config, error) {
	cfg := base
	if c.IsSet("offsets-topic-num-partitions") {
		n, err := int32Value(c, "offsets-topic-num-partitions")
		if err != nil {
			return cfg, err
		}
		cfg.OffsetsTopicNumPartitions = n
	}
	if c.IsSet("offsets-topic-replication-factor") {
		rf, err := int16Value(c, "offsets-topic-replication-factor")
		if err != nil {
			return cfg, err
		}
		cfg.OffsetsTopicReplicationFactor = rf
	}
	if c.IsSet("offsets-topic-segment-bytes") {
		cfg.OffsetsTopicSegmentBytes = int64(c.Int("offsets-topic-segment-bytes"))
	}
	if c.IsSet("group-min-session-timeout") {
		cfg.MinSessionTimeout = c.Duration("group-min-session-timeout")
	}
	if c.IsSet("group-max-session-timeout") {
		cfg.MaxSessionTimeout = c.Duration("group-max-session-timeout")
	}
	if c.IsSet("group-initial-rebalance-delay") {
		cfg.InitialRebalanceDelay = c.Duration("group-initial-rebalance-delay")
	}
	if c.IsSet("group-max-size") {
		cfg.MaxSize = c.Int("group-max-size")
	}
	if c.IsSet("offset-metadata-max-bytes") {
		cfg.OffsetMetadataMaxBytes = c.Int("offset-metadata-max-bytes")
	}
	if c.IsSet("offsets-retention") {
		cfg.OffsetsRetention = c.Duration("offsets-retention")
	}
	if c.IsSet("offsets-retention-check-interval") {
		cfg.OffsetsRetentionCheckInterval = c.Duration("offsets-retention-check-interval")
	}
	if c.IsSet("offsets-commit-timeout") {
		cfg.CommitTimeout = c.Duration("offsets-commit-timeout")
	}
	return cfg, nil
}

func runBroker(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein broker takes no arguments (%q); its subcommand is decommission", c.Args().First())
	}
	if err := checkRequired(c, brokerRequiredFlags...); err != nil {
		_ = cli.ShowSubcommandHelp(c)
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := brokerConfig(c, dataplane.DefaultConfig())
	if err != nil {
		return err
	}
	cfg.Logger = log.Named("broker")
	if cfg.TLS, err = loadNodeTLS(c, log.Named("tls")); err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	cfg.Metrics = reg
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid broker configuration: %w", err)
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
	// Fault injection for the machine-crash test: journal every fsync,
	// rename and remove of the data directory (format in
	// storage.FsyncJournal). Not an operator setting.
	if path := os.Getenv(storage.FsyncJournalEnv); path != "" {
		j, err := storage.OpenFsyncJournal(path)
		if err != nil {
			return err
		}
		defer j.Close()
		defer storage.AddFileObserver(j)()
		log.Warn("fsync journal on (a test hook)", "env", storage.FsyncJournalEnv, "path", path)
	}

	b, err := dataplane.NewBroker(cfg)
	if err != nil {
		return fmt.Errorf("broker %d: %w", cfg.NodeID, err)
	}
	// Served before the broker starts, so /readyz says what it waits for.
	srv, err := startHTTP(c, reg, []httpserver.Check{{Ready: b.Ready}}, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer srv.Close()
	}
	ccfg := consoleConfig(c, fmt.Sprintf("broker %d", cfg.NodeID), b.Image)
	ccfg.Dial, ccfg.SASL = cfg.ListenerDialer(""), cfg.ListenerLogin("")
	ccfg.Bootstrap = func() []string {
		if addr := b.Addr(); addr != "" {
			return []string{addr}
		}
		return nil
	}
	stopConsole, err := serveConsole(srv, ccfg, log)
	if err != nil {
		return err
	}
	defer stopConsole()
	if err := b.Start(); err != nil {
		_ = b.Close()
		return fmt.Errorf("start broker %d: %w", cfg.NodeID, err)
	}
	watchTLS(ctx, c, cfg.TLS)
	log.Info("broker running", "node_id", cfg.NodeID, "listen", b.Addr(), "controllers", cfg.Controllers)
	<-ctx.Done()
	return closeBroker(log, b)
}

func closeBroker(log hclog.Logger, b *dataplane.Broker) error {
	log.Info("shutting down broker")
	if err := b.Close(); err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	log.Info("broker stopped")
	return nil
}

// authorizerFlag is --authorizer: ACL checks on every request.
func authorizerFlag() cli.Flag {
	return stringFlag("authorizer", "check every request against the ACLs (skein acl): \"acl\" turns it on (Kafka's authorizer.class.name with StandardAuthorizer); empty: off, anyone may do anything", "")
}

func superUsersFlag() cli.Flag {
	return stringFlag("super-users", "principals allowed everything, User:name[;User:name...] (Kafka's super.users; the brokers' own principal belongs here)", "")
}

func allowEveryoneFlag() cli.Flag {
	return boolFlag("allow-everyone-if-no-acl-found", "allow.everyone.if.no.acl.found: with the authorizer on, a resource no ACL names is open to all (default: closed)", false)
}

// authorizerSettings are --authorizer, --super-users and
// --allow-everyone-if-no-acl-found (brokers and controllers).
type authorizerSettings struct {
	enabled, allowEveryone bool
	superUsers             []string
}

// splitPrincipals splits a list of principals on ';' (Kafka's
// super.users separator: a TLS principal, User:CN=a,O=b, holds commas),
// and a part on ',' too when every piece of it is TYPE:NAME
// (User:a,User:b).
func splitPrincipals(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pieces := strings.Split(part, ",")
		each := len(pieces) > 1
		for _, p := range pieces {
			if !strings.Contains(p, ":") {
				each = false
			}
		}
		if !each {
			out = append(out, part)
			continue
		}
		for _, p := range pieces {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func authorizerFlags(c *cli.Context) (authorizerSettings, error) {
	var out authorizerSettings
	switch a := strings.ToLower(strings.TrimSpace(c.String("authorizer"))); a {
	case "":
		if c.IsSet("super-users") || c.IsSet("allow-everyone-if-no-acl-found") {
			return out, errors.New("--super-users and --allow-everyone-if-no-acl-found need --authorizer acl")
		}
		return out, nil
	case "acl", "standard", "org.apache.kafka.metadata.authorizer.standardauthorizer":
		out.enabled = true
	default:
		return out, fmt.Errorf("--authorizer %q: use \"acl\" (or leave it empty for none)", a)
	}
	for _, u := range splitPrincipals(c.String("super-users")) {
		if !strings.Contains(u, ":") {
			return out, fmt.Errorf("--super-users: %q is not TYPE:NAME (User:admin)", u)
		}
		out.superUsers = append(out.superUsers, u)
	}
	out.allowEveryone = c.Bool("allow-everyone-if-no-acl-found")
	return out, nil
}

// replicaFetchLingerFlag is dataplane.Config.ReplicaFetchLinger.
func replicaFetchLingerFlag() cli.Flag {
	return durationFlag("replica-fetch-linger", "how long a leader holds a follower's fetch once new records woke it, when records arrive often, "+
		"so that one answer (and the follower's one append and next fetch) carries what arrives meanwhile: fewer round trips and less CPU per record at a steady load, "+
		"for up to this much more acks=all latency; at most 100ms; 0: answer at once (Kafka's behaviour)", dataplane.DefaultReplicaFetchLinger)
}

// replicaFetchLinger is --replica-fetch-linger, checked.
func replicaFetchLinger(c *cli.Context) (time.Duration, error) {
	d := c.Duration("replica-fetch-linger")
	if d < 0 || d > 100*time.Millisecond {
		return 0, fmt.Errorf("--replica-fetch-linger %v: want 0 (off) up to 100ms", d)
	}
	return d, nil
}

// logWritebackFlag is how often a segment's new bytes are handed to the
// disk (storage.Config.WritebackBytes).
func logWritebackFlag() cli.Flag {
	return stringFlag("log-writeback-bytes", "start writing a segment's new data to disk every this many bytes (sync_file_range) and wait for it off the append path (fdatasync on a goroutine of its own), "+
		"a steady stream instead of the kernel's bursts of a busy segment every 30 s, and a segment roll's fsync with little left to wait for; neither stalls a loaded broker's appends, "+
		"and what a crash can lose is unchanged; 0: off", "1MiB")
}

// logWriteback is --log-writeback-bytes as dataplane.Config.LogWritebackBytes.
func logWriteback(c *cli.Context) (int64, error) {
	s := c.String("log-writeback-bytes")
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<40 {
		return 0, fmt.Errorf("--log-writeback-bytes %q: want a size such as 1MiB, or 0 for off", s)
	}
	if n == 0 {
		return -1, nil
	}
	return int64(n), nil
}
