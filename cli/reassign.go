package cli

// Partition reassignment (issue 12), like kafka-reassign-partitions.sh:
// `skein reassign generate|execute|verify|list|cancel`, `skein broker
// decommission ID` and `skein cluster rebalance`. The plans are computed by
// internal/reassign; the commands read the cluster (DescribeCluster for the
// brokers, racks and fencing; Metadata for the replicas), send
// AlterPartitionReassignments (API 45) and ListPartitionReassignments
// (API 46), and set or remove the KIP-73 replication throttles with
// IncrementalAlterConfigs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/internal/reassign"
)

func reassignCommand() *cli.Command {
	return &cli.Command{
		Name:  "reassign",
		Usage: "move partition replicas between brokers (like kafka-reassign-partitions.sh)",
		Description: "A plan is kafka-reassign-partitions' JSON:\n" +
			"   {\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[101,102,104]}]}\n" +
			"   (the first replica is the preferred leader; \"log_dirs\" is ignored).\n\n" +
			"   skein reassign generate --topics orders --brokers 101,102,104 > plan.json\n" +
			"   skein reassign execute --plan plan.json --throttle 50MB/s --wait\n" +
			"   skein reassign verify --plan plan.json",
		Subcommands: []*cli.Command{
			{
				Name:  "generate",
				Usage: "print a plan (JSON) moving the replicas of --topics onto --brokers",
				Description: "Replicas already on one of --brokers stay; the others go to the least loaded of\n" +
					"   --brokers, keeping each partition's replication factor; preferred leaders are spread\n" +
					"   evenly. With --rack-aware a partition's replicas go to distinct racks. Only the\n" +
					"   partitions that change are in the plan; the current assignment and a summary go to\n" +
					"   stderr. The same cluster state always gives the same plan.",
				Flags: withCommon(
					requiredStringFlag("topics", "topics to move, T[,T...]"),
					requiredStringFlag("brokers", "broker ids the replicas may be on, ID[,ID...]"),
					boolFlag("rack-aware", "put the replicas of a partition on distinct racks (every broker needs a --rack)", false),
					bootstrapServerFlag(),
					durationFlag("timeout", "give up on the requests after this long", 30*time.Second),
				),
				Action: runReassignGenerate,
			},
			{
				Name:  "execute",
				Usage: "start the reassignment of a plan; prints the current assignment first (to roll back)",
				Description: "--throttle R bounds the replication of the moving partitions to R bytes/s (50MB/s,\n" +
					"   1MiB/s, 1048576): it sets leader.replication.throttled.rate and\n" +
					"   follower.replication.throttled.rate on the brokers involved and\n" +
					"   leader/follower.replication.throttled.replicas on the topics. `skein reassign verify`\n" +
					"   (or --wait) removes them once the reassignment is complete.",
				Flags: withCommon(append([]cli.Flag{
					requiredStringFlag("plan", "plan `FILE` (JSON, as printed by skein reassign generate)"),
				}, executeFlags()...)...),
				Action: runReassignExecute,
			},
			{
				Name:  "verify",
				Usage: "check a plan's reassignment: exits 0 when complete (and removes the throttles)",
				Flags: withCommon(
					requiredStringFlag("plan", "plan `FILE` (JSON)"),
					boolFlag("preserve-throttles", "keep the replication throttles when complete", false),
					bootstrapServerFlag(),
					durationFlag("timeout", "give up on the requests after this long", 30*time.Second),
				),
				Action: runReassignVerify,
			},
			{
				Name:  "list",
				Usage: "list the partitions being reassigned: replicas, adding, removing, and what is left to copy",
				Flags: withCommon(
					bootstrapServerFlag(),
					durationFlag("timeout", "give up on the requests after this long", 30*time.Second),
				),
				Action: runReassignList,
			},
			{
				Name:  "cancel",
				Usage: "cancel the reassignment of a plan's partitions (--plan) or of every partition (--all)",
				Description: "A cancelled partition goes back to its replicas from before the reassignment.\n" +
					"   The replication throttles are removed too unless --preserve-throttles.",
				Flags: withCommon(
					stringFlag("plan", "plan `FILE` (JSON) whose partitions to cancel", ""),
					boolFlag("all", "cancel every ongoing reassignment", false),
					boolFlag("preserve-throttles", "keep the replication throttles", false),
					bootstrapServerFlag(),
					durationFlag("timeout", "give up on the requests after this long", 30*time.Second),
				),
				Action: runReassignCancel,
			},
		},
	}
}

