package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/skein-io/skein/internal/console"
)

// newTable returns a tabwriter for aligned columns; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// formatTopicID prints a topic id as Kafka does: URL-safe base64 without
// padding. The zero id (a broker without topic ids) prints as "-".
func formatTopicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// formatNodes prints node ids comma-separated, as kafka-topics.sh does.
func formatNodes(ids []int32) string { return console.FormatIDs(ids) }

// replicationFactor is the replica count of partition 0 (or of any
// partition if 0 is missing), as kafka-topics.sh reports it.
func replicationFactor(d kadm.TopicDetail) int {
	if p, ok := d.Partitions[0]; ok {
		return len(p.Replicas)
	}
	for _, p := range d.Partitions {
		return len(p.Replicas)
	}
	return 0
}

// writeTopicList writes one row per topic, sorted by name.
func writeTopicList(w io.Writer, topics kadm.TopicDetails) error {
	t := newTable(w)
	fmt.Fprintln(t, "TOPIC\tPARTITIONS\tREPLICATION-FACTOR\tTOPIC-ID")
	for _, name := range topics.Names() {
		d := topics[name]
		fmt.Fprintf(t, "%s\t%d\t%d\t%s\n", name, len(d.Partitions), replicationFactor(d), formatTopicID(d.ID))
	}
	return t.Flush()
}

// formatConfigs prints topic configs as k=v,k=v sorted by key.
func formatConfigs(configs []kadm.Config) string {
	parts := make([]string, 0, len(configs))
	for _, c := range configs {
		parts = append(parts, c.Key+"="+c.MaybeValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// writeTopicDescription writes a topic the way `kafka-topics.sh --describe`
// does: a summary line, then one aligned line per partition. configs are
// the topic's non-default configs; elrs, when not nil, the partitions'
// eligible leader replicas (Elr and LastKnownElr columns, as Kafka 3.8+);
// moves the partitions being reassigned (Adding Replicas and Removing
// Replicas columns on those rows, as kafka-topics.sh; the Replicas column
// is then the target followed by the replicas leaving).
func writeTopicDescription(w io.Writer, d kadm.TopicDetail, configs []kadm.Config, elrs map[int32]partitionELR,
	moves map[int32]partitionMove) error {
	if _, err := fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
		d.Topic, formatTopicID(d.ID), len(d.Partitions), replicationFactor(d), formatConfigs(configs)); err != nil {
		return err
	}
	t := newTable(w)
	for _, p := range d.Partitions.Sorted() {
		fmt.Fprintf(t, "\tTopic: %s\tPartition: %d\tLeader: %s\tLeaderEpoch: %d\tReplicas: %s\tIsr: %s",
			d.Topic, p.Partition, formatLeader(p.Leader), p.LeaderEpoch, formatNodes(p.Replicas), formatNodes(p.ISR))
		if elrs != nil {
			e := elrs[p.Partition]
			fmt.Fprintf(t, "\tElr: %s\tLastKnownElr: %s", formatNodes(e.elr), formatNodes(e.lastKnown))
		}
		if m, ok := moves[p.Partition]; ok {
			fmt.Fprintf(t, "\tAdding Replicas: %s\tRemoving Replicas: %s", formatNodes(m.adding), formatNodes(m.removing))
		}
		fmt.Fprintf(t, "\tOffline: %s", formatNodes(p.OfflineReplicas))
		if p.Err != nil {
			fmt.Fprintf(t, "\tError: %v", p.Err)
		}
		fmt.Fprintln(t)
	}
	return t.Flush()
}

func formatLeader(id int32) string {
	if id < 0 {
		return "none"
	}
	return strconv.FormatInt(int64(id), 10)
}
