package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

// healthCommand checks one node, for container health checks and scripts:
// it needs no shell, only the binary.
func healthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "exit 0 when the node at --bootstrap-server is ready: a broker registered and unfenced, a controller in a quorum with a leader",
		Description: "Asks the one node at --bootstrap-server (a broker's or a controller's Kafka listener) and nothing else:\n" +
			"   ApiVersions tells a broker (it serves Metadata) from a controller. A broker is ready when its\n" +
			"   own Metadata lists it (registered with the controllers and unfenced); a controller when\n" +
			"   DescribeQuorum through it names a leader (the quorum has elected one and this controller\n" +
			"   reaches it). Prints one line and exits 0 when ready, 1 otherwise. For HEALTHCHECKs:\n" +
			"   skein health --bootstrap-server 127.0.0.1:9092",
		Flags: withCommon(
			stringFlag("bootstrap-server", "the node to check, host:port (a broker's or a controller's Kafka listener)", defaultBootstrapServer),
			durationFlag("timeout", "give up after this long", 5*time.Second),
		),
		Action: runHealth,
	}
}

func runHealth(c *cli.Context) error {
	addrs := splitList(c.String("bootstrap-server"))
	if len(addrs) != 1 {
		return fmt.Errorf("--bootstrap-server: give one node, host:port (got %q)", c.String("bootstrap-server"))
	}
	addr := addrs[0]
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	sec, err := clientSecurityOpts(c, log)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("skein-health"), kgo.RequestRetries(0),
		kgo.DialTimeout(c.Duration("timeout"))}, sec...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	msg, err := checkNode(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	fmt.Fprintf(c.App.Writer, "%s: %s\n", addr, msg)
	return nil
}

// checkNode asks the node b whether it is ready (see healthCommand).
func checkNode(ctx context.Context, b *kgo.Broker) (string, error) {
	kresp, err := b.Request(ctx, kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		return "", fmt.Errorf("not answering: %w", err)
	}
	av := kresp.(*kmsg.ApiVersionsResponse)
	if err := kerr.ErrorForCode(av.ErrorCode); err != nil {
		return "", fmt.Errorf("ApiVersions: %w", err)
	}
	serves := func(key int16) bool {
		return slices.ContainsFunc(av.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == key })
	}
	switch {
	case serves(kmsg.Metadata.Int16()):
		return checkBroker(ctx, b)
	case serves(kmsg.DescribeQuorum.Int16()):
		return checkController(ctx, b)
	}
	return "", errors.New("neither a broker nor a controller (serves neither Metadata nor DescribeQuorum)")
}

func checkBroker(ctx context.Context, b *kgo.Broker) (string, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // no topics (v1+; v0 would mean all)
	kresp, err := b.Request(ctx, req)
	if err != nil {
		return "", fmt.Errorf("Metadata: %w", err)
	}
	md := kresp.(*kmsg.MetadataResponse)
	// A skein broker names itself as the controller (requests for the
	// controller go to it and it forwards them).
	self := md.ControllerID
	if !slices.ContainsFunc(md.Brokers, func(mb kmsg.MetadataResponseBroker) bool { return mb.NodeID == self }) {
		return "", fmt.Errorf("broker %d is not in its own metadata yet (not registered, or fenced)", self)
	}
	return fmt.Sprintf("broker %d ready: registered and unfenced, %d brokers in metadata", self, len(md.Brokers)), nil
}

func checkController(ctx context.Context, b *kgo.Broker) (string, error) {
	kresp, err := b.Request(ctx, describeQuorumRequest())
	if err != nil {
		return "", fmt.Errorf("DescribeQuorum: %w", err)
	}
	q := kresp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(q.ErrorCode); err != nil {
		return "", fmt.Errorf("controller quorum: %w%s", err, detail(deref(q.ErrorMessage)))
	}
	for _, t := range q.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return "", fmt.Errorf("controller quorum: %w", err)
			}
			if p.LeaderID < 0 {
				return "", errors.New("controller quorum has no leader")
			}
			return fmt.Sprintf("controller ready: quorum leader %d, term %d, %d voters", p.LeaderID, p.LeaderEpoch, len(p.CurrentVoters)), nil
		}
	}
	return "", errors.New("DescribeQuorum answered without the metadata partition")
}