// executeFlags are the flags of everything that starts a reassignment.
func executeFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("throttle", "bound the replication of the moving partitions to `RATE` (50MB/s, 1MiB/s, 1048576 bytes/s)", ""),
		boolFlag("wait", "wait until the reassignment is complete, showing its progress, then remove the throttles", false),
		durationFlag("interval", "with --wait, how often progress is polled", time.Second),
		boolFlag("no-progress", "with --wait, print progress lines instead of a progress bar", false),
		bootstrapServerFlag(),
		durationFlag("timeout", "give up on each request after this long (--wait itself has no limit)", 30*time.Second),
	}
}

func decommissionCommand() *cli.Command {
	return &cli.Command{
		Name:      "decommission",
		Usage:     "move every replica off broker ID onto the least loaded other live brokers",
		ArgsUsage: "ID",
		Description: "Only the replicas on ID move (rack-aware when every broker has a rack); where ID was\n" +
			"   the preferred leader another replica takes over. Prints the current assignment first\n" +
			"   (to roll back). Stop the broker once `skein reassign list` shows nothing moving.\n\n" +
			"   skein broker decommission 103 --throttle 50MB/s --wait",
		Flags: withCommon(append([]cli.Flag{
			boolFlag("dry-run", "print the plan only", false),
			stringFlag("plan-out", "also write the plan to `FILE` (for skein reassign verify/cancel --plan)", ""),
		}, executeFlags()...)...),
		Action: runDecommission,
	}
}

func rebalanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "rebalance",
		Usage: "even out replicas and preferred leaders over the live brokers, moving as little data as possible",
		Description: "Replicas on brokers that are not live move to live ones; then replica counts per broker\n" +
			"   are brought within one of each other, and preferred leaders too (rack-aware when every\n" +
			"   broker has a rack). --dry-run prints the plan as a table and the count of replicas to\n" +
			"   move. Run `skein leader elect --preferred` afterwards to move leadership itself.",
		Flags: withCommon(append([]cli.Flag{
			boolFlag("dry-run", "print the plan and the number of replicas to move, change nothing", false),
			stringFlag("plan-out", "also write the plan to `FILE` (for skein reassign verify/cancel --plan)", ""),
		}, executeFlags()...)...),
		Action: runRebalance,
	}
}

// reassignEnv is what every reassign command works with.
type reassignEnv struct {
	c   *cli.Context
	log hclog.Logger
	cl  *kgo.Client
	adm *kadm.Client
	ctx context.Context // bounded by --timeout
}

func newReassignEnv(c *cli.Context) (*reassignEnv, func(), error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, nil, err
	}
	cl, err := newClient(c, log)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	return &reassignEnv{c: c, log: log, cl: cl, adm: kadm.NewClient(cl), ctx: ctx}, func() { cancel(); cl.Close() }, nil
}

// metadataSettle bounds how long execute --wait looks again at partitions
// whose metadata does not show the planned replicas yet once nothing moves.
const metadataSettle = 2 * time.Second

// settlePoll is the pause between two looks at the metadata while it
// settles: the --wait interval, within [50ms, 1s].
func settlePoll(interval time.Duration) time.Duration {
	return min(max(interval, 50*time.Millisecond), time.Second)
}

// errNoReassignment is the answer of a cluster without API 45/46.
var errNoReassignment = errors.New("this cluster does not support partition reassignment")

// requireAPI fails with errNoReassignment unless a broker offers key.
func (e *reassignEnv) requireAPI(key kmsg.Key) error {
	vs, err := e.adm.ApiVersions(e.ctx)
	if err != nil {
		return fmt.Errorf("api versions: %w", err)
	}
	for _, v := range vs {
		if _, ok := v.KeyMaxVersion(int16(key)); v.Err == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("%w (%s, API %d): its brokers do not offer it yet", errNoReassignment, apiName(key), key)
}

func apiName(key kmsg.Key) string {
	switch key {
	case kmsg.AlterPartitionAssignments:
		return "AlterPartitionReassignments"
	case kmsg.ListPartitionReassignments:
		return "ListPartitionReassignments"
	}
	return key.Name()
}

// reassignError turns a client's "unsupported" answers into
// errNoReassignment.
func reassignError(api string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old") {
		return fmt.Errorf("%w (%s): %v", errNoReassignment, api, err)
	}
	return fmt.Errorf("%s: %w", api, err)
}

// brokerState is one broker of DescribeCluster.
type brokerState struct {
	ID     int32
	Rack   string
	Fenced bool
}

