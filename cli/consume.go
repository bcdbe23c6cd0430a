package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/internal/console"
)

// groupCommitTimeout bounds one offset commit of a group consumer.
const groupCommitTimeout = 15 * time.Second

func consumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "consume",
		Usage:     "print the records of a topic, one value per line",
		ArgsUsage: "TOPIC",
		Description: "Prints new records (or all with --from-beginning) until SIGINT, until --max-messages\n" +
			"   records were printed, or until no record arrived for --timeout.\n\n" +
			"   With --group G it consumes as a member of consumer group G: the group assigns the\n" +
			"   partitions, consumption starts at the group's committed offsets (partitions without\n" +
			"   one start as --from-beginning says), and offsets are committed at least once: only\n" +
			"   records already written to stdout are committed, every --commit-interval (Kafka's\n" +
			"   auto.commit.interval.ms; 0: after every printed batch), when partitions are revoked\n" +
			"   and on exit. Each commit is logged (\"committed offset\", with topic, partition and\n" +
			"   offset). A member that dies prints up to --commit-interval of records again.",
		Flags: withCommon(
			bootstrapServerFlag(),
			boolFlag("from-beginning", "start at the earliest offset (default: the latest)", false),
			intFlag("partition", "read only this partition (-1: all)", -1),
			int64Flag("offset", "start at this offset of --partition", -1),
			int64Flag("max-messages", "exit after printing this many records (0: no limit)", 0),
			durationFlag("timeout", "exit when no record arrived for this long (0: wait forever)", 0),
			boolFlag("print-key", "print the key before the value, separated by --key-separator", false),
			stringFlag("key-separator", "separator printed between key and value with --print-key", "\t"),
			boolFlag("print-offsets", "print \"PARTITION OFFSET \" before each record", false),
			stringFlag("group", "consume as a member of this consumer group (commits offsets)", ""),
			durationFlag("session-timeout", "with --group: the member is removed when it did not heartbeat for this long", 45*time.Second),
			stringFlag("balancer", "with --group: partition assignor: range, roundrobin, sticky or cooperative-sticky", "cooperative-sticky"),
			stringFlag("group-instance-id", "with --group: static membership id (KIP-345); a restart with the same id keeps the assignment", ""),
			durationFlag("commit-interval", "with --group: commit the printed records this often (0: after every printed batch)", 5*time.Second),
			stringFlag("isolation", "read_uncommitted (every record) or read_committed (only committed transactions' records, up to the last stable offset)", "read_uncommitted"),
		),
		Action: runConsume,
	}
}

// consumeOpts maps the position and isolation flags onto franz-go consume
// options.
func consumeOpts(c *cli.Context, topic string) ([]kgo.Opt, error) {
	iso, err := parseIsolation(c.String("isolation"))
	if err != nil {
		return nil, err
	}
	opts, err := positionOpts(c, topic)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.FetchIsolationLevel(iso)), nil
}

// parseIsolation maps --isolation onto a franz-go isolation level.
func parseIsolation(s string) (kgo.IsolationLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read_uncommitted", "":
		return kgo.ReadUncommitted(), nil
	case "read_committed":
		return kgo.ReadCommitted(), nil
	}
	return kgo.ReadUncommitted(), fmt.Errorf("--isolation %q: want read_uncommitted or read_committed", s)
}

// positionOpts maps the position flags onto franz-go consume options.
func positionOpts(c *cli.Context, topic string) ([]kgo.Opt, error) {
	start := kgo.NewOffset().AtEnd()
	if c.Bool("from-beginning") {
		start = kgo.NewOffset().AtStart()
	}
	partition, err := int32Value(c, "partition")
	if err != nil {
		return nil, err
	}
	if group := c.String("group"); group != "" {
		if partition >= 0 || c.IsSet("offset") {
			return nil, errors.New("--partition and --offset do not go with --group: the group assigns the partitions and its committed offsets say where to start")
		}
		return groupConsumeOpts(c, group, topic, start)
	}
	for _, name := range []string{"session-timeout", "balancer", "group-instance-id", "commit-interval"} {
		if c.IsSet(name) {
			return nil, fmt.Errorf("--%s needs --group", name)
		}
	}
	if c.IsSet("offset") {
		if partition < 0 {
			return nil, errors.New("--offset needs --partition: offsets are per partition")
		}
		if c.Bool("from-beginning") {
			return nil, errors.New("give either --offset or --from-beginning, not both")
		}
		if c.Int64("offset") < 0 {
			return nil, fmt.Errorf("--offset %d is negative", c.Int64("offset"))
		}
		start = kgo.NewOffset().At(c.Int64("offset"))
	}
	if partition >= 0 {
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: start}})}, nil
	}
	return []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start)}, nil
}

// parseBalancer maps --balancer onto a franz-go group balancer.
func parseBalancer(s string) (kgo.GroupBalancer, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "range":
		return kgo.RangeBalancer(), nil
	case "roundrobin", "round-robin":
		return kgo.RoundRobinBalancer(), nil
	case "sticky":
		return kgo.StickyBalancer(), nil
	case "cooperative-sticky":
		return kgo.CooperativeStickyBalancer(), nil
	}
	return nil, fmt.Errorf("unknown --balancer %q: use range, roundrobin, sticky or cooperative-sticky", s)
}

