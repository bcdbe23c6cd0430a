package harness

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Role is what a node runs as.
type Role string

// The roles a node can have.
const (
	RoleController Role = "controller"
	RoleBroker     Role = "broker"
)

// Node is one skein controller or broker process. Its ports and data
// directory stay the same across restarts.
type Node struct {
	*Process
	Role Role
	ID   int32
	Addr string // Kafka listener, host:port (INTERNAL with Options.ExternalListener)
	// ExternalAddr is the broker's EXTERNAL listener
	// (Options.ExternalListener; empty otherwise).
	ExternalAddr string
	RaftAddr     string // Raft transport (controllers only)
	// HTTPAddr is the HTTP endpoint, host:port (Options.HTTP; "" otherwise).
	HTTPAddr string
	DataDir  string
	// JournalPath is the broker's fsync journal (Options.FsyncJournal;
	// empty otherwise). The file exists only if the binary writes it.
	JournalPath string
	// TLSCert and TLSKey are the node's certificate and key files
	// (Options.TLS; empty otherwise): replace them to test a reload.
	TLSCert, TLSKey string

	// With Options.Proxies (brokers only): the proxy in front of Addr that
	// the broker advertises, and the proxies through which it reaches the
	// controllers (one per controller, in order).
	Proxy             *Proxy
	ControllerProxies []*Proxy

	cluster *Cluster
}

// Restart starts the node again with the same command line (same data
// directory and ports) and waits until it is ready. The node must have
// been stopped or killed. It fails the test on error, so call it from the
// goroutine of the test that started the cluster.
func (n *Node) Restart() {
	t := n.cluster.t
	t.Helper()
	if err := n.Start(); err != nil {
		t.Fatalf("restart %s: %v", n.Name, err)
	}
	n.cluster.waitReady(n)
}

// MustKill sends SIGKILL and waits for the exit; it fails the test on error.
func (n *Node) MustKill() {
	n.cluster.t.Helper()
	if err := n.Kill(); err != nil {
		n.cluster.t.Fatalf("kill %s: %v", n.Name, err)
	}
}

// MustStop shuts the node down cleanly (SIGTERM); it fails the test unless
// the node exits with status 0 within DefaultStopTimeout.
func (n *Node) MustStop() {
	n.cluster.t.Helper()
	if err := n.Stop(DefaultStopTimeout); err != nil {
		n.cluster.t.Fatalf("stop %s: %v", n.Name, err)
	}
}

// dialable reports whether the node accepts TCP connections on addr.
func dialable(addr string) (bool, string) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err.Error()
	}
	_ = conn.Close()
	return true, ""
}

// brokerListed reports whether the broker at seed lists every id of want
// in its Metadata response.
func brokerListed(seed string, tlsOpts []kgo.Opt, want ...int32) (bool, string) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.RequestRetries(0), kgo.RetryTimeout(2 * time.Second), kgo.DialTimeout(time.Second)}, tlsOpts...)...)
	if err != nil {
		return false, err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return false, fmt.Sprintf("metadata from %s: %v", seed, err)
	}
	ids := m.Brokers.NodeIDs()
	for _, id := range want {
		if !slices.Contains(ids, id) {
			return false, fmt.Sprintf("metadata from %s lists brokers %v, not yet %d", seed, ids, id)
		}
	}
	return true, ""
}

// tlsOpts are what a client of n's listener needs (Options.TLS).
func (n *Node) tlsOpts() []kgo.Opt {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.TLS.kgoOpts()
}

// Request sends req to this node itself (its real listener, not a proxy,
// and not forwarded through metadata to another broker) once, with no
// retries, and returns the answer; the whole exchange is bounded by
// timeout.
func (n *Node) Request(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr), kgo.RequestRetries(0)}, n.tlsOpts()...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s via %s: %w", kmsg.NameForKey(req.Key()), n.name(), err)
	}
	return resp, nil
}
