package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func transactionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "transactions",
		Usage: "list, describe and abort transactions (like kafka-transactions.sh)",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the transactional ids with their coordinator, producer id and state",
				Flags:  adminFlags(stringSliceFlag("state", "only transactions in this state (Ongoing, PrepareCommit, ...); repeat for several")),
				Action: runTransactionsList,
			},
			{
				Name:      "describe",
				Usage:     "show a transaction's coordinator, producer, state, timeout, start and partitions",
				ArgsUsage: "TRANSACTIONAL_ID",
				Flags:     adminFlags(),
				Action:    runTransactionsDescribe,
			},
			{
				Name: "abort",
				Usage: "abort a hanging transaction on one partition: an abort marker for the producer, " +
					"named by --start-offset (its open transaction's first offset) or --producer-id and --producer-epoch",
				Flags: adminFlags(
					stringFlag("topic", "the partition's topic (required)", ""),
					intFlag("partition", "the partition (required)", -1),
					int64Flag("start-offset", "first offset of the hanging transaction (finds its producer with DescribeProducers)", -1),
					int64Flag("producer-id", "producer id of the hanging transaction", -1),
					intFlag("producer-epoch", "producer epoch of the hanging transaction", -1),
					intFlag("coordinator-epoch", "coordinator epoch to write the marker with (default: the producer's last)", -1),
				),
				Action: runTransactionsAbort,
			},
		},
	}
}

func runTransactionsList(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein transactions list takes no arguments; to see one use `skein transactions describe %s`", c.Args().First())
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	listed, err := adm.ListTransactions(ctx, nil, c.StringSlice("state"))
	if err != nil && len(listed) == 0 {
		return fmt.Errorf("list transactions: %w", err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "TRANSACTIONAL ID\tCOORDINATOR\tPRODUCER ID\tSTATE")
	for _, l := range listed.Sorted() {
		fmt.Fprintf(t, "%s\t%d\t%d\t%s\n", l.TxnID, l.Coordinator, l.ProducerID, l.State)
	}
	if ferr := t.Flush(); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("some brokers did not answer: %w", err)
	}
	return nil
}

func runTransactionsDescribe(c *cli.Context) error {
	if c.NArg() != 1 || c.Args().First() == "" {
		return errors.New("usage: skein transactions describe TRANSACTIONAL_ID")
	}
	id := c.Args().First()
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeTransactions(ctx, id)
	if err != nil && len(described) == 0 {
		return fmt.Errorf("describe transaction %s: %w", id, err)
	}
	d, ok := described[id]
	if !ok {
		return fmt.Errorf("describe transaction %s: no answer", id)
	}
	if d.Err != nil {
		return fmt.Errorf("describe transaction %s: %w", id, d.Err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "COORDINATOR\tTRANSACTIONAL ID\tPRODUCER ID\tPRODUCER EPOCH\tSTATE\tTIMEOUT MS\tSTART TIME\tDURATION\tPARTITIONS")
	start, dur := "-", "-"
	if d.StartTimestamp >= 0 {
		st := time.UnixMilli(d.StartTimestamp)
		start = st.UTC().Format(time.RFC3339)
		dur = time.Since(st).Round(time.Millisecond).String()
	}
	var parts []string
	for topic, ps := range d.Topics {
		for p := range ps {
			parts = append(parts, topic+"-"+strconv.Itoa(int(p)))
		}
	}
	sort.Strings(parts)
	fmt.Fprintf(t, "%d\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", d.Coordinator, d.TxnID, d.ProducerID, d.ProducerEpoch,
		d.State, d.TimeoutMillis, start, dur, dash(strings.Join(parts, ",")))
	return t.Flush()
}

func runTransactionsAbort(c *cli.Context) error {
	topic, part := c.String("topic"), c.Int("partition")
	if topic == "" || part < 0 {
		return errors.New("give --topic and --partition of the hanging transaction")
	}
	startOffset, pid, epoch := c.Int64("start-offset"), c.Int64("producer-id"), c.Int("producer-epoch")
	if (startOffset >= 0) == (pid >= 0) {
		return errors.New("give either --start-offset, or --producer-id and --producer-epoch")
	}
	if pid >= 0 && epoch < 0 {
		return errors.New("--producer-id needs --producer-epoch")
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	coordEpoch := int32(c.Int("coordinator-epoch"))
	set := kadm.TopicsSet{}
	set.Add(topic, int32(part))
	producers, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return fmt.Errorf("describe producers of %s-%d: %w", topic, part, err)
	}
	var found *kadm.DescribedProducer
	producers.EachProducer(func(p kadm.DescribedProducer) {
		if p.Partition != int32(part) {
			return
		}
		if (startOffset >= 0 && p.CurrentTxnStartOffset == startOffset) || (pid >= 0 && p.ProducerID == pid) {
			p := p
			found = &p
		}
	})
	switch {
	case found == nil && startOffset >= 0:
		return fmt.Errorf("no producer of %s-%d has a transaction open at offset %d", topic, part, startOffset)
	case found == nil:
		found = &kadm.DescribedProducer{ProducerID: pid, ProducerEpoch: int16(epoch), CoordinatorEpoch: -1}
	}
	if pid >= 0 {
		found.ProducerEpoch = int16(epoch)
	}
	if coordEpoch < 0 {
		coordEpoch = max(found.CoordinatorEpoch, 0)
	}
	written, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: found.ProducerID, ProducerEpoch: found.ProducerEpoch,
		Commit: false, CoordinatorEpoch: coordEpoch, Topics: set})
	if err != nil {
		return fmt.Errorf("write the abort marker: %w", err)
	}
	var failed error
	written.EachPartition(func(r kadm.TxnMarkersPartitionResponse) {
		if r.Err != nil && failed == nil {
			failed = fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, r.Err)
		}
	})
	if failed != nil {
		return fmt.Errorf("write the abort marker: %w", failed)
	}
	fmt.Fprintf(c.App.Writer, "Aborted the transaction of producer %d (epoch %d) on %s-%d.\n", found.ProducerID, found.ProducerEpoch, topic, part)
	return nil
}
