package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/urfave/cli/v2"
)

func leaderCommand() *cli.Command {
	return &cli.Command{
		Name:  "leader",
		Usage: "partition leadership (like kafka-leader-election.sh)",
		Subcommands: []*cli.Command{
			{
				Name:  "elect",
				Usage: "elect partition leaders: the preferred replica (--preferred) or, for partitions without a leader, any live replica (--unclean)",
				Description: "Examples:\n" +
					"   skein leader elect --preferred                       every partition\n" +
					"   skein leader elect --preferred --topic orders        every partition of orders\n" +
					"   skein leader elect --unclean --topic orders --partition 3\n\n" +
					"   Prints one row per partition; exits with an error if any election failed\n" +
					"   (a partition whose preferred replica already leads is not a failure).",
				Flags: withCommon(
					boolFlag("preferred", "elect the preferred replica (the first one) where it is live and in sync", false),
					boolFlag("unclean", "elect a leader for partitions without one, out-of-sync replicas included (may lose records)", false),
					stringFlag("topic", "only this topic (default: every partition of the cluster)", ""),
					intFlag("partition", "only this partition of --topic (-1: all of them)", -1),
					bootstrapServerFlag(),
					durationFlag("timeout", "give up on the request after this long", 30*time.Second),
				),
				Action: runLeaderElect,
			},
		},
	}
}

func runLeaderElect(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein leader elect takes no arguments; name the topic with --topic %s", c.Args().First())
	}
	var how kadm.ElectLeadersHow
	switch {
	case c.Bool("preferred") == c.Bool("unclean"):
		return errors.New("give exactly one of --preferred and --unclean")
	case c.Bool("unclean"):
		how = kadm.ElectLiveReplica
	default:
		how = kadm.ElectPreferredReplica
	}
	topic := c.String("topic")
	partition, err := int32Value(c, "partition")
	if err != nil {
		return err
	}
	if topic == "" && partition >= 0 {
		return errors.New("--partition needs --topic")
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()

	var set kadm.TopicsSet // nil: every partition
	if topic != "" {
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return fmt.Errorf("describe topic %s: %w", topic, err)
		}
		d, ok := topics[topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", topic)
		}
		set = kadm.TopicsSet{}
		if partition >= 0 {
			if _, ok := d.Partitions[partition]; !ok {
				return fmt.Errorf("topic %s has no partition %d (it has %d)", topic, partition, len(d.Partitions))
			}
			set.Add(topic, partition)
		} else {
			for _, p := range d.Partitions.Sorted() {
				set.Add(topic, p.Partition)
			}
		}
	}
	results, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return fmt.Errorf("elect leaders: %w", err)
	}
	failed, err := writeElectionResults(c.App.Writer, results)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d partition(s) could not be elected", failed)
	}
	return nil
}

// electionResult is how a row's outcome reads.
func electionResult(r kadm.ElectLeadersResult) (text string, failed bool) {
	switch {
	case r.Err == nil:
		return "elected", false
	case errors.Is(r.Err, kerr.ElectionNotNeeded):
		return "not needed: the replica to elect already leads", false
	}
	text = r.Err.Error()
	var ke *kerr.Error
	if r.ErrMessage != "" && !(errors.As(r.Err, &ke) && ke.Message == r.ErrMessage) {
		text += " (" + r.ErrMessage + ")"
	}
	return text, true
}

// writeElectionResults writes one row per partition, sorted by topic and
// partition, and returns how many elections failed.
func writeElectionResults(w io.Writer, results kadm.ElectLeadersResults) (int, error) {
	var rows []kadm.ElectLeadersResult
	for _, parts := range results {
		for _, r := range parts {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No partition needed an election.")
		return 0, err
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Topic != rows[j].Topic {
			return rows[i].Topic < rows[j].Topic
		}
		return rows[i].Partition < rows[j].Partition
	})
	t := newTable(w)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tELECTION\tRESULT")
	failed := 0
	for _, r := range rows {
		text, bad := electionResult(r)
		if bad {
			failed++
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\n", r.Topic, r.Partition, electionHow(r.How), text)
	}
	return failed, t.Flush()
}

func electionHow(how kadm.ElectLeadersHow) string {
	if how == kadm.ElectLiveReplica {
		return "UNCLEAN"
	}
	return "PREFERRED"
}
