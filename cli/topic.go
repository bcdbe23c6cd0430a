package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func topicCommand() *cli.Command {
	return &cli.Command{
		Name:  "topic",
		Usage: "create, list, describe and delete topics",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a topic",
				ArgsUsage: "NAME",
				Flags: adminFlags(
					intFlag("partitions", "number of partitions (-1: the broker's num.partitions)", -1),
					intFlag("replication-factor", "replicas per partition (-1: the broker's default.replication.factor)", -1),
					stringSliceFlag("config", "topic config key=value; repeat for several"),
				),
				Action: runTopicCreate,
			},
			{
				Name:   "list",
				Usage:  "list topics",
				Flags:  adminFlags(boolFlag("internal", "include internal topics", false)),
				Action: runTopicList,
			},
			{
				Name:      "describe",
				Usage:     "describe a topic (all topics without NAME), like kafka-topics.sh --describe",
				ArgsUsage: "[NAME]",
				Flags:     adminFlags(),
				Action:    runTopicDescribe,
			},
			{
				Name:      "delete",
				Usage:     "delete a topic",
				ArgsUsage: "NAME",
				Flags:     adminFlags(),
				Action:    runTopicDelete,
			},
			{
				Name: "delete-records",
				Usage: "delete a topic's records below an offset, like kafka-delete-records.sh: they can no longer be read, " +
					"consumers below it move to the new log start, and the segments wholly below it go",
				ArgsUsage: "NAME --offset N | --offset-json-file FILE",
				Flags: adminFlags(
					&cli.Int64Flag{Name: "offset", Usage: "delete the records below this offset (-1: below the high watermark, every committed record)",
						EnvVars: []string{envName("offset")}},
					&cli.IntSliceFlag{Name: "partition", Usage: "a partition to delete from; repeat for several (default: every partition)",
						EnvVars: []string{envName("partition")}},
					stringFlag("offset-json-file", "kafka-delete-records.sh's JSON file instead of NAME and --offset: "+
						`{"partitions": [{"topic": "t", "partition": 0, "offset": 10}], "version": 1}`, ""),
				),
				Action: runTopicDeleteRecords,
			},
		},
	}
}

// topicArg returns the single NAME argument.
func topicArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", fmt.Errorf("missing topic NAME: skein topic %s NAME", c.Command.Name)
	case 1:
		return c.Args().First(), nil
	}
	return "", fmt.Errorf("too many arguments %q: skein topic %s takes one topic NAME", c.Args().Slice(), c.Command.Name)
}

// parseConfigs parses --config k=v values.
func parseConfigs(values []string) (map[string]*string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	configs := make(map[string]*string, len(values))
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--config %q: want key=value, for example --config retention.ms=86400000", kv)
		}
		configs[k] = &v
	}
	return configs, nil
}

// adminContext opens an admin client and a context bounded by --timeout.
func adminContext(c *cli.Context) (*kadm.Client, context.Context, func(), error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, nil, nil, err
	}
	adm, err := newAdmin(c, log)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	return adm, ctx, func() { cancel(); adm.Close() }, nil
}

func runTopicCreate(c *cli.Context) error {
	name, err := topicArg(c)
	if err != nil {
		return err
	}
	partitions, err := int32Value(c, "partitions")
	if err != nil {
		return err
	}
	rf, err := int16Value(c, "replication-factor")
	if err != nil {
		return err
	}
	configs, err := parseConfigs(c.StringSlice("config"))
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %s already exists; use `skein topic describe %s`", name, name)
	default:
		return fmt.Errorf("create topic %s: %w%s", name, err, detail(resp.ErrMessage))
	}
	fmt.Fprintf(c.App.Writer, "Created topic %s.\n", name)
	return nil
}

func runTopicList(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein topic list takes no arguments; to see one topic use `skein topic describe %s`", c.Args().First())
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	var topics kadm.TopicDetails
	if c.Bool("internal") {
		topics, err = adm.ListTopicsWithInternal(ctx)
	} else {
		topics, err = adm.ListTopics(ctx)
	}
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	return writeTopicList(c.App.Writer, topics)
}