// brokers lists the cluster's brokers, fenced ones included.
func (e *reassignEnv) brokers(ctx context.Context) (map[int32]brokerState, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, e.cl)
	if err != nil {
		return nil, fmt.Errorf("describe cluster: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("describe cluster: %w%s", err, detail(deref(resp.ErrorMessage)))
	}
	out := map[int32]brokerState{}
	for _, b := range resp.Brokers {
		out[b.NodeID] = brokerState{ID: b.NodeID, Rack: deref(b.Rack), Fenced: b.IsFenced}
	}
	return out, nil
}

// liveBrokers are the unfenced brokers, sorted by id.
func liveBrokers(all map[int32]brokerState) []reassign.Broker {
	var out []reassign.Broker
	for _, b := range all {
		if !b.Fenced {
			out = append(out, reassign.Broker{ID: b.ID, Rack: b.Rack})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// checkBrokers fails unless every id is a live broker; what names where
// the ids come from.
func checkBrokers(all map[int32]brokerState, ids []int32, what string) error {
	var known []int32
	for id := range all {
		known = append(known, id)
	}
	slices.Sort(known)
	for _, id := range ids {
		b, ok := all[id]
		if !ok {
			return fmt.Errorf("broker %d (in %s) is not in the cluster, whose brokers are %s; see `skein cluster describe`",
				id, what, formatNodes(known))
		}
		if b.Fenced {
			return fmt.Errorf("broker %d (in %s) is fenced (not heartbeating to the controller): start it, or leave it out",
				id, what)
		}
	}
	return nil
}

// topics describes the named topics (every topic, internal ones included,
// when names is empty) and fails on an unknown one.
func (e *reassignEnv) topics(names ...string) (kadm.TopicDetails, error) {
	topics, err := e.adm.ListTopicsWithInternal(e.ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	for _, name := range names {
		d, ok := topics[name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %s does not exist; see the topics with `skein topic list`", name)
		}
	}
	for _, name := range topics.Names() {
		if d := topics[name]; d.Err != nil {
			return nil, fmt.Errorf("describe topic %s: %w", name, d.Err)
		}
	}
	return topics, nil
}

// assignmentOf is the current replicas of every partition of topics.
func assignmentOf(topics kadm.TopicDetails) reassign.Assignment {
	a := reassign.Assignment{}
	for _, d := range topics {
		for _, p := range d.Partitions {
			a[reassign.TopicPartition{Topic: d.Topic, Partition: p.Partition}] = slices.Clone(p.Replicas)
		}
	}
	return a
}

// parseIDs reads "1,2,3" as broker ids; flag names the flag for errors.
func parseIDs(s, flag string) ([]int32, error) {
	var ids []int32
	for _, part := range splitList(s) {
		n, err := strconv.ParseInt(part, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--%s: %q is not a broker id; give ids like 101,102,104", flag, part)
		}
		ids = append(ids, int32(n))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--%s is empty; give broker ids like 101,102,104", flag)
	}
	if err := reassign.CheckBrokerList(ids); err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return ids, nil
}

func runReassignGenerate(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("skein reassign generate takes no arguments; name the topics with --topics %s", c.Args().First())
	}
	names := splitList(c.String("topics"))
	if len(names) == 0 {
		return errors.New("--topics is empty; give T[,T...]")
	}
	slices.Sort(names)
	names = slices.Compact(names)
	ids, err := parseIDs(c.String("brokers"), "brokers")
	if err != nil {
		return err
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	all, err := e.brokers(e.ctx)
	if err != nil {
		return err
	}
	if err := checkBrokers(all, ids, "--brokers"); err != nil {
		return err
	}
	topics, err := e.topics(names...)
	if err != nil {
		return err
	}
	var allowed []reassign.Broker
	for _, id := range ids {
		allowed = append(allowed, reassign.Broker{ID: id, Rack: all[id].Rack})
	}
	current := assignmentOf(topics)
	target, err := reassign.Generate(current, allowed, c.Bool("rack-aware"))
	if err != nil {
		return err
	}
	changes := reassign.Changes(current, target)
	errw := c.App.ErrWriter
	fmt.Fprintf(errw, "Current partition replica assignment:\n%s\n\n", onlyPartitions(current, changes).Plan().Format())
	fmt.Fprintln(errw, summary(current, changes))
	_, err = fmt.Fprintln(c.App.Writer, changes.Plan().Format())
	return err
}

// onlyPartitions returns a restricted to the partitions of keys.
func onlyPartitions(a, keys reassign.Assignment) reassign.Assignment {
	out := reassign.Assignment{}
	for tp := range keys {
		if r, ok := a[tp]; ok {
			out[tp] = r
		}
	}
	return out
}

// summary says how much a plan moves.
func summary(current, changes reassign.Assignment) string {
	if len(changes) == 0 {
		return "Nothing to move: every partition is already where it should be."
	}
	return fmt.Sprintf("%d partition(s) change: %s.", len(changes), moveCounts(current, changes))
}

// moveCounts says how many replicas and preferred leaders a plan moves.
func moveCounts(current, changes reassign.Assignment) string {
	leaders := 0
	for tp, r := range changes {
		if len(current[tp]) > 0 && current[tp][0] != r[0] {
			leaders++
		}
	}
	return fmt.Sprintf("%d replica(s) to copy, %d preferred leader(s) change", reassign.Moves(current, changes), leaders)
}

// readPlan reads and validates --plan.
func readPlan(c *cli.Context) (reassign.Plan, string, error) {
	path := c.String("plan")
	data, err := os.ReadFile(path)
	if err != nil {
		return reassign.Plan{}, path, fmt.Errorf("read the plan: %w", err)
	}
	p, err := reassign.ParsePlan(data)
	if err != nil {
		return reassign.Plan{}, path, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, path, nil
}

// checkPlan checks a plan against the cluster: its topics and partitions
// exist and, with live, its brokers are live. It returns the topics
// described.
func (e *reassignEnv) checkPlan(p reassign.Plan, path string, live bool) (kadm.TopicDetails, error) {
	var names []string
	for _, pp := range p.Partitions {
		names = append(names, pp.Topic)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	topics, err := e.topics(names...)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", path, err)
	}
	var all map[int32]brokerState
	if live {
		if all, err = e.brokers(e.ctx); err != nil {
			return nil, err
		}
	}
	for _, pp := range p.Partitions {
		if _, ok := topics[pp.Topic].Partitions[pp.Partition]; !ok {
			return nil, fmt.Errorf("plan %s: topic %s has no partition %d (it has %d)", path, pp.Topic, pp.Partition,
				len(topics[pp.Topic].Partitions))
		}
		if !live {
			continue
		}
		if err := checkBrokers(all, pp.Replicas, fmt.Sprintf("the replicas of %s in %s", pp.TP(), path)); err != nil {
			return nil, err
		}
	}
	return topics, nil
}

func runReassignExecute(c *cli.Context) error {
	p, path, err := readPlan(c)
	if err != nil {
		return err
	}
	rate, err := throttleFlag(c)
	if err != nil {
		return err
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	if err := e.requireAPI(kmsg.AlterPartitionAssignments); err != nil {
		return err
	}
	topics, err := e.checkPlan(p, path, true)
	if err != nil {
		return err
	}
	target := p.Assignment()
	current := onlyPartitions(assignmentOf(topics), target)
	return e.execute(topics, current, target, rate, path)
}

// throttleFlag reads --throttle (0 when not given).
func throttleFlag(c *cli.Context) (int64, error) {
	if c.String("throttle") == "" {
		return 0, nil
	}
	return reassign.ParseRate(c.String("throttle"))
}

// execute prints the current assignment, sets the throttle (rate > 0),
// starts the reassignment of target and, with --wait, waits for it and
// removes the throttle. planPath is the plan's file ("" when there is
// none), for the hints.
func (e *reassignEnv) execute(topics kadm.TopicDetails, current, target reassign.Assignment, rate int64, planPath string) error {
	c := e.c
	w := c.App.Writer
	fmt.Fprintf(w, "Current partition replica assignment (save it to roll back with `skein reassign execute --plan FILE`):\n%s\n\n",
		current.Plan().Format())
	th := reassign.ThrottleFor(current, target)
	if rate > 0 {
		if err := e.setThrottle(th, rate); err != nil {
			return err
		}
		fmt.Fprintf(w, "Throttle: %s (%d bytes/s) on brokers %s for topics %s.\n", reassign.FormatRate(rate), rate,
			formatNodes(th.Brokers), strings.Join(th.Topics(), ","))
	}
	var req kadm.AlterPartitionAssignmentsReq
	for tp, r := range target {
		req.Assign(tp.Topic, tp.Partition, r)
	}
	resps, err := e.adm.AlterPartitionAssignments(e.ctx, req)
	if err != nil {
		return reassignError("AlterPartitionReassignments", err)
	}
	failed := 0
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			if failed == 0 {
				fmt.Fprintln(c.App.ErrWriter, "Failed partitions:")
			}
			failed++
			fmt.Fprintf(c.App.ErrWriter, "  %s-%d: %v%s\n", r.Topic, r.Partition, r.Err, detail(r.ErrMessage))
		}
	}
	started := len(target) - failed
	fmt.Fprintf(w, "Started the reassignment of %d partition(s): %s.\n", started, moveCounts(current, target))
	if failed > 0 {
		return fmt.Errorf("%d of %d partition(s) could not be reassigned", failed, len(target))
	}
	if !c.Bool("wait") {
		fmt.Fprintln(w, executeHint(planPath, rate > 0))
		return nil
	}
	wt := &waiter{adm: e.adm, meter: newMeter(e.ctx, e.cl, e.adm, topics), w: c.App.ErrWriter,
		bar: showBar(c), interval: c.Duration("interval")}
	ctx, stop := signalContext(c)
	defer stop()
	if err := wt.wait(ctx, current, target); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	// Nothing is moving any more; a partition not on its planned replicas
	// was cancelled or moved by someone else.
	var names []string
	for tp := range target {
		names = append(names, tp.Topic)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// Brokers learn the outcome from the metadata log a moment after the
	// controller: a partition still shown on other replicas is looked at
	// again for a while before it counts as not as planned. Each look is a
	// fresh Metadata request (WithAuthorizedOps bypasses the client's
	// metadata cache, which may predate the move).
	settle := time.Now().Add(metadataSettle)
	var wrong int
	for {
		after, err := e.adm.ListTopicsWithInternal(kadm.WithAuthorizedOps(rctx), names...)
		if err != nil {
			return fmt.Errorf("describe topics: %w", err)
		}
		if _, _, wrong = verifyRows(target, assignmentOf(after), nil); wrong == 0 || time.Now().After(settle) {
			break
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("describe topics: %w", rctx.Err())
		case <-time.After(settlePoll(c.Duration("interval"))):
		}
	}
	if wrong > 0 {
		return fmt.Errorf("the reassignment ended with %d of %d partition(s) not on their planned replicas "+
			"(cancelled, or moved by another reassignment); the throttle, if any, stays: see `skein reassign verify`",
			wrong, len(target))
	}
	fmt.Fprintf(w, "Reassignment of %d partition(s) complete.\n", len(target))
	if rate > 0 {
		return e.removeThrottle(rctx, th.Topics(), w)
	}
	return nil
}

// executeHint tells how to follow a reassignment started without --wait.
func executeHint(planPath string, throttled bool) string {
	if planPath == "" {
		return "Follow it with `skein reassign list` (empty when it is done)."
	}
	hint := "Follow it with `skein reassign list`; `skein reassign verify --plan " + planPath + "` says when it is complete"
	if throttled {
		hint += " and removes the throttle"
	}
	return hint + "."
}

// setThrottle sets the rate on the brokers of th and the throttled
// replicas on its topics.
func (e *reassignEnv) setThrottle(th reassign.Throttle, rate int64) error {
	v := strconv.FormatInt(rate, 10)
	brokerConfigs := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: reassign.LeaderRateConfig, Value: &v},
		{Op: kadm.SetConfig, Name: reassign.FollowerRateConfig, Value: &v},
	}
	advice := " (does this cluster support replication throttles (KIP-73) yet? run without --throttle otherwise)"
	if len(th.Brokers) > 0 {
		resps, err := e.adm.AlterBrokerConfigs(e.ctx, brokerConfigs, th.Brokers...)
		if err == nil {
			err = alterConfigsError(resps)
		}
		if err != nil {
			return fmt.Errorf("set the replication throttle rate on brokers %s: %w%s", formatNodes(th.Brokers), err, advice)
		}
	}
	for _, topic := range th.Topics() {
		var cfgs []kadm.AlterConfig
		if l := th.Leader[topic]; l != "" {
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: reassign.LeaderReplicasConfig, Value: &l})
		}
		if f := th.Follower[topic]; f != "" {
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: reassign.FollowerReplicasConfig, Value: &f})
		}
		resps, err := e.adm.AlterTopicConfigs(e.ctx, cfgs, topic)
		if err == nil {
			err = alterConfigsError(resps)
		}
		if err != nil {
			return fmt.Errorf("set the throttled replicas of topic %s: %w%s", topic, err, advice)
		}
	}
	e.log.Info("replication throttle set", "rate", rate, "brokers", th.Brokers, "topics", th.Topics())
	return nil
}