// groupConsumeOpts are the options of a group member. Offsets are
// committed by groupCommitter only (no background autocommit), from the
// poll loop after the polled records were written out, so a commit never
// covers a record that was not printed.
func groupConsumeOpts(c *cli.Context, group, topic string, start kgo.Offset) ([]kgo.Opt, error) {
	balancer, err := parseBalancer(c.String("balancer"))
	if err != nil {
		return nil, err
	}
	session := c.Duration("session-timeout")
	if session <= 0 {
		return nil, fmt.Errorf("--session-timeout %v must be positive", session)
	}
	if every := c.Duration("commit-interval"); every < 0 {
		return nil, fmt.Errorf("--commit-interval %v is negative", every)
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(start),
		kgo.Balancers(balancer),
		kgo.SessionTimeout(session),
		// Kafka's advice: heartbeat at most a third of the session timeout.
		kgo.HeartbeatInterval(min(3*time.Second, session/3)),
		kgo.DisableAutoCommit(),
		// Rebalances wait until the polled records were printed and
		// committed (AllowRebalance), so a revocation never hands on
		// a partition whose polled records are still unprinted.
		kgo.BlockRebalanceOnPoll(),
	}
	if id := c.String("group-instance-id"); id != "" {
		opts = append(opts, kgo.InstanceID(id))
	}
	return opts, nil
}

// groupCommitter commits the offsets of a group member and logs
// each partition whose committed offset moved, one line per partition.
type groupCommitter struct {
	log   hclog.Logger
	group string

	mu       sync.Mutex
	logged   map[string]map[int32]int64
	disabled bool
}

// disable stops all further commits: the polled records could not all be
// written out. A nil committer (no group) is fine.
func (g *groupCommitter) disable() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.disabled = true
	g.mu.Unlock()
}

// commit synchronously commits the offsets after the records polled so
// far, which the caller has printed. It logs and returns the first error;
// the offsets stay uncommitted, so the next commit carries them.
func (g *groupCommitter) commit(ctx context.Context, cl *kgo.Client, why string) error {
	g.mu.Lock()
	disabled := g.disabled
	g.mu.Unlock()
	offsets := cl.UncommittedOffsets()
	if disabled || len(offsets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, groupCommitTimeout)
	defer cancel()
	var firstErr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			firstErr = err
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("commit %s[%d]: %w", t.Topic, p.Partition, err)
					}
					continue
				}
				at, ok := offsets[t.Topic][p.Partition]
				if !ok || g.logged[t.Topic][p.Partition] == at.Offset {
					continue
				}
				if g.logged[t.Topic] == nil {
					g.logged[t.Topic] = make(map[int32]int64)
				}
				g.logged[t.Topic][p.Partition] = at.Offset
				g.log.Info("committed offset", "group", g.group, "topic", t.Topic, "partition", p.Partition, "offset", at.Offset, "on", why)
			}
		}
	})
	if firstErr != nil {
		g.log.Warn("offset commit failed; the next commit retries it", "group", g.group, "on", why, "error", firstErr)
	}
	return firstErr
}

// fatalGroupError reports whether a group member cannot go on after err:
// retrying cannot fix the request (the group's configuration or rights).
func fatalGroupError(err error) bool {
	for _, fatal := range []error{
		kerr.InvalidSessionTimeout, kerr.InvalidGroupID, kerr.GroupAuthorizationFailed,
		kerr.TopicAuthorizationFailed, kerr.InconsistentGroupProtocol, kerr.GroupMaxSizeReached,
		kerr.FencedInstanceID, kerr.UnsupportedVersion,
	} {
		if errors.Is(err, fatal) {
			return true
		}
	}
	return false
}

// groupErrorHint says what to do about a fatal group error, "" if nothing
// useful can be said.
func groupErrorHint(err error) string {
	switch {
	case errors.Is(err, kerr.InconsistentGroupProtocol):
		return "\n  the group's members use other assignors: pass the one they share with --balancer" +
			" (librdkafka/kcat and the Java client default to range, franz-go to cooperative-sticky)"
	case errors.Is(err, kerr.InvalidSessionTimeout):
		return "\n  --session-timeout is outside the brokers' group.min.session.timeout.ms..group.max.session.timeout.ms (6s..30m by default)"
	case errors.Is(err, kerr.FencedInstanceID):
		return "\n  another member joined with the same --group-instance-id; give each member its own"
	case errors.Is(err, kerr.GroupMaxSizeReached):
		return "\n  the group has group.max.size members already"
	}
	return ""
}

// formatAssignment prints topic partitions as t[0,1,2] sorted.
func formatAssignment(m map[string][]int32) string { return console.FormatAssignment(m) }

