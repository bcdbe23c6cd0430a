package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func consumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "consume",
		Usage:     "print the records of a topic, one value per line",
		ArgsUsage: "TOPIC",
		Description: "Prints new records (or all with --from-beginning) until SIGINT, until --max-messages\n" +
			"   records were printed, or until no record arrived for --timeout.",
		Flags: withCommon(
			bootstrapServerFlag(),
			boolFlag("from-beginning", "start at the earliest offset (default: the latest)", false),
			intFlag("partition", "read only this partition (-1: all)", -1),
			int64Flag("offset", "start at this offset of --partition", -1),
			int64Flag("max-messages", "exit after printing this many records (0: no limit)", 0),
			durationFlag("timeout", "exit when no record arrived for this long (0: wait forever)", 0),
			boolFlag("print-key", "print the key before the value, separated by --key-separator", false),
			stringFlag("key-separator", "separator printed between key and value with --print-key", "\t"),
		),
		Action: runConsume,
	}
}

// consumeOpts maps the position flags onto franz-go consume options.
func consumeOpts(c *cli.Context, topic string) ([]kgo.Opt, error) {
	start := kgo.NewOffset().AtEnd()
	if c.Bool("from-beginning") {
		start = kgo.NewOffset().AtStart()
	}
	partition, err := int32Value(c, "partition")
	if err != nil {
		return nil, err
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
	cl, err := newClient(c, log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx, stop := signalContext(c)
	defer stop()

	out := bufio.NewWriterSize(c.App.Writer, 64<<10)
	printKey := c.Bool("print-key")
	separator := c.String("key-separator")
	idle := c.Duration("timeout")
	var printed int64
	defer func() {
		_ = out.Flush()
		fmt.Fprintf(c.App.ErrWriter, "Processed a total of %d messages\n", printed)
	}()
	for maxMessages == 0 || printed < maxMessages {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, idle)
		}
		limit := -1
		if maxMessages > 0 {
			limit = int(min(maxMessages-printed, 1<<20))
		}
		fetches := cl.PollRecords(pollCtx, limit)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil // SIGINT or SIGTERM
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		n := 0
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			if printKey {
				_, _ = out.Write(r.Key)
				_, _ = out.WriteString(separator)
			}
			_, _ = out.Write(r.Value)
			if err := out.WriteByte('\n'); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
			n++
		}
		printed += int64(n)
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		if n == 0 && idle > 0 && errors.Is(pollCtx.Err(), context.DeadlineExceeded) {
			return nil // idle for --timeout
		}
	}
	return nil
}