func alterConfigsError(resps kadm.AlterConfigsResponses) error {
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("%s: %w%s", r.Name, r.Err, detail(r.ErrMessage))
		}
	}
	return nil
}

// removeThrottle deletes the throttled-replicas configs of topics and the
// throttle rates of every broker where they are set, as
// kafka-reassign-partitions --verify does, and says what it removed.
func (e *reassignEnv) removeThrottle(ctx context.Context, topics []string, w io.Writer) error {
	var removed []string
	if len(topics) > 0 {
		described, err := e.adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return fmt.Errorf("describe the configs of %s: %w", strings.Join(topics, ","), err)
		}
		for _, rc := range described {
			if rc.Err != nil {
				continue
			}
			var del []kadm.AlterConfig
			for _, cfg := range rc.Configs {
				if (cfg.Key == reassign.LeaderReplicasConfig || cfg.Key == reassign.FollowerReplicasConfig) &&
					cfg.Source == kmsg.ConfigSourceDynamicTopicConfig {
					del = append(del, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: cfg.Key})
				}
			}
			if len(del) == 0 {
				continue
			}
			resps, err := e.adm.AlterTopicConfigs(ctx, del, rc.Name)
			if err == nil {
				err = alterConfigsError(resps)
			}
			if err != nil {
				return fmt.Errorf("remove the throttled replicas of topic %s: %w", rc.Name, err)
			}
			removed = append(removed, "topic "+rc.Name)
		}
	}
	all, err := e.brokers(ctx)
	if err != nil {
		return err
	}
	var ids []int32
	for id, b := range all {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		described, err := e.adm.DescribeBrokerConfigs(ctx, ids...)
		if err != nil {
			return fmt.Errorf("describe the broker configs: %w", err)
		}
		for _, rc := range described {
			if rc.Err != nil {
				continue
			}
			var del []kadm.AlterConfig
			for _, cfg := range rc.Configs {
				if (cfg.Key == reassign.LeaderRateConfig || cfg.Key == reassign.FollowerRateConfig) &&
					cfg.Source == kmsg.ConfigSourceDynamicBrokerConfig {
					del = append(del, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: cfg.Key})
				}
			}
			if len(del) == 0 {
				continue
			}
			id, _ := strconv.ParseInt(rc.Name, 10, 32)
			resps, err := e.adm.AlterBrokerConfigs(ctx, del, int32(id))
			if err == nil {
				err = alterConfigsError(resps)
			}
			if err != nil {
				return fmt.Errorf("remove the throttle rate of broker %s: %w", rc.Name, err)
			}
			removed = append(removed, "broker "+rc.Name)
		}
	}
	if len(removed) > 0 {
		fmt.Fprintf(w, "Throttle removed (%s).\n", strings.Join(removed, ", "))
		e.log.Info("replication throttle removed", "from", removed)
	}
	return nil
}

