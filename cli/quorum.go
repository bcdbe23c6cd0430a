package cli

// The quorum commands: `skein controller add-voter`, `skein controller
// remove-voter` (AddRaftVoter / RemoveRaftVoter sent to the controllers) and
// `skein cluster describe` (DescribeQuorum and DescribeCluster).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

const defaultBootstrapController = "127.0.0.1:9093"

func bootstrapControllerFlag(value string) cli.Flag {
	return stringFlag("bootstrap-controller", "Kafka listener(s) of the controllers, host:port[,host:port...]", value)
}

func addVoterCommand() *cli.Command {
	return &cli.Command{
		Name:  "add-voter",
		Usage: "add a controller to the quorum (it joins as a non-voter, catches up, then becomes a voter)",
		Description: "Start the new controller first, with an empty --data-dir and no --initial-controllers\n" +
			"   (it then waits to be added instead of bootstrapping a quorum of its own), then:\n\n" +
			"   skein controller add-voter --node-id 4 --raft-address 127.0.0.1:9196 --bootstrap-controller 127.0.0.1:9093",
		Flags: withCommon(
			requiredIntFlag("node-id", "node id of the controller to add"),
			requiredStringFlag("raft-address", "its Raft transport address, host:port"),
			stringFlag("listener", "its Kafka listener, host:port (optional: it publishes it itself)", ""),
			bootstrapControllerFlag(defaultBootstrapController),
			durationFlag("timeout", "give up after this long (the new controller must catch up within it)", 30*time.Second),
		),
		Action: runAddVoter,
	}
}

func removeVoterCommand() *cli.Command {
	return &cli.Command{
		Name:  "remove-voter",
		Usage: "remove a controller from the quorum",
		Description: "Example:\n" +
			"   skein controller remove-voter --node-id 4 --bootstrap-controller 127.0.0.1:9093\n\n" +
			"   Stop the removed controller afterwards.",
		Flags: withCommon(
			requiredIntFlag("node-id", "node id of the controller to remove"),
			bootstrapControllerFlag(defaultBootstrapController),
			durationFlag("timeout", "give up after this long", 30*time.Second),
		),
		Action: runRemoveVoter,
	}
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "inspect the cluster (describe) and even out its replicas (rebalance)",
		Subcommands: []*cli.Command{{
			Name:  "describe",
			Usage: "print the controller quorum (voters, leader, term, lag) and the brokers (address, rack, fenced, epoch)",
			Description: "The quorum comes from DescribeQuorum (sent to --bootstrap-controller when given, else through\n" +
				"   a broker), the brokers from DescribeCluster on a broker; broker epochs need --bootstrap-controller.",
			Flags: withCommon(
				bootstrapServerFlag(),
				bootstrapControllerFlag(""),
				durationFlag("timeout", "give up on the requests after this long", 30*time.Second),
			),
			Action: runClusterDescribe,
		}, rebalanceCommand()},
	}
}