func runTopicDescribe(c *cli.Context) error {
	if c.NArg() > 1 {
		return fmt.Errorf("too many arguments %q: skein topic describe takes at most one topic NAME", c.Args().Slice())
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	var names []string
	if c.NArg() == 1 {
		names = []string{c.Args().First()}
	}
	topics, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	for _, name := range names {
		if d, ok := topics[name]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("topic %s does not exist; see the topics with `skein topic list` or create it with `skein topic create %s`", name, name)
		}
	}
	elrs, err := eligibleLeaderReplicas(ctx, cl, names)
	if err != nil {
		log.Warn("cannot read eligible leader replicas (DescribeTopicPartitions); not shown", "error", err)
	}
	moves, err := partitionMoves(ctx, cl, names)
	if err != nil {
		log.Warn("cannot read ongoing reassignments (ListPartitionReassignments); not shown", "error", err)
	}
	for _, name := range topics.Names() {
		d := topics[name]
		if d.Err != nil {
			return fmt.Errorf("describe topic %s: %w", name, d.Err)
		}
		if err := writeTopicDescription(c.App.Writer, d, topicConfigs(ctx, adm, name), elrs[name], moves[name]); err != nil {
			return err
		}
	}
	return nil
}

// partitionELR is a partition's eligible leader replicas and last-known
// ELR (KIP-966).
type partitionELR struct {
	elr, lastKnown []int32
}

// eligibleLeaderReplicas reads the ELRs of topics (every topic when names
// is empty) with DescribeTopicPartitions, following its cursor: topic ->
// partition -> ELR. nil with an error when the brokers cannot answer.
func eligibleLeaderReplicas(ctx context.Context, cl *kgo.Client, names []string) (map[string]map[int32]partitionELR, error) {
	out := map[string]map[int32]partitionELR{}
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, n := range names {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = n
		req.Topics = append(req.Topics, rt)
	}
	for page := 0; page < 10_000; page++ { // bounded: each page advances the cursor
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		for _, dt := range resp.Topics {
			if dt.Topic == nil || dt.ErrorCode != 0 {
				continue
			}
			m := out[*dt.Topic]
			if m == nil {
				m = map[int32]partitionELR{}
				out[*dt.Topic] = m
			}
			for _, p := range dt.Partitions {
				m[p.Partition] = partitionELR{elr: p.EligibleLeaderReplicas, lastKnown: p.LastKnownELR}
			}
		}
		if resp.NextCursor == nil {
			return out, nil
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	return nil, errors.New("DescribeTopicPartitions: too many pages")
}

// partitionMove is a partition's ongoing reassignment (KIP-455).
type partitionMove struct {
	adding, removing []int32
}

// partitionMoves reads the ongoing reassignments of topics (every topic
// when names is empty) with ListPartitionReassignments: topic -> partition
// -> move, only the partitions being moved. Empty, without an error, when
// the brokers do not offer the API.
func partitionMoves(ctx context.Context, cl *kgo.Client, names []string) (map[string]map[int32]partitionMove, error) {
	out := map[string]map[int32]partitionMove{}
	req := kmsg.NewPtrListPartitionReassignmentsRequest() // null topics: every move; the named ones are kept
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		if errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old") {
			return out, nil
		}
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		if len(names) > 0 && !slices.Contains(names, t.Topic) {
			continue
		}
		m := map[int32]partitionMove{}
		for _, p := range t.Partitions {
			m[p.Partition] = partitionMove{adding: p.AddingReplicas, removing: p.RemovingReplicas}
		}
		out[t.Topic] = m
	}
	return out, nil
}

// topicConfigs returns the configs set on the topic itself (not defaults),
// as kafka-topics.sh shows them. A failure is reported on stderr and
// leaves the list empty: the partition table is still worth printing.
func topicConfigs(ctx context.Context, adm *kadm.Client, topic string) []kadm.Config {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil && len(rcs) > 0 {
		err = rcs[0].Err
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: cannot read configs of topic %s: %v\n", topic, err)
		return nil
	}
	var out []kadm.Config
	for _, rc := range rcs {
		for _, cfg := range rc.Configs {
			if cfg.Source == kmsg.ConfigSourceDynamicTopicConfig {
				out = append(out, cfg)
			}
		}
	}
	return out
}

func runTopicDelete(c *cli.Context) error {
	name, err := topicArg(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", name)
	default:
		return fmt.Errorf("delete topic %s: %w%s", name, err, detail(resp.ErrMessage))
	}
	fmt.Fprintf(c.App.Writer, "Deleted topic %s.\n", name)
	return nil
}

// detail formats a broker's error message, if any, for appending.
func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