func runReassignVerify(c *cli.Context) error {
	p, path, err := readPlan(c)
	if err != nil {
		return err
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	if err := e.requireAPI(kmsg.ListPartitionReassignments); err != nil {
		return err
	}
	topics, err := e.checkPlan(p, path, false)
	if err != nil {
		return err
	}
	target := p.Assignment()
	set := kadm.TopicsSet{}
	for tp := range target {
		set.Add(tp.Topic, tp.Partition)
	}
	ongoing, err := e.adm.ListPartitionReassignments(e.ctx, set)
	if err != nil {
		return reassignError("ListPartitionReassignments", err)
	}
	current := assignmentOf(topics)
	rows, moving, wrong := verifyRows(target, current, ongoing)
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tTARGET\tCURRENT\tSTATE")
	for _, r := range rows {
		fmt.Fprintln(t, r)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	switch {
	case moving > 0:
		return fmt.Errorf("%d of %d partition(s) are still being reassigned; run verify again later", moving, len(target))
	case wrong > 0:
		return fmt.Errorf("%d of %d partition(s) are not on their planned replicas and not moving (cancelled, or "+
			"moved by another plan): execute the plan again to move them", wrong, len(target))
	}
	fmt.Fprintf(c.App.Writer, "Reassignment of %d partition(s) is complete.\n", len(target))
	if c.Bool("preserve-throttles") {
		return nil
	}
	var names []string
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	return e.removeThrottle(e.ctx, names, c.App.Writer)
}

// verifyRows compares each planned partition with the cluster: moving,
// complete (replicas as planned, order included) or not as planned.
func verifyRows(target, current reassign.Assignment, ongoing kadm.ListPartitionReassignmentsResponses) (rows []string, moving, wrong int) {
	for _, tp := range target.Sorted() {
		state := "complete"
		if r, ok := lookupReassignment(ongoing, tp); ok {
			state = fmt.Sprintf("in progress (adding %s, removing %s)", orNone(r.AddingReplicas), orNone(r.RemovingReplicas))
			moving++
		} else if !slices.Equal(current[tp], target[tp]) {
			state = "NOT AS PLANNED"
			wrong++
		}
		rows = append(rows, fmt.Sprintf("%s\t%d\t%s\t%s\t%s", tp.Topic, tp.Partition,
			formatNodes(target[tp]), formatNodes(current[tp]), state))
	}
	return rows, moving, wrong
}

func orNone(ids []int32) string {
	if len(ids) == 0 {
		return "none"
	}
	return formatNodes(ids)
}

// listAll sends ListPartitionReassignments for every partition (null
// topics), which kadm cannot express.
func (e *reassignEnv) listAll() (kadm.ListPartitionReassignmentsResponses, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = int32(min(e.c.Duration("timeout"), time.Minute).Milliseconds())
	resp, err := req.RequestWith(e.ctx, e.cl)
	if err != nil {
		return nil, reassignError("ListPartitionReassignments", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, reassignError("ListPartitionReassignments", fmt.Errorf("%w%s", err, detail(deref(resp.ErrorMessage))))
	}
	out := kadm.ListPartitionReassignmentsResponses{}
	for _, t := range resp.Topics {
		ps := map[int32]kadm.ListPartitionReassignmentsResponse{}
		for _, p := range t.Partitions {
			ps[p.Partition] = kadm.ListPartitionReassignmentsResponse{Topic: t.Topic, Partition: p.Partition,
				Replicas: p.Replicas, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas}
		}
		out[t.Topic] = ps
	}
	return out, nil
}

func runReassignList(c *cli.Context) error {
	if c.NArg() > 0 {
		return errors.New("skein reassign list takes no arguments")
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	if err := e.requireAPI(kmsg.ListPartitionReassignments); err != nil {
		return err
	}
	ongoing, err := e.listAll()
	if err != nil {
		return err
	}
	var moves []moveProgress
	for _, r := range ongoing.Sorted() {
		moves = append(moves, moveProgress{TP: reassign.TopicPartition{Topic: r.Topic, Partition: r.Partition},
			Adding: r.AddingReplicas})
	}
	var m *meter
	if len(moves) > 0 {
		topics, err := e.topics(topicNames(ongoing)...)
		if err != nil {
			return err
		}
		m = newMeter(e.ctx, e.cl, e.adm, topics)
		m.measure(e.ctx, moves)
	}
	if err := writeReassignmentList(c.App.Writer, ongoing, moves, m); err != nil {
		return err
	}
	if len(moves) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "No partition is being reassigned.")
	} else if note := m.note(); note != "" {
		fmt.Fprintln(c.App.ErrWriter, "Note: "+note+".")
	}
	return nil
}

// topicNames are the topics of rs, sorted.
func topicNames(rs kadm.ListPartitionReassignmentsResponses) []string {
	var names []string
	for name := range rs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// writeReassignmentList writes one row per moving partition.
func writeReassignmentList(w io.Writer, ongoing kadm.ListPartitionReassignmentsResponses, moves []moveProgress, m *meter) error {
	t := newTable(w)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING\tLEFT")
	for i, r := range ongoing.Sorted() {
		left := "-"
		if i < len(moves) && m != nil && moves[i].Err == nil {
			left = m.format(moves[i].Left())
		}
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Topic, r.Partition, formatNodes(r.Replicas),
			orNone(r.AddingReplicas), orNone(r.RemovingReplicas), left)
	}
	return t.Flush()
}

func runReassignCancel(c *cli.Context) error {
	if c.Bool("all") == (c.String("plan") != "") {
		return errors.New("give exactly one of --plan FILE and --all")
	}
	var planned reassign.Assignment
	if c.String("plan") != "" {
		p, _, err := readPlan(c)
		if err != nil {
			return err
		}
		planned = p.Assignment()
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	if err := e.requireAPI(kmsg.AlterPartitionAssignments); err != nil {
		return err
	}
	var req kadm.AlterPartitionAssignmentsReq
	if planned != nil {
		for tp := range planned {
			req.CancelAssign(tp.Topic, tp.Partition)
		}
	} else {
		ongoing, err := e.listAll()
		if err != nil {
			return err
		}
		ongoing.Each(func(r kadm.ListPartitionReassignmentsResponse) { req.CancelAssign(r.Topic, r.Partition) })
	}
	if len(req) == 0 {
		fmt.Fprintln(c.App.Writer, "No partition is being reassigned: nothing to cancel.")
		return nil
	}
	resps, err := e.adm.AlterPartitionAssignments(e.ctx, req)
	if err != nil {
		return reassignError("AlterPartitionReassignments", err)
	}
	t := newTable(c.App.Writer)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tRESULT")
	failed := 0
	var topics []string
	for _, r := range resps.Sorted() {
		result := "cancelled"
		switch {
		case errors.Is(r.Err, kerr.NoReassignmentInProgress):
			result = "not moving"
		case r.Err != nil:
			result = "ERROR: " + r.Err.Error() + detail(r.ErrMessage)
			failed++
		}
		topics = append(topics, r.Topic)
		fmt.Fprintf(t, "%s\t%d\t%s\n", r.Topic, r.Partition, result)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d partition(s) could not be cancelled", failed)
	}
	if c.Bool("preserve-throttles") {
		return nil
	}
	slices.Sort(topics)
	return e.removeThrottle(e.ctx, slices.Compact(topics), c.App.Writer)
}

func runDecommission(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: skein broker decommission ID (the id of the broker to empty)")
	}
	n, err := strconv.ParseInt(c.Args().First(), 10, 32)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a broker id; usage: skein broker decommission ID", c.Args().First())
	}
	id := int32(n)
	if _, err := throttleFlag(c); err != nil {
		return err
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	all, err := e.brokers(e.ctx)
	if err != nil {
		return err
	}
	topics, err := e.topics()
	if err != nil {
		return err
	}
	current := assignmentOf(topics)
	if _, ok := all[id]; !ok {
		holds := false
		for _, r := range current {
			holds = holds || slices.Contains(r, id)
		}
		if !holds {
			return fmt.Errorf("broker %d is not in the cluster and holds no replica; see `skein cluster describe`", id)
		}
	}
	changes, err := reassign.Decommission(current, liveBrokers(all), id)
	if err != nil {
		return fmt.Errorf("decommission broker %d: %w", id, err)
	}
	if len(changes) == 0 {
		fmt.Fprintf(c.App.Writer, "Broker %d holds no replica: nothing to move.\n", id)
		return nil
	}
	return e.runPlan(topics, current, changes)
}

func runRebalance(c *cli.Context) error {
	if c.NArg() > 0 {
		return errors.New("skein cluster rebalance takes no arguments")
	}
	if _, err := throttleFlag(c); err != nil {
		return err
	}
	e, done, err := newReassignEnv(c)
	if err != nil {
		return err
	}
	defer done()
	all, err := e.brokers(e.ctx)
	if err != nil {
		return err
	}
	live := liveBrokers(all)
	topics, err := e.topics()
	if err != nil {
		return err
	}
	current := assignmentOf(topics)
	racks := 0
	for _, b := range live {
		if b.Rack != "" {
			racks++
		}
	}
	if racks > 0 && racks < len(live) {
		fmt.Fprintf(c.App.ErrWriter, "Note: only %d of %d live brokers have a rack: placement ignores racks.\n", racks, len(live))
	}
	changes, err := reassign.Rebalance(current, live)
	if err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	if len(changes) == 0 {
		fmt.Fprintln(c.App.Writer, "The cluster is balanced: nothing to move.")
		return nil
	}
	return e.runPlan(topics, current, changes)
}

// runPlan is the end of decommission and rebalance: with --dry-run print
// the plan as a table, else write --plan-out and execute it.
func (e *reassignEnv) runPlan(topics kadm.TopicDetails, current, changes reassign.Assignment) error {
	c := e.c
	rate, err := throttleFlag(c)
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		if err := writePlanTable(c.App.Writer, current, changes); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.App.Writer, summary(current, changes))
		return err
	}
	if rate > 0 && !c.Bool("wait") && c.String("plan-out") == "" {
		return errors.New("--throttle without --wait needs --plan-out FILE: the throttle stays until " +
			"`skein reassign verify --plan FILE` sees the reassignment complete and removes it")
	}
	if err := e.requireAPI(kmsg.AlterPartitionAssignments); err != nil {
		return err
	}
	if path := c.String("plan-out"); path != "" {
		if err := os.WriteFile(path, []byte(changes.Plan().Format()+"\n"), 0o644); err != nil {
			return fmt.Errorf("--plan-out: %w", err)
		}
		fmt.Fprintf(c.App.Writer, "Plan written to %s.\n", path)
	}
	return e.execute(topics, onlyPartitions(current, changes), changes, rate, c.String("plan-out"))
}

// writePlanTable prints a plan as a table: topic, partition, current and
// target replicas.
func writePlanTable(w io.Writer, current, changes reassign.Assignment) error {
	t := newTable(w)
	fmt.Fprintln(t, "TOPIC\tPARTITION\tCURRENT\tTARGET")
	for _, tp := range changes.Sorted() {
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\n", tp.Topic, tp.Partition, formatNodes(current[tp]), formatNodes(changes[tp]))
	}
	return t.Flush()
}