func runAddVoter(c *cli.Context) error {
	id, err := int32Value(c, "node-id")
	if err != nil {
		return err
	}
	raftHost, raftPort, err := splitHostPort(c.String("raft-address"))
	if err != nil {
		return fmt.Errorf("--raft-address: %w", err)
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.VoterID = id
	timeout := c.Duration("timeout")
	req.TimeoutMillis = int32(max(timeout-2*time.Second, time.Second).Milliseconds())
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "RAFT", raftHost, raftPort
	req.Listeners = append(req.Listeners, l)
	if addr := c.String("listener"); addr != "" {
		host, port, err := splitHostPort(addr)
		if err != nil {
			return fmt.Errorf("--listener: %w", err)
		}
		l := kmsg.NewAddRaftVoterRequestListener()
		l.Name, l.Host, l.Port = "CONTROLLER", host, port
		req.Listeners = append(req.Listeners, l)
	}
	kresp, err := controllerCall(c, req)
	if err != nil {
		return fmt.Errorf("add voter %d: %w", id, err)
	}
	resp := kresp.(*kmsg.AddRaftVoterResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("add voter %d: %w%s", id, err, detail(deref(resp.ErrorMessage)))
	}
	fmt.Fprintf(c.App.Writer, "Controller %d (raft %s) is now a voter.\n", id, c.String("raft-address"))
	return nil
}

func runRemoveVoter(c *cli.Context) error {
	id, err := int32Value(c, "node-id")
	if err != nil {
		return err
	}
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID = id
	kresp, err := controllerCall(c, req)
	if err != nil {
		return fmt.Errorf("remove voter %d: %w", id, err)
	}
	resp := kresp.(*kmsg.RemoveRaftVoterResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("remove voter %d: %w%s", id, err, detail(deref(resp.ErrorMessage)))
	}
	fmt.Fprintf(c.App.Writer, "Controller %d was removed from the quorum; stop it now.\n", id)
	return nil
}

// controllerCall sends req to the controllers of --bootstrap-controller,
// bounded by --timeout: any of them answers (followers forward to the
// active controller); on a connection error or NOT_CONTROLLER it tries the
// next one, with backoff.
func controllerCall(c *cli.Context, req kmsg.Request) (kmsg.Response, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	addrs := splitList(c.String("bootstrap-controller"))
	if len(addrs) == 0 {
		return nil, errors.New("--bootstrap-controller is empty: give host:port[,host:port...]")
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	if err := checkReachable(ctx, addrs); err != nil {
		return nil, fmt.Errorf("%w (the controllers' Kafka listeners, --bootstrap-controller)", err)
	}
	sec, err := clientSecurityOpts(c, log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ClientID("skein-cli"),
		kgo.WithLogger(kgoLogger{log: log.Named("client")}), kgo.DialTimeout(2 * time.Second)}, sec...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return requestControllers(ctx, cl, req)
}

// requestControllers is controllerCall's retry loop over cl's seeds.
func requestControllers(ctx context.Context, cl *kgo.Client, req kmsg.Request) (kmsg.Response, error) {
	wait := 100 * time.Millisecond
	var last error
	for attempt := 0; ; attempt++ {
		seeds := cl.SeedBrokers()
		resp, err := seeds[attempt%len(seeds)].Request(ctx, req)
		if err == nil && topErrorCode(resp) != kerr.NotController.Code {
			return resp, nil
		}
		if err == nil {
			err = kerr.NotController
		}
		last = err
		if attempt%len(seeds) != len(seeds)-1 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no controller answered: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func topErrorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.AddRaftVoterResponse:
		return r.ErrorCode
	case *kmsg.RemoveRaftVoterResponse:
		return r.ErrorCode
	case *kmsg.DescribeQuorumResponse:
		return r.ErrorCode
	}
	return 0
}

func splitHostPort(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || host == "" {
		return "", 0, fmt.Errorf("%q: want host:port", addr)
	}
	return host, uint16(p), nil
}

func describeQuorumRequest() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metalog.Topic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{p}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{t}
	return req
}

func runClusterDescribe(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()

	var quorum *kmsg.DescribeQuorumResponse
	var img *image.Image
	if c.String("bootstrap-controller") != "" {
		kresp, err := controllerCall(c, describeQuorumRequest())
		if err != nil {
			return fmt.Errorf("describe quorum: %w", err)
		}
		quorum = kresp.(*kmsg.DescribeQuorumResponse)
		if img, err = controllerImage(c); err != nil {
			log.Warn("could not read the metadata image from the controllers; broker epochs are not shown", "error", err)
		}
	} else {
		quorum, err = describeQuorumRequest().RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("describe quorum through %s: %w", c.String("bootstrap-server"), err)
		}
	}
	if err := kerr.ErrorForCode(quorum.ErrorCode); err != nil {
		return fmt.Errorf("describe quorum: %w%s", err, detail(deref(quorum.ErrorMessage)))
	}

	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	dreq.EndpointType = 1
	cluster, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	if err := kerr.ErrorForCode(cluster.ErrorCode); err != nil {
		return fmt.Errorf("describe cluster: %w%s", err, detail(deref(cluster.ErrorMessage)))
	}
	return writeClusterDescription(c.App.Writer, quorum, cluster, img, time.Now())
}

