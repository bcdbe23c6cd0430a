package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/urfave/cli/v2"
)

func groupCommand() *cli.Command {
	return &cli.Command{
		Name:  "group",
		Usage: "list, describe, reset and delete consumer groups (like kafka-consumer-groups.sh)",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the consumer groups with their state",
				Flags:  adminFlags(),
				Action: runGroupList,
			},
			{
				Name:      "describe",
				Usage:     "show a group's committed offsets, lag and owners per partition (or --members, --state)",
				ArgsUsage: "GROUP [GROUP...]",
				Flags: adminFlags(
					boolFlag("members", "list the members and their assigned partitions instead", false),
					boolFlag("state", "show the group's coordinator, assignor, state and member count instead", false),
				),
				Action: runGroupDescribe,
			},
			{
				Name:      "reset-offsets",
				Usage:     "set a group's committed offsets (dry run without --execute); the group must be empty",
				ArgsUsage: "GROUP",
				Flags: adminFlags(
					stringSliceFlag("topic", "TOPIC or TOPIC:P,P,... to reset; repeat for several"),
					boolFlag("all-topics", "reset every topic the group has committed offsets for", false),
					boolFlag("to-earliest", "reset to the log start offset", false),
					boolFlag("to-latest", "reset to the log end offset", false),
					int64Flag("to-offset", "reset to this offset (clamped to the partition's start and end)", -1),
					stringFlag("to-datetime", "reset to the first offset at or after this time (RFC 3339, e.g. 2026-11-25T10:00:00Z)", ""),
					boolFlag("execute", "commit the new offsets (without it, only print the plan)", false),
				),
				Action: runGroupResetOffsets,
			},
			{
				Name:      "delete",
				Usage:     "delete empty consumer groups and their committed offsets",
				ArgsUsage: "GROUP [GROUP...]",
				Flags:     adminFlags(),
				Action:    runGroupDelete,
			},
			{
				Name:      "delete-offsets",
				Usage:     "delete a group's committed offsets of topics it no longer consumes",
				ArgsUsage: "GROUP",
				Flags:     adminFlags(stringSliceFlag("topic", "TOPIC or TOPIC:P,P,... (required); repeat for several")),
				Action:    runGroupDeleteOffsets,
			},
		},
	}
}

// groupArgs returns the GROUP arguments: at least one, at most one unless
// many is set.
func groupArgs(c *cli.Context, many bool) ([]string, error) {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return nil, fmt.Errorf("missing GROUP: skein group %s GROUP; see the groups with `skein group list`", c.Command.Name)
	case len(args) > 1 && !many:
		return nil, fmt.Errorf("too many arguments %q: skein group %s takes one GROUP", args, c.Command.Name)
	}
	for _, g := range args {
		if g == "" {
			return nil, errors.New("a GROUP is empty")
		}
	}
	return args, nil
}

func runGroupList(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein group list takes no arguments; to see one group use `skein group describe %s`", c.Args().First())
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	members := make(map[string]int, len(listed))
	if names := listed.Groups(); len(names) > 0 {
		described, err := adm.DescribeGroups(ctx, names...)
		if err != nil {
			// The list is still worth printing; counts show as "-".
			fmt.Fprintf(os.Stderr, "warning: cannot describe groups for their member counts: %v\n", err)
		}
		for _, d := range described {
			if d.Err == nil {
				members[d.Group] = len(d.Members)
			}
		}
	}
	return writeGroupList(c.App.Writer, listed, members)
}

