package cli

// `skein top`: the cluster overview of `skein cluster describe` and `skein
// topic describe` in one live view, redrawn every --interval. Each frame
// is read from the brokers (kadm Metadata, DescribeCluster with the fenced
// brokers, DescribeQuorum forwarded to the controllers) and drawn by
// writeOverview, a pure function of what was read.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/internal/console"
)

// ANSI sequences of the terminal view.
const (
	ansiClear  = "\x1b[H\x1b[2J" // cursor home, clear the screen
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of the cluster: brokers, controller quorum, topics (under-replicated and offline partitions)",
		Description: "Redraws the overview every --interval until Ctrl-C: brokers (address, rack, alive or fenced,\n" +
			"   leaders and replicas hosted), the controller quorum (leader, voters, lag, last contact) and one\n" +
			"   row per topic (partitions, replication factor, under-replicated and offline partitions).\n" +
			"   On a terminal the screen is cleared between frames and problems are coloured (NO_COLOR turns\n" +
			"   colour off); otherwise each frame is printed after the last. --once prints one frame and exits\n" +
			"   (non-zero when the cluster could not be read), for scripts:\n" +
			"   skein top --once --bootstrap-server 127.0.0.1:9092",
		Flags: withCommon(
			bootstrapServerFlag(),
			durationFlag("interval", "time between frames", 2*time.Second),
			boolFlag("once", "print one frame and exit", false),
			durationFlag("timeout", "give up on a frame's requests after this long", 10*time.Second),
		),
		Action: runTop,
	}
}