func runConsume(c *cli.Context) error {
	topic, err := singleTopicArg(c)
	if err != nil {
		return err
	}
	opts, err := consumeOpts(c, topic)
	if err != nil {
		return err
	}
	maxMessages := c.Int64("max-messages")
	if maxMessages < 0 {
		return fmt.Errorf("--max-messages %d is negative", maxMessages)
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	group := c.String("group")
	var committer *groupCommitter
	if group != "" {
		committer = &groupCommitter{log: log, group: group, logged: make(map[string]map[int32]int64)}
		opts = append(opts,
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
				if len(assigned) > 0 {
					log.Info("partitions assigned", "group", group, "partitions", formatAssignment(assigned))
				}
			}),
			// Revoked partitions go to another member, which starts at
			// the committed offset: commit what was printed first.
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
				if len(revoked) > 0 {
					log.Info("partitions revoked", "group", group, "partitions", formatAssignment(revoked))
				}
				_ = committer.commit(ctx, cl, "revoke")
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
				if len(lost) == 0 {
					return
				}
				log.Warn("partitions lost (no longer a member); uncommitted records will be redelivered", "group", group, "partitions", formatAssignment(lost))
			}),
		)
	}
	cl, err := newClient(c, log, opts...)
	if err != nil {
		return err
	}
	if committer != nil {
		defer cl.CloseAllowingRebalance()
	} else {
		defer cl.Close()
	}

	ctx, stop := signalContext(c)
	defer stop()

	out := bufio.NewWriterSize(c.App.Writer, 64<<10)
	printKey := c.Bool("print-key")
	printOffsets := c.Bool("print-offsets")
	separator := c.String("key-separator")
	idle := c.Duration("timeout")
	commitEvery := c.Duration("commit-interval")
	commitWhy := "interval"
	if commitEvery == 0 {
		commitWhy = "batch"
	}
	// lastRecord times --timeout; lastCommit and pending (printed records
	// not committed yet) time --commit-interval.
	lastRecord, lastCommit, pending := time.Now(), time.Now(), false
	var printed int64
	defer func() {
		_ = out.Flush()
		if committer != nil {
			// ctx may be cancelled (SIGINT): commit on a fresh one.
			_ = committer.commit(context.Background(), cl, "exit")
		}
		fmt.Fprintf(c.App.ErrWriter, "Processed a total of %d messages\n", printed)
	}()
	var num []byte
	for maxMessages == 0 || printed < maxMessages {
		// The poll returns by --timeout after the last record, and when
		// the printed records are due to be committed.
		var deadline time.Time
		if idle > 0 {
			deadline = lastRecord.Add(idle)
		}
		if pending && commitEvery > 0 {
			if due := lastCommit.Add(commitEvery); deadline.IsZero() || due.Before(deadline) {
				deadline = due
			}
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			pollCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		limit := -1
		if maxMessages > 0 {
			limit = int(min(maxMessages-printed, 1<<20))
		}
		fetches := cl.PollRecords(pollCtx, limit)
		cancel()
		// SIGINT or SIGTERM. A group member still prints what it
		// polled: on exit it commits everything polled.
		stopping := ctx.Err() != nil || fetches.IsClientClosed()
		if stopping && committer == nil {
			return nil
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if stopping || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if committer != nil && !fatalGroupError(err) {
				// A group member keeps going: the client rejoins and
				// retries on its own.
				log.Warn("consume error; retrying", "group", group, "topic", t, "partition", p, "error", err)
				return
			}
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w%s", t, p, err, groupErrorHint(err))
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		n := 0
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			if printOffsets {
				num = strconv.AppendInt(num[:0], int64(r.Partition), 10)
				num = append(num, ' ')
				num = strconv.AppendInt(num, r.Offset, 10)
				num = append(num, ' ')
				_, _ = out.Write(num)
			}
			if printKey {
				_, _ = out.Write(r.Key)
				_, _ = out.WriteString(separator)
			}
			_, _ = out.Write(r.Value)
			if err := out.WriteByte('\n'); err != nil {
				committer.disable() // never commit what was not written
				return fmt.Errorf("write stdout: %w", err)
			}
			n++
		}
		printed += int64(n)
		if err := out.Flush(); err != nil {
			committer.disable()
			return fmt.Errorf("write stdout: %w", err)
		}
		now := time.Now()
		if n > 0 {
			lastRecord = now
		}
		if committer != nil {
			// At least once: every polled record is written out now;
			// commit them when due (not cancelled by SIGINT; a failed
			// commit is retried at the next one), then let a pending
			// rebalance proceed. Stopping commits on exit.
			pending = pending || n > 0
			if pending && !stopping && (commitEvery == 0 || !now.Before(lastCommit.Add(commitEvery))) {
				pending = committer.commit(context.WithoutCancel(ctx), cl, commitWhy) != nil
				lastCommit = time.Now()
			}
			cl.AllowRebalance()
		}
		if stopping {
			return nil
		}
		if n == 0 && idle > 0 && !time.Now().Before(lastRecord.Add(idle)) {
			return nil // idle for --timeout
		}
	}
	return nil
}