// writeGroupList writes one row per group, sorted by name. A group missing
// from members has an unknown member count.
func writeGroupList(w io.Writer, listed kadm.ListedGroups, members map[string]int) error {
	t := newTable(w)
	fmt.Fprintln(t, "GROUP\tSTATE\tPROTOCOL TYPE\tMEMBERS")
	for _, g := range listed.Sorted() {
		n := "-"
		if m, ok := members[g.Group]; ok {
			n = strconv.Itoa(m)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", g.Group, dash(g.State), dash(g.ProtocolType), n)
	}
	return t.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupMissing reports whether a described group does not exist: the
// coordinator describes an unknown group as Dead, without members.
func groupMissing(state string, err error) bool {
	return errors.Is(err, kerr.GroupIDNotFound) || (err == nil && state == "Dead")
}

func runGroupDescribe(c *cli.Context) error {
	groups, err := groupArgs(c, true)
	if err != nil {
		return err
	}
	if c.Bool("members") && c.Bool("state") {
		return errors.New("give either --members or --state, not both")
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	w := c.App.Writer
	if c.Bool("members") || c.Bool("state") {
		described, err := adm.DescribeGroups(ctx, groups...)
		if err != nil && len(described) == 0 {
			return fmt.Errorf("describe groups: %w", err)
		}
		var failed []string
		for i, g := range groups {
			d, ok := described[g]
			if !ok {
				d.Err = err
			}
			if i > 0 {
				fmt.Fprintln(w)
			}
			switch {
			case groupMissing(d.State, d.Err):
				fmt.Fprintf(w, "Consumer group '%s' does not exist.\n", g)
				failed = append(failed, g)
			case d.Err != nil:
				fmt.Fprintf(w, "Cannot describe consumer group '%s': %v\n", g, d.Err)
				failed = append(failed, g)
			case c.Bool("state"):
				writeGroupState(w, d)
			default:
				writeGroupMembers(w, d)
			}
		}
		return describeFailure(failed)
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil && len(lags) == 0 {
		return fmt.Errorf("describe groups: %w", err)
	}
	var failed []string
	for i, g := range groups {
		l, ok := lags[g]
		if !ok {
			l.DescribeErr = err
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		switch {
		case groupMissing(l.State, l.DescribeErr):
			fmt.Fprintf(w, "Consumer group '%s' does not exist.\n", g)
			failed = append(failed, g)
		case l.Error() != nil:
			fmt.Fprintf(w, "Cannot describe consumer group '%s': %v\n", g, l.Error())
			failed = append(failed, g)
		default:
			writeGroupOffsets(w, l)
		}
	}
	return describeFailure(failed)
}

func describeFailure(failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("cannot describe consumer group(s) %s", strings.Join(failed, ", "))
}

// memberPartitions returns the partitions assigned to m (consumer
// protocol), or nil.
func memberPartitions(m kadm.DescribedGroupMember) map[string][]int32 {
	a, ok := m.Assigned.AsConsumer()
	if !ok {
		return nil
	}
	out := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
	}
	return out
}

// writeGroupOffsets writes the default describe view, as
// kafka-consumer-groups.sh --describe does: one row per partition the
// group owns or has an offset for, and one per member without partitions.
func writeGroupOffsets(w io.Writer, l kadm.DescribedGroupLag) {
	if len(l.Members) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no active members.\n", l.Group)
	}
	t := newTable(w)
	fmt.Fprintln(t, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	owning := make(map[string]bool)
	for _, r := range l.Lag.Sorted() {
		current, lag := "-", "-"
		if r.Commit.At >= 0 {
			current = strconv.FormatInt(r.Commit.At, 10)
			if r.Lag >= 0 {
				lag = strconv.FormatInt(r.Lag, 10)
			}
		}
		end := "-"
		if r.End.Err == nil && r.End.Offset >= 0 {
			end = strconv.FormatInt(r.End.Offset, 10)
		}
		id, host, client := "-", "-", "-"
		if r.Member != nil {
			id, host, client = r.Member.MemberID, r.Member.ClientHost, r.Member.ClientID
			owning[id] = true
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Group, r.Topic, r.Partition, current, end, lag, id, dash(host), dash(client))
	}
	for _, m := range l.Members {
		if !owning[m.MemberID] {
			fmt.Fprintf(t, "%s\t-\t-\t-\t-\t-\t%s\t%s\t%s\n", l.Group, m.MemberID, dash(m.ClientHost), dash(m.ClientID))
		}
	}
	_ = t.Flush()
}

// writeGroupMembers writes the --members view.
func writeGroupMembers(w io.Writer, d kadm.DescribedGroup) {
	if len(d.Members) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no active members.\n", d.Group)
		return
	}
	t := newTable(w)
	fmt.Fprintln(t, "GROUP\tCONSUMER-ID\tGROUP-INSTANCE-ID\tHOST\tCLIENT-ID\t#PARTITIONS\tASSIGNMENT")
	for _, m := range d.Members {
		parts := memberPartitions(m)
		n := 0
		for _, ps := range parts {
			n += len(ps)
		}
		instance := "-"
		if m.InstanceID != nil {
			instance = *m.InstanceID
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Group, m.MemberID, instance, dash(m.ClientHost), dash(m.ClientID), n, dash(formatAssignment(parts)))
	}
	_ = t.Flush()
}

// writeGroupState writes the --state view.
func writeGroupState(w io.Writer, d kadm.DescribedGroup) {
	t := newTable(w)
	fmt.Fprintln(t, "GROUP\tCOORDINATOR (ID)\tASSIGNMENT-STRATEGY\tSTATE\t#MEMBERS")
	coord := fmt.Sprintf("%s:%d (%d)", d.Coordinator.Host, d.Coordinator.Port, d.Coordinator.NodeID)
	fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\n", d.Group, coord, dash(d.Protocol), dash(d.State), len(d.Members))
	_ = t.Flush()
}

// parseTopicPartitions parses --topic values: TOPIC (every partition) or
// TOPIC:P,P,... A nil slice means every partition.
func parseTopicPartitions(values []string) (map[string][]int32, error) {
	out := make(map[string][]int32, len(values))
	for _, v := range values {
		topic, list, hasList := strings.Cut(v, ":")
		topic = strings.TrimSpace(topic)
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: want TOPIC or TOPIC:P,P,...", v)
		}
		if !hasList {
			out[topic] = nil
			continue
		}
		parts := splitList(list)
		if len(parts) == 0 {
			return nil, fmt.Errorf("--topic %q lists no partitions: want TOPIC:P,P,...", v)
		}
		for _, p := range parts {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: partition %q is not a number >= 0", v, p)
			}
			out[topic] = append(out[topic], int32(n))
		}
	}
	return out, nil
}

// resolvePartitions expands topics without a partition list to all their
// partitions and checks that every named partition exists.
func resolvePartitions(ctx context.Context, adm *kadm.Client, want map[string][]int32) (kadm.TopicsSet, error) {
	names := make([]string, 0, len(want))
	for t := range want {
		names = append(names, t)
	}
	sort.Strings(names)
	topics, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	set := make(kadm.TopicsSet)
	for _, name := range names {
		d, ok := topics[name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", name)
		}
		if d.Err != nil {
			return nil, fmt.Errorf("describe topic %s: %w", name, d.Err)
		}
		if want[name] == nil {
			for p := range d.Partitions {
				set.Add(name, p)
			}
			continue
		}
		for _, p := range want[name] {
			if _, ok := d.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %s has no partition %d (it has %d)", name, p, len(d.Partitions))
			}
			set.Add(name, p)
		}
	}
	return set, nil
}

