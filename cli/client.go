package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

// dialCheckTimeout bounds the reachability check of the bootstrap servers.
const dialCheckTimeout = 3 * time.Second

// errUnreachable is returned when no bootstrap server accepts a connection.
var errUnreachable = errors.New("cannot reach the cluster")

// bootstrapServers is --bootstrap-server split on commas.
func bootstrapServers(c *cli.Context) ([]string, error) {
	servers := splitList(c.String("bootstrap-server"))
	if len(servers) == 0 {
		return nil, fmt.Errorf("--bootstrap-server is empty: give host:port[,host:port...]")
	}
	return servers, nil
}

// checkReachable dials the bootstrap servers and fails with advice when none
// answers. Without it a client would retry for its whole retry timeout
// before saying anything useful.
func checkReachable(ctx context.Context, servers []string) error {
	var d net.Dialer
	for _, s := range servers {
		dctx, cancel := context.WithTimeout(ctx, dialCheckTimeout)
		conn, err := d.DialContext(dctx, "tcp", s)
		cancel()
		if err == nil {
			_ = conn.Close()
			return nil
		}
	}
	return fmt.Errorf("%w: cannot reach %s: is a broker running? start one with `make run` (or `skein dev`)",
		errUnreachable, strings.Join(servers, ","))
}

// newClient checks the bootstrap servers and returns a franz-go client for
// them with the given extra options.
func newClient(c *cli.Context, log hclog.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	servers, err := bootstrapServers(c)
	if err != nil {
		return nil, err
	}
	if err := checkReachable(c.Context, servers); err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(servers...),
		kgo.ClientID("skein-cli"),
		kgo.WithLogger(kgoLogger{log: log.Named("client")}),
	}
	sec, err := clientSecurityOpts(c, log)
	if err != nil {
		return nil, err
	}
	base = append(base, sec...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// newAdmin is newClient wrapped for admin requests.
func newAdmin(c *cli.Context, log hclog.Logger) (*kadm.Client, error) {
	cl, err := newClient(c, log)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// parseAcks maps --acks onto franz-go's acks.
func parseAcks(s string) (kgo.Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "leader", "1":
		return kgo.LeaderAck(), nil
	case "none", "0":
		return kgo.NoAck(), nil
	}
	return kgo.AllISRAcks(), fmt.Errorf("unknown --acks %q: use all (-1), leader (1) or none (0)", s)
}

// isAllAcks reports whether s means acks=all.
func isAllAcks(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return s == "all" || s == "-1"
}