// runTopicDeleteRecords sends DeleteRecords for the chosen partitions (all
// of NAME by default, or those of an --offset-json-file) and prints each
// one's new low watermark, the lowest log start among its replicas.
func runTopicDeleteRecords(c *cli.Context) error {
	jsonFile := c.String("offset-json-file")
	var name string
	if jsonFile == "" {
		var err error
		if name, err = topicArg(c); err != nil {
			return err
		}
		if !c.IsSet("offset") {
			return errors.New("missing --offset N: delete the records below N (-1: the high watermark), or give --offset-json-file FILE")
		}
	} else if c.NArg() > 0 || c.IsSet("offset") || c.IsSet("partition") {
		return errors.New("--offset-json-file names the topics, partitions and offsets: give no NAME, --offset or --partition with it")
	}
	var want []kadm.Offset
	if jsonFile != "" {
		var err error
		if want, err = readOffsetJSON(jsonFile); err != nil {
			return err
		}
	}
	offset := c.Int64("offset")
	if offset < -1 {
		return fmt.Errorf("--offset %d: want an offset >= 0, or -1 for the high watermark", offset)
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	if jsonFile == "" {
		var parts []int32
		for _, p := range c.IntSlice("partition") {
			parts = append(parts, int32(p))
		}
		if len(parts) == 0 {
			ends, err := adm.ListEndOffsets(ctx, name)
			if err == nil {
				err = ends.Error()
			}
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", name)
			}
			if err != nil {
				return fmt.Errorf("list partitions of %s: %w", name, err)
			}
			ends.Each(func(o kadm.ListedOffset) { parts = append(parts, o.Partition) })
		}
		for _, p := range parts {
			want = append(want, kadm.Offset{Topic: name, Partition: p, At: offset, LeaderEpoch: -1})
		}
	}
	slices.SortFunc(want, func(a, b kadm.Offset) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	offs := kadm.Offsets{}
	for _, o := range want {
		offs.Add(o)
	}
	resp, err := adm.DeleteRecords(ctx, offs)
	if err != nil && len(resp) == 0 {
		return fmt.Errorf("delete records: %w", err)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOW-WATERMARK\tERROR")
	failed := 0
	for _, o := range want {
		r, ok := resp.Lookup(o.Topic, o.Partition)
		switch {
		case !ok:
			failed++
			fmt.Fprintf(tw, "%s\t%d\t-\tno answer (%v)\n", o.Topic, o.Partition, err)
		case r.Err != nil:
			failed++
			fmt.Fprintf(tw, "%s\t%d\t-\t%v\n", o.Topic, o.Partition, r.Err)
		default:
			fmt.Fprintf(tw, "%s\t%d\t%d\t-\n", o.Topic, o.Partition, r.LowWatermark)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d partitions failed: OFFSET_OUT_OF_RANGE means the offset is past the high watermark, "+
			"POLICY_VIOLATION a compacted topic, UNKNOWN_TOPIC_OR_PARTITION a partition that does not exist, "+
			"REQUEST_TIMED_OUT a follower that has not caught up yet (run it again)", failed, len(want))
	}
	return nil
}

// readOffsetJSON reads kafka-delete-records.sh's --offset-json-file:
// {"partitions": [{"topic": "t", "partition": 0, "offset": 10}], "version": 1}.
func readOffsetJSON(path string) ([]kadm.Offset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Version    int `json:"version"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition *int32 `json:"partition"`
			Offset    *int64 `json:"offset"`
		} `json:"partitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w (want {\"partitions\": [{\"topic\": \"t\", \"partition\": 0, \"offset\": 10}], \"version\": 1})", path, err)
	}
	if doc.Version != 1 || len(doc.Partitions) == 0 {
		return nil, fmt.Errorf("%s: want version 1 and at least one partition", path)
	}
	seen := map[string]bool{}
	var out []kadm.Offset
	for i, p := range doc.Partitions {
		if p.Topic == "" || p.Partition == nil || p.Offset == nil || *p.Partition < 0 || *p.Offset < -1 {
			return nil, fmt.Errorf("%s: partitions[%d]: want a topic, a partition >= 0 and an offset >= -1", path, i)
		}
		k := fmt.Sprintf("%s/%d", p.Topic, *p.Partition)
		if seen[k] {
			return nil, fmt.Errorf("%s: partition %s appears twice", path, k)
		}
		seen[k] = true
		out = append(out, kadm.Offset{Topic: p.Topic, Partition: *p.Partition, At: *p.Offset, LeaderEpoch: -1})
	}
	return out, nil
}