// resetSpec is the --to-* choice of reset-offsets.
type resetSpec struct {
	kind   string // earliest, latest, offset, datetime
	offset int64
	millis int64
}

func parseResetSpec(c *cli.Context) (resetSpec, error) {
	var specs []resetSpec
	if c.Bool("to-earliest") {
		specs = append(specs, resetSpec{kind: "earliest"})
	}
	if c.Bool("to-latest") {
		specs = append(specs, resetSpec{kind: "latest"})
	}
	if c.IsSet("to-offset") {
		if c.Int64("to-offset") < 0 {
			return resetSpec{}, fmt.Errorf("--to-offset %d is negative", c.Int64("to-offset"))
		}
		specs = append(specs, resetSpec{kind: "offset", offset: c.Int64("to-offset")})
	}
	if s := c.String("to-datetime"); s != "" {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return resetSpec{}, fmt.Errorf("--to-datetime %q: want RFC 3339, for example 2026-11-25T10:00:00Z", s)
		}
		specs = append(specs, resetSpec{kind: "datetime", millis: at.UnixMilli()})
	}
	switch len(specs) {
	case 0:
		return resetSpec{}, errors.New("say where to reset to: one of --to-earliest, --to-latest, --to-offset N, --to-datetime T")
	case 1:
		return specs[0], nil
	}
	return resetSpec{}, errors.New("give only one of --to-earliest, --to-latest, --to-offset, --to-datetime")
}

// planReset computes the new offset of every partition of set.
func planReset(ctx context.Context, adm *kadm.Client, set kadm.TopicsSet, spec resetSpec) (kadm.Offsets, error) {
	topics := set.Topics()
	list := func(name string, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		l, err := fn(ctx, topics...)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", name, err)
		}
		return l, nil
	}
	starts, err := list("start", adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	ends, err := list("end", adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	var after kadm.ListedOffsets
	if spec.kind == "datetime" {
		if after, err = list("timestamp", func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, spec.millis, ts...)
		}); err != nil {
			return nil, err
		}
	}
	plan := make(kadm.Offsets)
	for _, tp := range set.Sorted() {
		for _, p := range tp.Partitions {
			start, ok1 := starts.Lookup(tp.Topic, p)
			end, ok2 := ends.Lookup(tp.Topic, p)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("no offsets listed for %s[%d]", tp.Topic, p)
			}
			var at int64
			switch spec.kind {
			case "earliest":
				at = start.Offset
			case "latest":
				at = end.Offset
			case "offset":
				// Kafka clamps an offset outside the log to its bounds.
				at = min(max(spec.offset, start.Offset), end.Offset)
			case "datetime":
				at = end.Offset // no record at or after the time
				if o, ok := after.Lookup(tp.Topic, p); ok && o.Offset >= 0 {
					at = o.Offset
				}
			}
			plan.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	return plan, nil
}