func runTop(c *cli.Context) error {
	interval := c.Duration("interval")
	if interval <= 0 {
		return fmt.Errorf("--interval %v: want a positive duration", interval)
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log, kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	out := c.App.Writer
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = isTerminal(f)
	}
	color := tty && os.Getenv("NO_COLOR") == ""

	frame := func(parent context.Context) (*overview, error) {
		ctx, cancel := context.WithTimeout(parent, c.Duration("timeout"))
		defer cancel()
		return readOverview(ctx, cl)
	}
	if c.Bool("once") {
		ov, err := frame(c.Context)
		if err != nil {
			return err
		}
		return writeOverview(out, ov, color)
	}

	ctx, stop := signalContext(c)
	defer stop()
	for {
		var buf bytes.Buffer
		if tty {
			buf.WriteString(ansiClear)
		}
		ov, err := frame(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			fmt.Fprintf(&buf, "skein top  %s  could not read the cluster: %v\n", time.Now().Format(time.TimeOnly), err)
		default:
			_ = writeOverview(&buf, ov, color)
		}
		if !tty {
			buf.WriteString("\n")
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// overview is one frame: what the brokers said, as of At.
type overview struct {
	At        time.Time
	ClusterID string
	Brokers   []brokerRow
	Quorum    *console.Quorum // nil when DescribeQuorum failed (QuorumErr)
	QuorumErr error
	Topics    []topicRow
}

// brokerRow is a broker: registered (DescribeCluster) or only named as a
// replica (Registered false).
type brokerRow struct {
	ID         int32
	Address    string
	Rack       string
	Registered bool
	Fenced     bool
	Leaders    int
	Replicas   int
}

// Alive is true for a registered, unfenced broker.
func (b brokerRow) Alive() bool { return b.Registered && !b.Fenced }

// topicRow is a topic's partitions summed up.
type topicRow struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	UnderReplicated   int // ISR smaller than the replica set
	Offline           int // no leader
	Err               error
}

// readOverview reads one frame through cl.
func readOverview(ctx context.Context, cl *kgo.Client) (*overview, error) {
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	ov := &overview{At: time.Now(), ClusterID: md.Cluster}

	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	cluster, err := dreq.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(cluster.ErrorCode)
	}
	brokers := map[int32]*brokerRow{}
	if err != nil {
		// Without DescribeCluster, Metadata's brokers: the unfenced ones.
		for _, b := range md.Brokers {
			brokers[b.NodeID] = &brokerRow{ID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
				Rack: deref(b.Rack), Registered: true}
		}
	} else {
		for _, b := range cluster.Brokers {
			brokers[b.NodeID] = &brokerRow{ID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
				Rack: deref(b.Rack), Registered: true, Fenced: b.IsFenced}
		}
	}
	broker := func(id int32) *brokerRow {
		b := brokers[id]
		if b == nil {
			b = &brokerRow{ID: id}
			brokers[id] = b
		}
		return b
	}

	for _, name := range md.Topics.Names() {
		d := md.Topics[name]
		row := topicRow{Name: name, Partitions: len(d.Partitions), ReplicationFactor: replicationFactor(d), Err: d.Err}
		for _, p := range d.Partitions {
			if p.Leader >= 0 {
				broker(p.Leader).Leaders++
			} else {
				row.Offline++
			}
			for _, r := range p.Replicas {
				broker(r).Replicas++
			}
			if len(p.ISR) < len(p.Replicas) {
				row.UnderReplicated++
			}
		}
		ov.Topics = append(ov.Topics, row)
	}
	for _, b := range brokers {
		ov.Brokers = append(ov.Brokers, *b)
	}
	slices.SortFunc(ov.Brokers, func(a, b brokerRow) int { return int(a.ID) - int(b.ID) })

	ov.Quorum, ov.QuorumErr = readQuorum(ctx, cl)
	return ov, nil
}

// readQuorum asks DescribeQuorum through a broker (forwarded to the
// controllers).
func readQuorum(ctx context.Context, cl *kgo.Client) (*console.Quorum, error) {
	resp, err := describeQuorumRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	return console.QuorumFromResponse(resp, time.Now())
}

// coloredTable collects the rows of one table and which of them to
// colour; tabwriter counts escape sequences as text, so rows are coloured
// after alignment.
type coloredTable struct {
	buf    bytes.Buffer
	colors []string // per line, header included; "" for none
}

func (t *coloredTable) row(color string, format string, args ...any) {
	fmt.Fprintf(&t.buf, format, args...)
	t.colors = append(t.colors, color)
}

// writeTo aligns the rows and writes them, coloured when color is set.
func (t *coloredTable) writeTo(w io.Writer, color bool) error {
	var aligned bytes.Buffer
	tw := newTable(&aligned)
	if _, err := tw.Write(t.buf.Bytes()); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(aligned.String(), "\n")
	var out strings.Builder
	for i, line := range lines {
		if line == "" {
			continue
		}
		if color && i < len(t.colors) && t.colors[i] != "" {
			out.WriteString(t.colors[i] + strings.TrimRight(line, "\n") + ansiReset + "\n")
		} else {
			out.WriteString(line)
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// writeOverview draws one frame. With color, fenced or missing brokers and
// offline topics are red, under-replicated topics yellow.
func writeOverview(w io.Writer, ov *overview, color bool) error {
	title := fmt.Sprintf("skein top  %s  cluster %s", ov.At.Format("2006-01-02 15:04:05"), orDash(ov.ClusterID))
	if color {
		title = ansiBold + title + ansiReset
	}
	fmt.Fprintf(w, "%s\n\n", title)

	alive := 0
	for _, b := range ov.Brokers {
		if b.Alive() {
			alive++
		}
	}
	fmt.Fprintf(w, "Brokers: %d, %d alive\n", len(ov.Brokers), alive)
	bt := &coloredTable{}
	bt.row("", "ID\tADDRESS\tRACK\tSTATUS\tLEADERS\tREPLICAS\n")
	for _, b := range ov.Brokers {
		status, c := "alive", ""
		switch {
		case !b.Registered:
			status, c = "unknown", ansiRed
		case b.Fenced:
			status, c = "fenced", ansiRed
		}
		bt.row(c, "%d\t%s\t%s\t%s\t%d\t%d\n", b.ID, orDash(b.Address), orDash(b.Rack), status, b.Leaders, b.Replicas)
	}
	if err := bt.writeTo(w, color); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if q := ov.Quorum; q == nil {
		fmt.Fprintf(w, "Controller quorum: unknown (%v)\n", ov.QuorumErr)
	} else {
		fmt.Fprintf(w, "Controller quorum: leader %d, term %d, high watermark %d, %d voters\n",
			q.LeaderID, q.Term, q.HighWatermark, len(q.Voters))
		qt := &coloredTable{}
		qt.row("", "NODE\tROLE\tLOG-END-OFFSET\tLAG\tLAST-CONTACT\n")
		for _, v := range append(slices.Clone(q.Voters), q.Observers...) {
			lag, contact := "-", "-"
			if v.Lag >= 0 {
				lag = strconv.FormatInt(v.Lag, 10)
			}
			if v.LastContact > 0 {
				contact = v.LastContact.Round(time.Millisecond).String() + " ago"
			}
			qt.row("", "%d\t%s\t%d\t%s\t%s\n", v.ID, v.Role, v.LogEndOffset, lag, contact)
		}
		if err := qt.writeTo(w, color); err != nil {
			return err
		}
	}

	var partitions, urp, offline int
	for _, t := range ov.Topics {
		partitions += t.Partitions
		urp += t.UnderReplicated
		offline += t.Offline
	}
	fmt.Fprintf(w, "\nTopics: %d, partitions %d, under-replicated %d, offline %d\n", len(ov.Topics), partitions, urp, offline)
	tt := &coloredTable{}
	tt.row("", "TOPIC\tPARTITIONS\tRF\tUNDER-REPLICATED\tOFFLINE\n")
	for _, t := range ov.Topics {
		c := ""
		switch {
		case t.Offline > 0 || t.Err != nil:
			c = ansiRed
		case t.UnderReplicated > 0:
			c = ansiYellow
		}
		line := fmt.Sprintf("%s\t%d\t%d\t%d\t%d", t.Name, t.Partitions, t.ReplicationFactor, t.UnderReplicated, t.Offline)
		if t.Err != nil {
			line += "\t" + t.Err.Error()
		}
		tt.row(c, "%s\n", line)
	}
	return tt.writeTo(w, color)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