// controllerImage reads the metadata image from the controllers (a
// metadata Fetch from offset 0, as a starting broker does: answered with a
// snapshot, decoded by metalog like the brokers' deltas).
func controllerImage(c *cli.Context) (*image.Image, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 256 << 20
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = metalog.Topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.PartitionMaxBytes = req.MaxBytes
	t.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{t}
	kresp, err := controllerCall(c, req)
	if err != nil {
		return nil, err
	}
	for _, rt := range kresp.(*kmsg.FetchResponse).Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, err
			}
			ups, err := metalog.DecodeUpdates(rp.RecordBatches)
			if err != nil {
				return nil, err
			}
			if len(ups) == 0 {
				return nil, errors.New("no metadata in the answer")
			}
			return metalog.ApplyUpdates(image.New(), ups)
		}
	}
	return nil, errors.New("no metadata in the answer")
}

// writeClusterDescription prints the quorum table, then the brokers table.
func writeClusterDescription(w io.Writer, q *kmsg.DescribeQuorumResponse, cluster *kmsg.DescribeClusterResponse,
	img *image.Image, now time.Time) error {
	raftAddr, listener := map[int32]string{}, map[int32]string{}
	for _, n := range q.Nodes {
		for _, l := range n.Listeners {
			addr := net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
			if strings.EqualFold(l.Name, "RAFT") {
				raftAddr[n.NodeID] = addr
			} else {
				listener[n.NodeID] = addr
			}
		}
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, t := range q.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("describe quorum %s-%d: %w", t.Topic, p.Partition, err)
			}
			fmt.Fprintf(w, "Quorum: leader %d, term %d, high watermark %d, %d voters, %d observers\n",
				p.LeaderID, p.LeaderEpoch, p.HighWatermark, len(p.CurrentVoters), len(p.Observers))
			tw := newTable(w)
			fmt.Fprintln(tw, "NODE\tRAFT-ADDRESS\tLISTENER\tROLE\tLOG-END-OFFSET\tLAG\tLAST-CONTACT")
			row := func(rs kmsg.DescribeQuorumResponseTopicPartitionReplicaState, role string) {
				lag, contact := "-", "-"
				if rs.LogEndOffset >= 0 {
					lag = strconv.FormatInt(max(p.HighWatermark-rs.LogEndOffset, 0), 10)
				}
				if rs.ReplicaID == p.LeaderID {
					role, contact = "leader", "-"
				} else if rs.LastFetchTimestamp >= 0 {
					contact = now.Sub(time.UnixMilli(rs.LastFetchTimestamp)).Round(time.Millisecond).String() + " ago"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", rs.ReplicaID, orDash(raftAddr[rs.ReplicaID]),
					orDash(listener[rs.ReplicaID]), role, rs.LogEndOffset, lag, contact)
			}
			for _, rs := range p.CurrentVoters {
				row(rs, "follower")
			}
			for _, rs := range p.Observers {
				row(rs, "observer")
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(w, "\nBrokers: cluster id %s\n", orDash(cluster.ClusterID))
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tADDRESS\tRACK\tFENCED\tEPOCH")
	brokers := append([]kmsg.DescribeClusterResponseBroker(nil), cluster.Brokers...)
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].NodeID < brokers[j].NodeID })
	for _, b := range brokers {
		rack, epoch := "-", "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		if img != nil {
			if ib := img.Brokers[b.NodeID]; ib != nil {
				epoch = strconv.FormatInt(ib.Epoch, 10)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
			rack, b.IsFenced, epoch)
	}
	return tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