// writeOffsetPlan writes GROUP TOPIC PARTITION NEW-OFFSET rows.
func writeOffsetPlan(w io.Writer, group string, plan kadm.Offsets) error {
	t := newTable(w)
	fmt.Fprintln(t, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")
	for _, o := range plan.Sorted() {
		fmt.Fprintf(t, "%s\t%s\t%d\t%d\n", group, o.Topic, o.Partition, o.At)
	}
	return t.Flush()
}

func runGroupResetOffsets(c *cli.Context) error {
	args, err := groupArgs(c, false)
	if err != nil {
		return err
	}
	group := args[0]
	spec, err := parseResetSpec(c)
	if err != nil {
		return err
	}
	want, err := parseTopicPartitions(c.StringSlice("topic"))
	if err != nil {
		return err
	}
	all := c.Bool("all-topics")
	switch {
	case all && len(want) > 0:
		return errors.New("give either --topic or --all-topics, not both")
	case !all && len(want) == 0:
		return errors.New("say which offsets to reset: --topic TOPIC[:P,P,...] (repeatable) or --all-topics")
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()

	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described[group].Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	// As Kafka: only an inactive group (Empty, or unknown: Dead) may have
	// its offsets reset; its members would overwrite them otherwise.
	if d := described[group]; err == nil && d.State != "Empty" && d.State != "Dead" {
		return fmt.Errorf("assignments can only be reset if the group '%s' is inactive, but the current state is %s with %d member(s): stop its consumers first",
			group, d.State, len(d.Members))
	}

	if all {
		fetched, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = fetched.Error()
		}
		if err != nil {
			return fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
		}
		want = make(map[string][]int32)
		fetched.Each(func(o kadm.OffsetResponse) { want[o.Topic] = nil })
		if len(want) == 0 {
			return fmt.Errorf("group %s has no committed offsets: name the topics with --topic", group)
		}
	}
	set, err := resolvePartitions(ctx, adm, want)
	if err != nil {
		return err
	}
	plan, err := planReset(ctx, adm, set, spec)
	if err != nil {
		return err
	}
	if err := writeOffsetPlan(c.App.Writer, group, plan); err != nil {
		return err
	}
	if !c.Bool("execute") {
		fmt.Fprintln(c.App.ErrWriter, "Dry run: nothing was committed. Add --execute to commit these offsets.")
		return nil
	}
	resps, err := adm.CommitOffsets(ctx, group, plan)
	if err == nil {
		err = resps.Error()
	}
	switch {
	case err == nil:
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.RebalanceInProgress):
		return fmt.Errorf("commit offsets of group %s: %w: a consumer joined the group meanwhile; stop its consumers and retry", group, err)
	default:
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "Committed %d offsets of group %s.\n", len(plan.Sorted()), group)
	return nil
}

func runGroupDelete(c *cli.Context) error {
	groups, err := groupArgs(c, true)
	if err != nil {
		return err
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil && len(resps) == 0 {
		return fmt.Errorf("delete groups: %w", err)
	}
	var deleted, failed []string
	for _, g := range groups {
		r, ok := resps[g]
		if !ok {
			r.Err = err
		}
		switch {
		case r.Err == nil:
			deleted = append(deleted, "'"+g+"'")
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			failed = append(failed, fmt.Sprintf("group %s does not exist; see the groups with `skein group list`", g))
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			failed = append(failed, fmt.Sprintf("group %s is not empty: stop its consumers first", g))
		default:
			failed = append(failed, fmt.Sprintf("delete group %s: %v", g, r.Err))
		}
	}
	if len(deleted) > 0 {
		fmt.Fprintf(c.App.Writer, "Deletion of requested consumer groups (%s) was successful.\n", strings.Join(deleted, ", "))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func runGroupDeleteOffsets(c *cli.Context) error {
	args, err := groupArgs(c, false)
	if err != nil {
		return err
	}
	group := args[0]
	want, err := parseTopicPartitions(c.StringSlice("topic"))
	if err != nil {
		return err
	}
	if len(want) == 0 {
		return errors.New("say which offsets to delete: --topic TOPIC[:P,P,...] (repeatable)")
	}
	adm, ctx, done, err := adminContext(c)
	if err != nil {
		return err
	}
	defer done()
	set, err := resolvePartitions(ctx, adm, want)
	if err != nil {
		return err
	}
	resps, err := adm.DeleteOffsets(ctx, group, set)
	switch {
	case err == nil:
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %s does not exist; see the groups with `skein group list`", group)
	default:
		return fmt.Errorf("delete offsets of group %s: %w", group, err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tSTATUS")
	var failed int
	for _, tp := range set.Sorted() {
		for _, p := range tp.Partitions {
			status := "Successful"
			if perr, ok := resps.Lookup(tp.Topic, p); ok && perr != nil {
				status = "Error: " + perr.Error()
				failed++
			}
			fmt.Fprintf(t, "%s\t%d\t%s\n", tp.Topic, p, status)
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d offsets of group %s were not deleted (a member still consumes the topic? GROUP_SUBSCRIBED_TO_TOPIC)", failed, group)
	}
	return nil
}
