package dataplane

// The broker's side of the transaction coordinator: the connections it
// sends WriteTxnMarkers (and KIP-890 verifications) over, one kgo client
// per destination broker, dialled on the inter-broker listener.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/txn"
)

// interBrokerClients are kgo clients to the other brokers (and this one),
// each seeded with one broker's inter-broker endpoint; a request goes to
// that seed alone.
type interBrokerClients struct {
	listener string
	image    func() *image.Image

	mu      sync.Mutex
	clients map[int32]*brokerClient
	closed  bool
}

type brokerClient struct {
	addr string
	cl   *kgo.Client
}

var errNoBroker = errors.New("broker not in the metadata or without the inter-broker listener")

// request sends req to broker id.
func (c *interBrokerClients) request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := c.client(id)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errNoBroker
	}
	return seeds[0].Request(ctx, req)
}

func (c *interBrokerClients) client(id int32) (*kgo.Client, error) {
	b := c.image().Brokers[id]
	if b == nil {
		return nil, errNoBroker
	}
	host, port, ok := b.Endpoint(c.listener)
	if !ok {
		return nil, errNoBroker
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("closed")
	}
	if c.clients == nil {
		c.clients = map[int32]*brokerClient{}
	}
	if bc := c.clients[id]; bc != nil {
		if bc.addr == addr {
			return bc.cl, nil
		}
		bc.cl.Close()
		delete(c.clients, id)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("skein-broker-%d-txn", id)))
	if err != nil {
		return nil, err
	}
	c.clients[id] = &brokerClient{addr: addr, cl: cl}
	return cl, nil
}

func (c *interBrokerClients) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, bc := range c.clients {
		bc.cl.Close()
	}
	c.clients = nil
}

// markerLeader is the txn.SenderConfig.Leader of an image source.
func markerLeader(img func() *image.Image) func(tp txn.TopicPartition) (int32, bool) {
	return func(tp txn.TopicPartition) (int32, bool) {
		t := img().Topics[tp.Topic]
		if t == nil {
			return -1, false
		}
		p := t.Partitions[tp.Partition]
		if p == nil {
			return -1, false
		}
		return p.Leader, true
	}
}

// sendMarkers is the txn.SenderConfig.Send over the clients.
func (c *interBrokerClients) sendMarkers(ctx context.Context, broker int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	resp, err := c.request(ctx, broker, req)
	if err != nil {
		return nil, err
	}
	out, ok := resp.(*kmsg.WriteTxnMarkersResponse)
	if !ok {
		return nil, fmt.Errorf("unexpected response %T", resp)
	}
	return out, nil
}
